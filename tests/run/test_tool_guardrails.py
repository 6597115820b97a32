"""Tool input and output guardrails (the SDK's API) and what a session keeps of them."""

from __future__ import annotations

from typing import Any

import pytest

from threadline import (
    Agent,
    Runner,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrailData,
    ToolInputGuardrailTripwireTriggered,
    ToolOutputGuardrailData,
    ToolOutputGuardrailTripwireTriggered,
    UserError,
    function_tool,
    tool_input_guardrail,
    tool_output_guardrail,
)
from threadline.items import pairing_problem
from threadline.testing import ScriptedModel, call

from .conftest import SessionFactory

ran: list[str] = []


@tool_input_guardrail
def no_passwords(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    if "password" in data.context.tool_arguments:
        return ToolGuardrailFunctionOutput.reject_content(
            "Refused: arguments may not hold a password.", output_info={"field": "query"}
        )
    return ToolGuardrailFunctionOutput.allow({"checked": data.context.tool_name})


@tool_input_guardrail(name="stop_on_drop")
async def no_drop(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    if "drop" in data.context.tool_arguments:
        return ToolGuardrailFunctionOutput.raise_exception(output_info="destructive")
    return ToolGuardrailFunctionOutput.allow()


@tool_output_guardrail
def redact(data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
    if "secret" in str(data.output):
        return ToolGuardrailFunctionOutput.reject_content("[redacted]")
    if "fatal" in str(data.output):
        return ToolGuardrailFunctionOutput.raise_exception(output_info=data.output)
    return ToolGuardrailFunctionOutput.allow()


@function_tool(tool_input_guardrails=[no_passwords, no_drop], tool_output_guardrails=[redact])
def query(text: str) -> str:
    """Run a query."""
    ran.append(text)
    return f"result of {text}"


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


def _agent(*steps: Any) -> Agent[Any]:
    return Agent(name="A", model=ScriptedModel(list(steps)), tools=[query])


async def test_an_allowed_call_runs_and_its_results_are_reported() -> None:
    agent = _agent([call("query", {"text": "weather"})], "done")
    result = await Runner.run(agent, "go")
    assert ran == ["weather"]
    assert [r.guardrail.get_name() for r in result.tool_input_guardrail_results] == [
        "no_passwords",
        "stop_on_drop",
    ]
    assert result.tool_input_guardrail_results[0].output.output_info == {"checked": "query"}
    assert [r.output.behavior["type"] for r in result.tool_output_guardrail_results] == ["allow"]


async def test_a_rejected_call_is_answered_and_stored_valid(make_session: SessionFactory) -> None:
    session = make_session("rejected")
    model = ScriptedModel(
        [
            [
                call(
                    "query",
                    {
                        "text": "my password",
                    },
                    call_id="c1",
                )
            ],
            "sorry",
        ]
    )
    agent = Agent(name="A", model=model, tools=[query])
    result = await Runner.run(agent, "go", session=session)
    assert ran == []  # the tool never ran
    assert result.final_output == "sorry"
    # the model read the rejection as the call's output
    sent = model.requests[1].input
    assert sent[-1] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": "Refused: arguments may not hold a password.",
    }
    # the later guardrail did not run: the first that does not allow decides
    assert [r.guardrail.get_name() for r in result.tool_input_guardrail_results] == ["no_passwords"]
    stored = await session.get_items()
    assert pairing_problem(stored) is None
    assert stored[2]["output"] == "Refused: arguments may not hold a password."


async def test_a_rejected_output_is_replaced(make_session: SessionFactory) -> None:
    session = make_session("redacted")
    model = ScriptedModel([[call("query", {"text": "secret plans"}, call_id="c2")], "ok"])
    agent = Agent(name="A", model=model, tools=[query])
    result = await Runner.run(agent, "go", session=session)
    assert ran == ["secret plans"]
    assert model.requests[1].input[-1]["output"] == "[redacted]"
    assert (await session.get_items())[2]["output"] == "[redacted]"
    assert result.new_items[1].output == "[redacted]"


async def test_an_input_tripwire_stops_the_run_and_stores_nothing_of_the_step(
    make_session: SessionFactory,
) -> None:
    session = make_session("tripped")
    agent = _agent([call("query", {"text": "drop table"})], "never")
    with pytest.raises(ToolInputGuardrailTripwireTriggered, match="'stop_on_drop'") as caught:
        await Runner.run(agent, "go", session=session)
    assert caught.value.output.output_info == "destructive"
    assert caught.value.guardrail is no_drop
    assert ran == []
    assert await session.get_items() == [{"role": "user", "content": "go"}]


async def test_an_output_tripwire_stops_the_run(make_session: SessionFactory) -> None:
    session = make_session("tripped-out")
    agent = _agent([call("query", {"text": "fatal"})], "never")
    with pytest.raises(ToolOutputGuardrailTripwireTriggered) as caught:
        await Runner.run(agent, "go", session=session)
    assert caught.value.output.output_info == "result of fatal"
    assert await session.get_items() == [{"role": "user", "content": "go"}]


async def test_a_streamed_run_applies_them_too() -> None:
    agent = _agent([call("query", {"text": "password?"})], "ok")
    streamed = Runner.run_streamed(agent, "go")
    outputs = [
        event.item.output
        async for event in streamed.stream_events()
        if event.type == "run_item_stream_event" and event.name == "tool_output"
    ]
    assert outputs == ["Refused: arguments may not hold a password."]
    assert len(streamed.tool_input_guardrail_results) == 1


def test_bad_guardrails_are_clear_errors() -> None:
    def echo(text: str) -> str:
        return text

    with pytest.raises(UserError, match=r"tool_input_guardrails\[0\] is a builtin_function"):
        function_tool(echo, tool_input_guardrails=[print])  # type: ignore[list-item]
    with pytest.raises(UserError, match="needs a function"):
        tool_output_guardrail(5)  # type: ignore[arg-type]


async def test_a_guardrail_returning_something_else_is_a_clear_error() -> None:
    @tool_input_guardrail
    def sloppy(data: ToolInputGuardrailData) -> Any:
        return True

    @function_tool(tool_input_guardrails=[sloppy])
    def ping() -> str:
        """Ping."""
        return "pong"

    agent = Agent(name="A", model=ScriptedModel([[call("ping")], "x"]), tools=[ping])
    with pytest.raises(
        UserError, match="'sloppy' returned bool; return a ToolGuardrailFunctionOutput"
    ):
        await Runner.run(agent, "go")


def test_the_sdk_names_match() -> None:
    import agents

    ours = ToolGuardrailFunctionOutput.reject_content("m", output_info=1)
    theirs = agents.ToolGuardrailFunctionOutput.reject_content("m", output_info=1)
    assert ours.behavior == theirs.behavior and ours.output_info == theirs.output_info
    assert (
        ToolGuardrailFunctionOutput().behavior == agents.ToolGuardrailFunctionOutput(None).behavior
    )
