"""Runs with sessions: history in, input first, each step as one batch (DESIGN §7)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from threadline import (
    Agent,
    InMemorySession,
    RunConfig,
    Runner,
    SessionBusyError,
    SessionSettings,
    UserError,
    function_tool,
)
from threadline.items import Item, user_message
from threadline.testing import ScriptedModel, call

from ..backends import Backend

SessionFactory = Callable[[str], Any]


class RecordingSession:
    """A duck-typed session (no threadline base class) that records each write batch."""

    def __init__(self, session_id: str = "rec") -> None:
        self.session_id = session_id
        self.items: list[Item] = []
        self.batches: list[list[Item]] = []

    async def get_items(self, limit: int | None = None) -> list[Item]:
        return list(self.items if limit is None else self.items[-limit:] if limit else [])

    async def add_items(self, items: list[Item]) -> None:
        self.batches.append(list(items))
        self.items.extend(items)

    async def pop_item(self) -> Item | None:
        return self.items.pop() if self.items else None

    async def clear_session(self) -> None:
        self.items.clear()


def roles(items: list[Item]) -> list[str]:
    return [i.get("role") or i["type"] for i in items]


async def test_second_turn_carries_the_first(make_session: SessionFactory) -> None:
    model = ScriptedModel(["San Francisco.", "California."])
    agent = Agent(name="Assistant", instructions="Reply very concisely.", model=model)
    session = make_session("conversation_123")
    r1 = await Runner.run(agent, "What city is the Golden Gate Bridge in?", session=session)
    r2 = await Runner.run(agent, "What state is it in?", session=session)
    assert (r1.final_output, r2.final_output) == ("San Francisco.", "California.")
    sent = model.requests[1].input
    assert roles(sent) == ["user", "assistant", "user"]
    assert sent[0]["content"] == "What city is the Golden Gate Bridge in?"
    stored = await session.get_items()
    assert roles(stored) == ["user", "assistant", "user", "assistant"]
    assert (await session.get_items(limit=1))[0]["content"][0]["text"] == "California."


def test_run_sync_with_a_session(backend: Backend, make_session: SessionFactory) -> None:
    if backend.loop_bound:
        pytest.skip("a loop-bound store cannot follow run_sync onto the loop of its own thread")
    model = ScriptedModel(["one", "two"])
    agent = Agent(name="A", model=model)
    session = make_session("sync")
    Runner.run_sync(agent, "first", session=session)
    Runner.run_sync(agent, "second", session=session)
    assert roles(model.requests[1].input) == ["user", "assistant", "user"]


async def test_no_session_means_no_memory() -> None:
    model = ScriptedModel(["a", "b"])
    agent = Agent(name="A", model=model)
    await Runner.run(agent, "first")
    await Runner.run(agent, "second")
    assert model.requests[1].input == [{"role": "user", "content": "second"}]


async def test_input_first_then_each_step_as_one_batch() -> None:
    @function_tool
    def weather(city: str) -> str:
        """Weather."""
        return "sunny"

    model = ScriptedModel([[call("weather", {"city": "Oslo"}, call_id="c1")], "Sunny."])
    session = RecordingSession()
    await Runner.run(Agent(name="A", model=model, tools=[weather]), "Weather?", session=session)
    assert [roles(b) for b in session.batches] == [
        ["user"],
        ["function_call", "function_call_output"],
        ["assistant"],
    ]


async def test_a_failed_run_leaves_a_history_valid_to_send(make_session: SessionFactory) -> None:
    @function_tool
    def lookup() -> str:
        """Look up."""
        return "data"

    model = ScriptedModel([[call("lookup", {}, call_id="c1")], RuntimeError("model died")])
    session = make_session("failing")
    with pytest.raises(RuntimeError, match="model died"):
        await Runner.run(Agent(name="A", model=model, tools=[lookup]), "go", session=session)
    assert roles(await session.get_items()) == ["user", "function_call", "function_call_output"]


async def test_a_cancelled_run_loses_only_the_step_in_flight(make_session: SessionFactory) -> None:
    entered = asyncio.Event()

    @function_tool
    async def slow() -> str:
        """Never finishes in time."""
        entered.set()
        await asyncio.sleep(30)
        return "late"

    model = ScriptedModel([[call("slow", {}, call_id="c1")]])
    session = make_session("cancelled")
    task = asyncio.create_task(
        Runner.run(Agent(name="A", model=model, tools=[slow]), "go", session=session)
    )
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert roles(await session.get_items()) == ["user"]  # no call without its output


async def test_list_input_is_appended_to_history(make_session: SessionFactory) -> None:
    model = ScriptedModel(["ok", "ok"])
    agent = Agent(name="A", model=model)
    session = make_session("lists")
    await Runner.run(agent, "hello", session=session)
    extra = [{"role": "user", "content": "part 1"}, {"role": "user", "content": "part 2"}]
    await Runner.run(agent, extra, session=session)
    assert [i.get("content") for i in model.requests[1].input][-2:] == ["part 1", "part 2"]
    assert len(await session.get_items()) == 5


async def test_session_limit_and_run_override(make_session: SessionFactory) -> None:
    model = ScriptedModel(["a1", "a2", "a3", "a4"])
    agent = Agent(name="A", model=model)
    session = make_session("limited")
    session.session_settings = SessionSettings(limit=2)
    await Runner.run(agent, "u1", session=session)
    await Runner.run(agent, "u2", session=session)
    assert roles(model.requests[1].input) == ["user", "assistant", "user"]
    await Runner.run(agent, "u3", session=session)
    assert next(i.get("content") for i in model.requests[2].input) == "u2"
    assert len(model.requests[2].input) == 3
    await Runner.run(
        agent,
        "u4",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=6)),
    )
    assert len(model.requests[3].input) == 7


async def test_session_input_callback(make_session: SessionFactory) -> None:
    seen: list[tuple[int, int]] = []

    def only_last_turn(history: list[Item], new: list[Item]) -> list[Item]:
        seen.append((len(history), len(new)))
        return history[-2:] + new

    model = ScriptedModel(["a1", "a2", "a3"])
    agent = Agent(name="A", model=model)
    session = make_session("callback")
    config = RunConfig(session_input_callback=only_last_turn)
    for text in ("u1", "u2", "u3"):
        await Runner.run(agent, text, session=session, run_config=config)
    assert seen == [(0, 1), (2, 1), (4, 1)]
    assert next(i.get("content") for i in model.requests[2].input) == "u2"
    assert len(await session.get_items()) == 6  # the callback shapes what is sent, not what is kept


async def test_async_session_input_callback_must_return_a_list() -> None:
    async def bad(history: list[Item], new: list[Item]) -> Any:
        return "nope"

    with pytest.raises(UserError, match="must return a list"):
        await Runner.run(
            Agent(name="A", model=ScriptedModel()),
            "x",
            session=InMemorySession("s"),
            run_config=RunConfig(session_input_callback=bad),
        )


async def test_streamed_runs_persist_like_plain_runs(make_session: SessionFactory) -> None:
    @function_tool
    def weather() -> str:
        """Weather."""
        return "sunny"

    model = ScriptedModel([[call("weather", {}, call_id="c1")], "Sunny."])
    session = make_session("streamed")
    result = Runner.run_streamed(
        Agent(name="A", model=model, tools=[weather]), "?", session=session
    )
    async for _ in result.stream_events():
        pass
    assert roles(await session.get_items()) == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
    ]


async def test_two_concurrent_runs_never_interleave(make_session: SessionFactory) -> None:
    async def slow_reply(request: Any) -> Any:
        return "reply"

    gate = asyncio.Event()

    @function_tool
    async def pause() -> str:
        """Wait for the gate."""
        await gate.wait()
        return "ok"

    model = ScriptedModel(
        [[call("pause", {}, call_id="c1")], "first done", "second done"],
    )
    agent = Agent(name="A", model=model, tools=[pause])
    session = make_session("shared")
    first = asyncio.create_task(Runner.run(agent, "first", session=session))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(Runner.run(agent, "second", session=session))
    await asyncio.sleep(0.05)
    assert not second.done()
    gate.set()
    await asyncio.gather(first, second)
    contents = [i.get("content") for i in await session.get_items() if i.get("role") == "user"]
    kinds = roles(await session.get_items())
    assert contents == ["first", "second"]
    assert kinds == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
        "user",
        "assistant",
    ]


async def test_busy_session_can_fail_fast(make_session: SessionFactory) -> None:
    gate = asyncio.Event()

    @function_tool
    async def pause() -> str:
        """Wait for the gate."""
        await gate.wait()
        return "ok"

    model = ScriptedModel([[call("pause", {})], "done"])
    agent = Agent(name="A", model=model, tools=[pause])
    session = make_session("busy")
    first = asyncio.create_task(Runner.run(agent, "first", session=session))
    await asyncio.sleep(0.05)
    no_wait = RunConfig(session_settings=SessionSettings(wait_for_lease=False))
    with pytest.raises(SessionBusyError, match="busy"):
        await Runner.run(agent, "second", session=session, run_config=no_wait)
    gate.set()
    await first
    assert [i.get("content") for i in await session.get_items() if i.get("role") == "user"] == [
        "first"
    ]


async def test_orphans_in_stored_history_are_not_sent() -> None:
    session = RecordingSession()
    session.items = [
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "lost", "name": "x", "arguments": "{}"},
        {"role": "assistant", "content": "hello"},
    ]
    model = ScriptedModel(["ok"])
    await Runner.run(Agent(name="A", model=model), "again", session=session)
    assert roles(model.requests[0].input) == ["user", "assistant", "user"]


async def test_a_non_session_is_a_user_error() -> None:
    with pytest.raises(UserError, match="Session protocol"):
        await Runner.run(Agent(name="A", model=ScriptedModel()), "x", session=object())


async def test_cancelling_a_streamed_run_keeps_history_valid(make_session: SessionFactory) -> None:
    started = asyncio.Event()

    @function_tool
    async def slow() -> str:
        """Takes too long."""
        started.set()
        await asyncio.sleep(30)
        return "late"

    model = ScriptedModel([[call("slow", {}, call_id="c1")]])
    session = make_session("stream-cancel")
    result = Runner.run_streamed(Agent(name="A", model=model, tools=[slow]), "go", session=session)
    names = []
    async for event in result.stream_events():
        if event.type == "run_item_stream_event":
            names.append(event.name)
            if event.name == "tool_called":
                await asyncio.wait_for(started.wait(), 5)
                result.cancel()
    assert names == ["tool_called"]
    assert not result.is_complete
    assert roles(await session.get_items()) == ["user"]


# ---------------------------------------------------------------------- the run's lease


async def test_the_runs_lease_ttl_reaches_the_store(
    store: Any, open_store: Callable[[], Any]
) -> None:
    if "shared" not in store.capabilities:
        pytest.skip("needs a second store on the same storage")
    other = open_store().session("ttl")
    seen: list[float] = []

    @function_tool
    async def look() -> str:
        """Look at the lease from another store."""
        with pytest.raises(SessionBusyError) as caught:
            async with other.lease(wait=False):
                pass
        seen.append(caught.value.expires_in or -1.0)
        return "looked"

    agent = Agent(name="A", model=ScriptedModel([[call("look")], "done"]), tools=[look])
    session = store.session("ttl", session_settings=SessionSettings(lease_ttl=600))
    config = RunConfig(session_settings=SessionSettings(lease_ttl=3))
    await Runner.run(agent, "go", session=session, run_config=config)
    assert len(seen) == 1 and 0 < seen[0] <= 3


async def test_math_inf_lifts_the_sessions_finite_lease_timeout(store: Any) -> None:
    session = store.session("patient", session_settings=SessionSettings(lease_timeout=0.05))
    agent = Agent(name="A", model=ScriptedModel(["one", "two"]))
    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with session.lease():
            held.set()
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await held.wait()
    with pytest.raises(SessionBusyError):
        await Runner.run(agent, "hurry", session=session)
    patient = RunConfig(session_settings=SessionSettings(lease_timeout=math.inf))
    run = asyncio.ensure_future(Runner.run(agent, "wait", session=session, run_config=patient))
    await asyncio.sleep(0.2)
    assert not run.done()
    release.set()
    await holder
    assert (await run).final_output == "one"


async def test_a_run_that_stalled_past_its_ttl_is_fenced_off(
    store: Any, open_store: Callable[[], Any]
) -> None:
    """The run's holder stops renewing (as a paused process would); another store takes the
    session over and writes a turn; the stalled run then fails and stores nothing more."""
    if "shared" not in store.capabilities:
        pytest.skip("needs a second store on the same storage")
    from threadline.errors import LeaseLostError
    from threadline.sessions.lease import held_lease

    other = open_store().session("stall")
    session = store.session("stall", session_settings=SessionSettings(lease_ttl=0.3))

    @function_tool
    async def stall() -> str:
        """Stall past the lease's ttl while another run takes the session over."""
        lease = held_lease(store, "stall")
        assert lease is not None
        lease.suspend_renewal()
        async with other.lease(timeout=10):
            await other.add_items([user_message("other turn")])
        return "stalled"

    agent = Agent(name="A", model=ScriptedModel([[call("stall")], "never stored"]), tools=[stall])
    with pytest.raises(LeaseLostError, match="'stall'"):
        await Runner.run(agent, "first", session=session)
    stored = await other.get_items()
    assert [item.get("content") for item in stored] == ["first", "other turn"]


async def test_a_run_inside_a_tool_on_the_runs_own_session_is_refused_at_once(
    make_session: SessionFactory,
) -> None:
    """A tool that calls Runner.run with the session its run holds would wait for that run's
    lease forever (it hung before): NestedRunError at once, from the outer run, and the
    stored history stays valid to send. Another session, or none, is fine inside a tool."""
    from threadline import NestedRunError

    session = make_session("outer")
    other = make_session("inner")
    inner = Agent(name="inner", model=ScriptedModel(["inner on other", "inner, no session"]))

    @function_tool
    async def ask_elsewhere() -> str:
        """Ask the inner agent in another session and in none."""
        first = await Runner.run(inner, "q", session=other)
        second = await Runner.run(inner, "q")
        return f"{first.final_output} / {second.final_output}"

    @function_tool
    async def ask_here() -> str:
        """Ask the inner agent in this run's own session."""
        return str((await Runner.run(inner, "q", session=session)).final_output)

    model = ScriptedModel(
        [[call("ask_elsewhere", {}, call_id="c1")], "fine", [call("ask_here", {})], "after"]
    )
    outer = Agent(name="outer", model=model, tools=[ask_elsewhere, ask_here])
    done = await Runner.run(outer, "first", session=session)
    assert done.final_output == "fine"
    assert roles(await other.get_items()) == ["user", "assistant"]
    with pytest.raises(NestedRunError) as caught:
        await asyncio.wait_for(Runner.run(outer, "second", session=session), 10)
    assert caught.value.session_id == "outer" and "Runner.run" in str(caught.value)
    assert roles(await session.get_items()) == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
        "user",
    ]
    # once the outer run is over, the same session takes a new run
    assert (await Runner.run(outer, "third", session=session)).final_output == "after"


def test_run_sync_inside_a_sync_tool_on_the_same_session_is_refused(
    backend: Backend, make_session: SessionFactory
) -> None:
    """A sync tool (run on a worker thread) calling Runner.run_sync on its run's session."""
    if backend.loop_bound:
        pytest.skip("a loop-bound store cannot follow run_sync onto the loop of its own thread")
    from threadline import NestedRunError

    session = make_session("sync-outer")
    inner = Agent(name="inner", model=ScriptedModel(["never"]))

    @function_tool
    def ask_here() -> str:
        """Ask in this run's own session."""
        return str(Runner.run_sync(inner, "q", session=session).final_output)

    outer = Agent(name="outer", model=ScriptedModel([[call("ask_here", {})]]), tools=[ask_here])
    with pytest.raises(NestedRunError):
        Runner.run_sync(outer, "go", session=session)
