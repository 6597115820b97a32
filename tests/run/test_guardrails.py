"""Input and output guardrails (the SDK's API) and what a tripped run stores."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from threadline import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
    RunConfig,
    Runner,
    UserError,
    input_guardrail,
    output_guardrail,
)
from threadline.testing import ScriptedModel, call

from .conftest import SessionFactory


@input_guardrail
async def no_homework(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
    flagged = "homework" in str(user_input)
    return GuardrailFunctionOutput(output_info={"flagged": flagged}, tripwire_triggered=flagged)


@output_guardrail
def no_secrets(ctx: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="secret" in str(output))


async def test_a_tripped_input_guardrail_stores_nothing(make_session: SessionFactory) -> None:
    session = make_session("kid")
    await session.add_items([{"role": "user", "content": "earlier"}])
    agent = Agent(name="A", model=ScriptedModel(["sure"]), input_guardrails=[no_homework])
    with pytest.raises(InputGuardrailTripwireTriggered, match="'no_homework'") as caught:
        await Runner.run(agent, "do my homework", session=session)
    assert caught.value.guardrail_result.output.output_info == {"flagged": True}
    assert await session.get_items() == [{"role": "user", "content": "earlier"}]


async def test_a_passing_input_guardrail_stores_the_input_first(
    make_session: SessionFactory,
) -> None:
    session = make_session("fine")
    agent = Agent(name="A", model=ScriptedModel(["Paris."]), input_guardrails=[no_homework])
    result = await Runner.run(agent, "capital of France?", session=session)
    assert result.final_output == "Paris."
    assert [r.output.tripwire_triggered for r in result.input_guardrail_results] == [False]
    stored = await session.get_items()
    assert [item.get("role") for item in stored] == ["user", "assistant"]


async def test_a_sequential_guardrail_runs_before_the_model() -> None:
    model = ScriptedModel(["never"])

    @input_guardrail(run_in_parallel=False, name="gate")
    def gate(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)

    with pytest.raises(InputGuardrailTripwireTriggered, match="'gate'"):
        await Runner.run(Agent(name="A", model=model, input_guardrails=[gate]), "hi")
    assert model.requests == []


async def test_a_parallel_tripwire_cancels_the_model_call() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    class SlowModel(ScriptedModel):
        async def get_response(self, request: Any) -> Any:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return await super().get_response(request)

    @input_guardrail
    async def slow_no(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        await started.wait()
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)

    agent = Agent(name="A", model=SlowModel(["late"]), input_guardrails=[slow_no])
    with pytest.raises(InputGuardrailTripwireTriggered):
        await asyncio.wait_for(Runner.run(agent, "hi"), 10)
    assert cancelled.is_set()


async def test_a_tripped_output_guardrail_keeps_the_input_not_the_answer(
    make_session: SessionFactory,
) -> None:
    session = make_session("leak")
    agent = Agent(
        name="A", model=ScriptedModel(["the secret is 42"]), output_guardrails=[no_secrets]
    )
    with pytest.raises(OutputGuardrailTripwireTriggered, match="'no_secrets'") as caught:
        await Runner.run(agent, "tell me", session=session)
    assert caught.value.guardrail_result.agent_output == "the secret is 42"
    assert caught.value.guardrail_result.agent is agent
    assert await session.get_items() == [{"role": "user", "content": "tell me"}]


async def test_output_guardrails_see_the_final_output_only() -> None:
    seen: list[Any] = []

    @output_guardrail
    def record(ctx: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
        seen.append((agent.name, output))
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    model = ScriptedModel([[call("transfer_to_b", {})], "B's answer"])
    b = Agent(name="B", model=model, output_guardrails=[record])
    a = Agent(name="A", model=model, handoffs=[b], output_guardrails=[record])
    result = await Runner.run(a, "x")
    assert seen == [("B", "B's answer")]
    assert len(result.output_guardrail_results) == 1


async def test_input_guardrails_run_for_the_starting_agent_only() -> None:
    model = ScriptedModel([[call("transfer_to_b", {})], "done"])
    b = Agent(name="B", model=model, input_guardrails=[no_homework])
    a = Agent(name="A", model=model, handoffs=[b])
    result = await Runner.run(a, "homework")  # B's guardrail is not A's
    assert result.final_output == "done" and result.input_guardrail_results == []


async def test_run_config_guardrails_apply_too() -> None:
    config = RunConfig(input_guardrails=[no_homework], output_guardrails=[no_secrets])
    agent = Agent(name="A", model=ScriptedModel(["a secret"]))
    with pytest.raises(OutputGuardrailTripwireTriggered):
        await Runner.run(agent, "fine", run_config=config)
    with pytest.raises(InputGuardrailTripwireTriggered):
        await Runner.run(agent, "homework", run_config=config)


async def test_a_streamed_run_raises_the_tripwire(make_session: SessionFactory) -> None:
    session = make_session("streamed")
    agent = Agent(name="A", model=ScriptedModel(["sure"]), input_guardrails=[no_homework])
    result = Runner.run_streamed(agent, "homework please", session=session)
    with pytest.raises(InputGuardrailTripwireTriggered):
        async for _ in result.stream_events():
            pass
    assert await session.get_items() == []


async def test_a_guardrail_must_return_its_output_type() -> None:
    @input_guardrail
    def sloppy(ctx: Any, agent: Any, user_input: Any) -> Any:
        return True

    with pytest.raises(UserError, match="'sloppy' must return a GuardrailFunctionOutput"):
        await Runner.run(
            Agent(name="A", model=ScriptedModel(["x"]), input_guardrails=[sloppy]), "hi"
        )


def test_agents_refuse_undecorated_guardrails() -> None:
    def plain(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(None, False)

    with pytest.raises(UserError, match=r"input_guardrails\[0\].*@input_guardrail"):
        Agent(name="A", input_guardrails=[plain])  # type: ignore[list-item]
    with pytest.raises(UserError, match="output_guardrail"):
        Agent(name="A", output_guardrails=[no_homework])  # type: ignore[list-item]
