"""Compaction after a run, on every backend: non-destructive, incremental, byte-stable, never in
the way, safe cut points, under the lease, and invalidated when the covered range changes."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from threadline import (
    Agent,
    CompactionSettings,
    ModelError,
    RunConfig,
    Runner,
    SessionSettings,
    UserError,
    compact_session,
    function_tool,
    wait_for_compactions,
)
from threadline.items import is_user_message
from threadline.models.base import ModelRequest, ModelResponse
from threadline.sessions import SUMMARY_RECORD, read_summary
from threadline.sessions._summary import SUMMARY_PREFIX, is_summary_item
from threadline.sessions.codec import encode_items
from threadline.testing import ScriptedModel, call
from threadline.tracing import Span, set_trace_processors

from .test_session_runs import RecordingSession

WORDS = "word " * 60


def question(index: int) -> str:
    return f"question {index}: {WORDS}"


def answerer() -> ScriptedModel:
    return ScriptedModel(responder=lambda request: f"answer: {WORDS}")


class Summariser(ScriptedModel):
    """A scripted summariser: "summary N" (short), counting its requests."""

    def __init__(self, text: str | None = None) -> None:
        super().__init__(responder=self._answer, model="summariser")
        self.text = text

    def _answer(self, request: ModelRequest) -> str:
        return self.text if self.text is not None else f"summary {len(self.requests)}"

    def prompt(self, index: int = -1) -> str:
        content = self.requests[index].input[0]["content"]
        assert isinstance(content, str)
        return content


SETTINGS = SessionSettings(max_tokens=1200, compact_at=700)


def config(model: Any, **extra: Any) -> RunConfig:
    return RunConfig(compaction=CompactionSettings(model=model, keep_tokens=250, **extra))


async def converse(
    session: Any, turns: range, run_config: RunConfig, agent: Agent[Any] | None = None
) -> list[Any]:
    agent = agent or Agent(name="A", model=answerer())
    outcomes = []
    for index in turns:
        result = await Runner.run(agent, question(index), session=session, run_config=run_config)
        assert result.compaction is not None
        outcomes.append(await result.compaction)
    return outcomes


async def plain_history(session: Any, turns: int) -> None:
    """``turns`` turns stored without any compaction (the session has no compact_at)."""
    agent = Agent(name="A", model=answerer())
    for index in range(turns):
        await Runner.run(agent, question(index), session=session)


# ---------------------------------------------------------------------- the properties


async def test_non_destructive_and_the_window_is_what_the_next_run_sends(store: Any) -> None:
    session = store.session("s", session_settings=SETTINGS)
    summariser = Summariser()
    outcomes = await converse(session, range(8), config(summariser))
    assert any(o.compacted for o in outcomes)
    items = await session.get_items()
    assert len(items) == 16  # every raw item stays
    assert [i["content"] for i in items[::2]] == [question(n) for n in range(8)]
    summary = await read_summary(session)
    assert summary is not None and summary.end % 2 == 0 and 0 < summary.end < 16
    window = await session.get_window(max_tokens=1200)
    assert window[0] == {"role": "system", "content": SUMMARY_PREFIX + summary.text}
    assert window[1:] == items[summary.end :]  # the newest whole turns after the covered range
    model = answerer()
    await Runner.run(
        Agent(name="A", model=model), "next", session=session, run_config=config(summariser)
    )
    assert list(model.requests[0].input) == [*window, {"role": "user", "content": "next"}]


async def test_the_budget_counts_the_summary(store: Any) -> None:
    from threadline.sessions import estimate_tokens

    session = store.session("s", session_settings=SETTINGS)
    await converse(session, range(8), config(Summariser("a summary " * 30)))
    assert (await read_summary(session)) is not None
    for budget in (60, 200, 400, 1200):
        window = await session.get_window(max_tokens=budget)
        assert sum(estimate_tokens(item) for item in window) <= budget
    window = await session.get_window(max_tokens=200)  # the summary fits, no turn after it
    assert is_summary_item(window[0])
    tiny = await session.get_window(max_tokens=60)  # the summary does not fit: no summary
    assert not any(is_summary_item(item) for item in tiny)
    one = await session.get_window(max_items=1)
    assert len(one) == 1 and is_summary_item(one[0])


async def test_incremental_the_next_compaction_sends_the_summary_and_only_new_turns(
    store: Any,
) -> None:
    session = store.session("s", session_settings=SETTINGS)
    summariser = Summariser()
    outcomes = await converse(session, range(14), config(summariser))
    done = [o for o in outcomes if o.compacted]
    assert len(done) >= 2 and len(summariser.requests) == len(done)
    first, second = done[0], done[1]
    assert first.covered[0] == 0 and second.covered[0] == first.covered[1]
    prompt = summariser.prompt(1)
    assert f"Summary so far:\n{first.summary.text}" in prompt
    start, end = second.covered
    covered_turns = range(start // 2, end // 2)
    for index in range(14):
        assert (f"question {index}:" in prompt) == (index in covered_turns), index
    assert second.summary.compactions == 2
    assert second.summary.covered_tokens > first.summary.covered_tokens


async def test_byte_stable_until_the_next_compaction(store: Any) -> None:
    session = store.session("s", session_settings=SETTINGS)
    summariser = Summariser()
    agent_model = answerer()
    agent = Agent(name="A", model=agent_model)
    firsts: list[tuple[str, int]] = []
    for index in range(14):
        before = len(summariser.requests)
        result = await Runner.run(
            agent, question(index), session=session, run_config=config(summariser)
        )
        assert result.compaction is not None
        await result.compaction
        head = agent_model.requests[-1].input[0]
        firsts.append((json.dumps(head, sort_keys=True), before))
    by_compactions: dict[int, set[str]] = {}
    for head, compactions in firsts:
        by_compactions.setdefault(compactions, set()).add(head)
    # between two compactions every run starts with the very same bytes
    for compactions, heads in by_compactions.items():
        assert len(heads) == 1, compactions
    assert len(by_compactions) >= 3


async def test_a_failing_compaction_model_changes_nothing(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    spans: list[Span] = []

    class Collect:
        def on_span_start(self, span: Span) -> None:
            pass

        def on_span_end(self, span: Span) -> None:
            spans.append(span)

    set_trace_processors([Collect()])
    try:
        session = store.session("s", session_settings=SETTINGS)
        broken = ScriptedModel(responder=lambda request: ModelError("the summariser is down"))
        with caplog.at_level(logging.WARNING, logger="threadline.run"):
            outcomes = await converse(session, range(8), config(broken))
    finally:
        set_trace_processors([])
    failed = [o for o in outcomes if o.status == "failed"]
    assert failed and not any(o.compacted for o in outcomes)
    assert "the summariser is down" in failed[0].reason
    assert await session.get_record(SUMMARY_RECORD) is None
    assert len(await session.get_items()) == 16
    assert not any(is_summary_item(i) for i in await session.get_window(max_tokens=1200))
    traced = [s for s in spans if s.kind == "compaction" and s.error]
    assert traced and "the summariser is down" in (traced[0].error or "")
    assert "compaction failed" in caplog.text and "unchanged" in caplog.text


async def test_a_slow_compaction_neither_delays_the_reply_nor_writes(store: Any) -> None:
    release = asyncio.Event()

    class Slow(ScriptedModel):
        async def get_response(self, request: ModelRequest) -> ModelResponse:
            await release.wait()
            return await super().get_response(request)

    session = store.session("s", session_settings=SETTINGS)
    slow = Slow(["never used"])
    run_config = config(slow, timeout=0.3)
    agent = Agent(name="A", model=answerer())
    results = []
    for index in range(8):
        results.append(
            await Runner.run(agent, question(index), session=session, run_config=run_config)
        )
    pending = [
        r.compaction for r in results if r.compaction is not None and not r.compaction.done()
    ]
    assert pending, "the results came back while a compaction was still running"
    outcomes = await wait_for_compactions()
    assert any(o.status == "failed" and "timed out" in o.reason for o in outcomes)
    assert await session.get_record(SUMMARY_RECORD) is None
    assert len(await session.get_items()) == 16
    release.set()


async def test_the_end_of_a_stream_does_not_wait_for_compaction(store: Any) -> None:
    release = asyncio.Event()

    class Slow(Summariser):
        async def get_response(self, request: ModelRequest) -> ModelResponse:
            await release.wait()
            return await super().get_response(request)

    await plain_history(store.session("s"), 6)
    session = store.session("s", session_settings=SETTINGS)
    slow = Slow()
    streamed = Runner.run_streamed(
        Agent(name="A", model=answerer()), question(9), session=session, run_config=config(slow)
    )
    async for _ in streamed.stream_events():
        pass
    assert streamed.is_complete and streamed.compaction is not None
    assert not streamed.compaction.done()
    release.set()
    outcome = await streamed.compaction
    assert outcome.compacted


@pytest.mark.parametrize(
    ("text", "why"),
    [("", "no summary text"), ("long " * 2000, "not shorter than what it replaces")],
)
async def test_a_summary_that_does_not_shrink_the_context_is_rejected(
    store: Any, text: str, why: str
) -> None:
    session = store.session("s", session_settings=SessionSettings(compact_at=700))
    outcomes = await converse(session, range(8), config(Summariser(text)))
    rejected = [o for o in outcomes if o.status == "rejected"]
    assert rejected and why in rejected[0].reason
    assert await session.get_record(SUMMARY_RECORD) is None


async def test_a_summary_too_long_for_the_window_is_rejected(store: Any) -> None:
    session = store.session("s", session_settings=SessionSettings(max_tokens=700, compact_at=700))
    outcomes = await converse(session, range(8), config(Summariser("long " * 300)))
    assert any("more than half of max_tokens" in o.reason for o in outcomes)
    assert await session.get_record(SUMMARY_RECORD) is None


# ---------------------------------------------------------------------- safe cuts


@function_tool
def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: What to look up.
    """
    return f"facts about {topic}: {WORDS}"


async def test_cuts_only_at_turn_starts_never_between_a_call_and_its_output(store: Any) -> None:
    session = store.session("s", session_settings=SETTINGS)
    model = ScriptedModel()
    for index in range(10):
        model.add([call("lookup", {"topic": f"t{index}"})], f"answer {index}: {WORDS}")
    agent = Agent(name="A", model=model, tools=[lookup])
    summariser = Summariser()
    outcomes = await converse(session, range(10), config(summariser), agent)
    assert any(o.compacted for o in outcomes)
    items = await session.get_items()
    for outcome in outcomes:
        if outcome.compacted:
            start, end = outcome.covered
            assert is_user_message(items[end]) and (start == 0 or is_user_message(items[start]))
    assert "[tool call] lookup(" in summariser.prompt(
        0
    ) and "[tool result] facts" in summariser.prompt(0)
    window = await session.get_window(max_tokens=1200)
    calls = {i["call_id"] for i in window if i.get("type") == "function_call"}
    outputs = {i["call_id"] for i in window if i.get("type") == "function_call_output"}
    assert calls == outputs


def test_safe_cuts_skip_a_turn_start_inside_a_call() -> None:
    from threadline.items import (
        assistant_message,
        function_call,
        function_call_output,
        user_message,
    )
    from threadline.run._compaction_plan import safe_cuts

    items = [
        user_message("a"),
        function_call("c1", "f", "{}"),
        user_message("interleaved"),  # the call above has no output yet: not a cut
        function_call_output("c1", "out"),
        assistant_message("done"),
        user_message("b"),
        assistant_message("ok"),
    ]
    assert safe_cuts(items) == [5]


# ---------------------------------------------------------------------- the lease


async def test_the_write_carries_the_lease_fence(store: Any) -> None:
    session = store.session("s", session_settings=SETTINGS)
    backend = store._backend
    fences: list[Any] = []
    original = backend.put_records

    async def spy(session_id: str, records: Any, fence: Any) -> None:
        if SUMMARY_RECORD in records:
            fences.append(fence)
        await original(session_id, records, fence)

    backend.put_records = spy
    await converse(session, range(8), config(Summariser()))
    assert fences and all(fence is not None for fence in fences)


async def test_a_busy_session_makes_the_compaction_give_up(store: Any) -> None:
    session = store.session("s")
    await plain_history(session, 8)
    other = store.session("s")
    held, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:  # another run holds the session
        async with other.lease():
            held.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    outcome = await compact_session(
        session, settings=CompactionSettings(model=Summariser(), timeout=0.3)
    )
    done.set()
    await holder
    assert outcome.status == "failed" and "SessionBusyError" in outcome.reason, outcome.reason
    assert await session.get_record(SUMMARY_RECORD) is None


async def test_history_changed_while_summarising_is_not_written(store: Any) -> None:
    session = store.session("s")
    await plain_history(session, 6)

    class Clearing(Summariser):
        async def get_response(self, request: ModelRequest) -> ModelResponse:
            await session.clear_session()
            await session.add_items([{"role": "user", "content": "a new start"}])
            return await super().get_response(request)

    outcome = await compact_session(session, model=Clearing(), keep_tokens=100)
    assert outcome.status == "failed" and "changed" in outcome.reason
    assert await session.get_record(SUMMARY_RECORD) is None


async def test_compact_session_inside_the_callers_lease(store: Any) -> None:
    session = store.session("s")
    await plain_history(session, 4)
    async with session.lease():
        outcome = await compact_session(session, model=Summariser(), keep_tokens=100)
    assert outcome.compacted and outcome.covered == (0, 6)


# ---------------------------------------------------------------------- invalidation


async def compacted_session(store: Any) -> Any:
    session = store.session("s", session_settings=SETTINGS)
    await converse(session, range(8), config(Summariser()))
    assert await read_summary(session) is not None
    return session


async def test_pop_turn_into_the_covered_range_drops_the_summary(store: Any) -> None:
    session = await compacted_session(store)
    summary = await read_summary(session)
    assert summary is not None
    count = len(await session.get_items())
    while count > summary.end:  # undo the turns after the covered range: the summary stays
        count -= len(await session.pop_turn())
        assert await read_summary(session) == summary
    await session.pop_turn()  # into the covered range
    assert await session.get_record(SUMMARY_RECORD) is None
    assert not any(is_summary_item(i) for i in await session.get_window(max_tokens=1200))


async def test_pop_item_into_the_covered_range_drops_the_summary(store: Any) -> None:
    session = await compacted_session(store)
    summary = await read_summary(session)
    assert summary is not None
    while len(await session.get_items()) > summary.end:
        await session.pop_item()
    assert await read_summary(session) == summary
    await session.pop_item()
    assert await session.get_record(SUMMARY_RECORD) is None


@pytest.mark.parametrize("how", ["clear", "replace"])
async def test_clear_and_replace_drop_the_summary(store: Any, how: str) -> None:
    session = await compacted_session(store)
    items = await session.get_items()
    if how == "clear":
        await session.clear_session()
        await session.add_items(items)  # the same items again: still no stale summary
    else:
        await session.replace_items(items)
    assert await session.get_record(SUMMARY_RECORD) is None
    assert await session.get_window() == items


async def test_a_summary_whose_anchor_no_longer_matches_is_not_used(store: Any) -> None:
    """The crash gap: a pop's items left but the summary record was not yet dropped."""
    session = await compacted_session(store)
    summary = await read_summary(session)
    assert summary is not None
    items = await session.get_items()
    changed = [*items[: summary.end - 1], {"role": "assistant", "content": "other"}]
    changed += items[summary.end :]
    await store._backend.replace("s", encode_items(changed, store.codec, "s"), None)
    assert await read_summary(session) == summary  # the record is still there...
    window = await session.get_window(max_tokens=1200)
    assert not any(is_summary_item(i) for i in window)  # ...but never used
    outcome = await compact_session(session, model=Summariser(), keep_tokens=250)
    assert outcome.compacted and outcome.covered[0] == 0  # compacted again from the start


# ---------------------------------------------------------------------- entry points


async def test_compact_session_explicitly(store: Any) -> None:
    session = store.session("s")
    summariser = Summariser()
    agent = Agent(name="A", model=answerer())
    for index in range(5):
        result = await Runner.run(agent, question(index), session=session)
        assert result.compaction is None  # no compact_at: nothing started
    outcome = await compact_session(session, model=summariser, keep_tokens=250)
    assert outcome.compacted and outcome.covered == (0, 8) and outcome.rounds == 1
    assert outcome.usage.requests == 1
    again = await compact_session(session, model=summariser, keep_tokens=250)
    assert again.status == "skipped" and "single turn" in again.reason
    assert "compacted items 0-7" in outcome.describe()


async def test_compact_session_uses_the_agents_model_by_default(store: Any) -> None:
    session = store.session("s")
    model = answerer()
    agent = Agent(name="A", model=model)
    for index in range(4):
        await Runner.run(agent, question(index), session=session)
    model.responder = lambda request: "short summary"
    outcome = await compact_session(session, agent=agent, keep_tokens=100)
    assert outcome.compacted and model.requests[-1].input[0]["content"].startswith("Summary so far")


async def test_a_long_backlog_is_summarised_in_rounds_within_the_request_budget(
    store: Any,
) -> None:
    session = store.session("s")
    await plain_history(session, 12)
    summariser = Summariser()
    outcome = await compact_session(
        session,
        settings=CompactionSettings(model=summariser, max_input_tokens=700),
        keep_tokens=250,
    )
    assert outcome.compacted and outcome.rounds >= 3
    from threadline.sessions import estimate_tokens

    for request in summariser.requests:
        assert estimate_tokens(request.input[0]) < 900
    assert outcome.summary is not None and outcome.summary.compactions == outcome.rounds


def test_run_sync_leaves_a_pending_compaction_to_the_next_call(store: Any, backend: Any) -> None:
    if backend.loop_bound:
        pytest.skip("a loop-bound store cannot follow run_sync onto the loop of its own thread")
    session = store.session("sync", session_settings=SETTINGS)
    agent = Agent(name="A", model=answerer())
    run_config = config(Summariser())
    results = [
        Runner.run_sync(agent, question(i), session=session, run_config=run_config)
        for i in range(9)
    ]
    assert any(
        r.compaction is not None and r.compaction.done() and r.compaction.result().compacted
        for r in results
    )


# ---------------------------------------------------------------------- settings


def test_compact_at_is_validated_like_the_other_settings() -> None:
    with pytest.raises(UserError, match="compact_at must be > 0"):
        SessionSettings(compact_at=0)
    with pytest.raises(UserError, match="must be an integer"):
        SessionSettings(compact_at=1.5)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="must not exceed max_tokens"):
        SessionSettings(max_tokens=100, compact_at=200)
    assert SessionSettings.coerce({"compact_at": 300}).compact_at == 300
    assert SessionSettings(compact_at=5).resolve({"max_tokens": 10}).compact_at == 5
    with pytest.raises(UserError, match="timeout"):
        CompactionSettings(timeout=0)
    with pytest.raises(UserError, match="max_input_tokens"):
        CompactionSettings(max_input_tokens=0)
    with pytest.raises(UserError, match="model must be"):
        CompactionSettings(model=3)  # type: ignore[arg-type]


async def test_compact_at_on_a_session_without_records_fails_before_the_run() -> None:
    model = answerer()
    with pytest.raises(UserError, match="compaction needs a threadline store's session"):
        await Runner.run(
            Agent(name="A", model=model),
            "hi",
            session=RecordingSession(),
            run_config=RunConfig(session_settings=SessionSettings(compact_at=100)),
        )
    assert model.requests == []
    with pytest.raises(UserError, match="compaction needs"):
        await compact_session(RecordingSession())


async def test_a_damaged_summary_record_is_an_error_not_ignored(store: Any) -> None:
    from threadline import SessionError

    session = store.session("s")
    await session.add_items([{"role": "user", "content": "hi"}])
    await session.put_records({SUMMARY_RECORD: {"version": 1, "text": 3}})
    with pytest.raises(SessionError, match=r"summary record .* is damaged"):
        await session.get_window()


def test_a_compaction_pending_at_exit_after_run_sync_finishes(tmp_path: Any) -> None:
    """A one-shot script: the compaction its last run_sync started completes at exit."""
    import subprocess
    import sys
    from pathlib import Path

    db = tmp_path / "exit.db"
    src = str(Path(__file__).resolve().parents[2] / "src")
    code = f"""
import sys
sys.path.insert(0, {src!r})
from threadline import Agent, CompactionSettings, RunConfig, Runner, SessionSettings, SQLiteStore
from threadline.testing import ScriptedModel
words = "word " * 60
store = SQLiteStore({str(db)!r})
session = store.session("s", session_settings=SessionSettings(compact_at=500))
agent = Agent(name="A", model=ScriptedModel(responder=lambda r: "answer " + words))
run_config = RunConfig(compaction=CompactionSettings(model=ScriptedModel(responder=lambda r: "short")))
for index in range(3):
    result = Runner.run_sync(agent, f"question {{index}} " + words, session=session, run_config=run_config)
assert result.compaction is not None and not result.compaction.done()
print("left pending")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "left pending"
    assert "Traceback" not in done.stderr

    async def read() -> Any:
        from threadline import SQLiteStore

        store = SQLiteStore(db)
        try:
            return await read_summary(store.session("s"))
        finally:
            await store.aclose()

    summary = asyncio.run(read())
    assert summary is not None and summary.text == "short"


async def test_a_compaction_that_lost_the_race_writes_nothing(store: Any) -> None:
    session = store.session("s")
    await plain_history(session, 6)

    class Racing(Summariser):
        async def get_response(self, request: ModelRequest) -> ModelResponse:
            if len(self.requests) == 0:  # another compaction finishes while this one thinks
                inner = await compact_session(
                    session, model=Summariser("the winner"), keep_tokens=100
                )
                assert inner.compacted
            return await super().get_response(request)

    outcome = await compact_session(session, model=Racing("the loser"), keep_tokens=100)
    assert outcome.status == "skipped" and "another compaction" in outcome.reason
    summary = await read_summary(session)
    assert summary is not None and summary.text == "the winner"


async def test_the_agents_model_summarises_with_the_agents_settings_without_tools(
    store: Any,
) -> None:
    from threadline import ModelSettings

    session = store.session("s")
    await plain_history(session, 4)
    model = ScriptedModel(responder=lambda request: "short summary")
    agent = Agent(
        name="A",
        model=model,
        model_settings=ModelSettings(temperature=0.2, tool_choice="required"),
        tools=[lookup],
    )
    outcome = await compact_session(session, agent=agent, keep_tokens=100)
    assert outcome.compacted
    request = model.requests[-1]
    assert request.settings.temperature == 0.2 and request.settings.tool_choice is None
    assert list(request.tools) == []
    other = ScriptedModel(responder=lambda request: "other summary")
    await plain_history(store.session("t"), 4)
    await compact_session(store.session("t"), model=other, agent=agent, keep_tokens=100)
    assert other.requests[-1].settings.temperature is None  # a model of its own: its defaults


async def test_compacting_a_closed_session_is_an_error(store: Any) -> None:
    from threadline import SessionClosedError

    session = store.session("s")
    session.close()
    with pytest.raises(SessionClosedError):
        await compact_session(session, model=Summariser())
