"""Usage accounting of runs on store sessions, and the per-session token calibration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from threadline import Agent, Runner, SessionSettings, function_tool
from threadline.items import user_message
from threadline.models.base import ModelRequest, ModelResponse
from threadline.run.persistence import estimate_request
from threadline.sessions.codec import estimate_tokens
from threadline.testing import ScriptedModel, call
from threadline.usage import Usage

from .test_session_runs import RecordingSession

SessionFactory = Callable[[str], Any]


@function_tool
def lookup(city: str) -> str:
    """Look a city up."""
    return f"{city}: foggy"


async def test_each_run_stores_its_usage(make_session: SessionFactory) -> None:
    model = ScriptedModel(["Hello.", [call("lookup", {"city": "SF"})], "Foggy."])
    agent = Agent(name="A", model=model, tools=[lookup])
    session = make_session("usage-runs")
    first = await Runner.run(agent, "hi", session=session)
    second = await Runner.run(agent, "weather in SF?", session=session)
    usage = await session.usage()
    runs = [first.context_wrapper.usage, second.context_wrapper.usage]
    assert usage.turns == 2 and usage.requests == 3
    assert [turn.requests for turn in usage.per_turn] == [1, 2]
    assert [turn.turn for turn in usage.per_turn] == [1, 2]
    assert [t.input_tokens for t in usage.per_turn] == [r.input_tokens for r in runs]
    assert [t.output_tokens for t in usage.per_turn] == [r.output_tokens for r in runs]
    assert usage.input_tokens == sum(r.input_tokens for r in runs) > 0
    assert usage.output_tokens == sum(r.output_tokens for r in runs) > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    totals_only = await session.usage(per_turn=False)
    assert totals_only.per_turn == [] and totals_only.requests == 3
    # One record per run plus the running total: a turn never rewrites a growing list.
    assert sorted(await session.list_records("usage")) == [
        "usage",
        "usage/00000001",
        "usage/00000002",
    ]


async def test_each_run_record_names_where_its_turn_starts(make_session: SessionFactory) -> None:
    model = ScriptedModel(["Hello.", [call("lookup", {"city": "SF"})], "Foggy.", "Bye."])
    agent = Agent(name="A", model=model, tools=[lookup])
    session = make_session("usage-starts")
    for text in ("hi", "weather in SF?", "bye"):
        await Runner.run(agent, text, session=session)
    items = await session.get_items()
    user_at = [n for n, item in enumerate(items) if item.get("role") == "user"]
    assert user_at == [0, 2, 6]
    assert [run.start for run in (await session.usage()).per_turn] == user_at
    by_turn = await session.turn_usage()
    assert {at: [run.turn for run in runs] for at, runs in by_turn.items()} == {
        0: [1],
        2: [2],
        6: [3],
    }
    # a record written before runs were stamped: no start, and left out of turn_usage
    old = dict(await session.get_record("usage/00000002"))
    del old["start"]
    await session.put_records({"usage/00000002": old})
    assert [run.start for run in (await session.usage()).per_turn] == [0, None, 6]
    assert sorted(await session.turn_usage()) == [0, 6]


async def test_usage_goes_with_the_stored_steps(make_session: SessionFactory) -> None:
    """A run that fails after its first step keeps the usage of that step, not more."""
    model = ScriptedModel([[call("lookup", {"city": "SF"})], RuntimeError("provider down")])
    agent = Agent(name="A", model=model, tools=[lookup])
    session = make_session("usage-failed")
    with pytest.raises(RuntimeError, match="provider down"):
        await Runner.run(agent, "weather?", session=session)
    usage = await session.usage()
    assert usage.turns == 1 and usage.requests == 1
    assert len(await session.get_items()) == 3  # input, call, output


async def test_a_reused_context_counts_each_run_once(make_session: SessionFactory) -> None:
    model = ScriptedModel(["one", "two"])
    agent = Agent(name="A", model=model)
    session = make_session("usage-context")
    first = await Runner.run(agent, "a", session=session)
    from threadline import RunContextWrapper

    wrapper = RunContextWrapper(None)
    wrapper.usage.add(first.context_wrapper.usage)  # a context that already counted a run
    from threadline.run.config import RunConfig
    from threadline.run.hooks import RunHooks
    from threadline.run.loop import run_agent

    await run_agent(
        agent,
        "b",
        context=None,
        max_turns=5,
        hooks=RunHooks(),
        config=RunConfig(),
        session=session,
        context_wrapper=wrapper,
    )
    usage = await session.usage()
    assert [turn.requests for turn in usage.per_turn] == [1, 1]


async def test_sessions_without_records_are_left_alone() -> None:
    session = RecordingSession()
    agent = Agent(name="A", model=ScriptedModel(["ok"]))
    await Runner.run(agent, "hi", session=session)
    assert len(session.batches) == 2  # the input, then the answer: nothing else written


def _reporting(factor: float, answers: list[str]) -> Callable[[ModelRequest], ModelResponse]:
    """A model step that reports ``factor`` times threadline's estimate as input tokens."""
    left = list(answers)

    def step(request: ModelRequest) -> ModelResponse:
        from threadline.items import assistant_message

        sent = int(factor * estimate_request(request))
        return ModelResponse(
            output=[assistant_message(left.pop(0))],
            usage=Usage(requests=1, input_tokens=sent, output_tokens=5, total_tokens=sent + 5),
        )

    return step


async def test_windows_are_calibrated_per_session(make_session: SessionFactory) -> None:
    answers = [f"answer number {n} " + "x" * 200 for n in range(8)]
    step = _reporting(3.0, answers)
    model = ScriptedModel([step] * 8)
    agent = Agent(name="A", instructions="Be brief.", model=model)
    budget = 400
    settings = SessionSettings(max_tokens=budget)
    session = make_session("calibrated")
    session.session_settings = settings
    history = []
    for n in range(4):
        history.append(user_message(f"question {n} " + "y" * 200))
        history.append({"role": "assistant", "content": answers[n]})
    await session.add_items(history)
    await Runner.run(agent, "first run", session=session)
    uncalibrated = model.requests[0].input
    ratio = (await session.usage()).calibration
    assert ratio == pytest.approx(3.0, rel=0.02)
    await Runner.run(agent, "second run", session=session)
    calibrated = model.requests[1].input
    # The window (all but the new input) fits the budget in provider tokens now.
    window = calibrated[:-1]
    assert sum(estimate_tokens(item) for item in window) * ratio <= budget
    assert sum(estimate_tokens(item) for item in uncalibrated[:-1]) * ratio > budget
    assert len(window) < len(uncalibrated[:-1])


async def test_no_reported_tokens_is_no_calibration(make_session: SessionFactory) -> None:
    session = make_session("no-sample")
    agent = Agent(name="A", model=ScriptedModel([_reporting(0.0, ["x"])]))
    await Runner.run(agent, "hi", session=session)
    usage = await session.usage()
    assert usage.calibration is None and usage.requests == 1 and usage.input_tokens == 0
