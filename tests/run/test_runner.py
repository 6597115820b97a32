"""The turn loop, through the in-process ScriptedModel."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from threadline import (
    Agent,
    MaxTurnsExceeded,
    MessageOutputItem,
    ModelBehaviorError,
    RunConfig,
    RunContextWrapper,
    RunHooks,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    ToolError,
    UserError,
    function_tool,
    handoff,
)
from threadline.testing import ScriptedModel, call


def items_of_type(items: list[Any], kind: str) -> list[Any]:
    return [i for i in items if i.type == kind]


async def test_text_reply_is_the_final_output() -> None:
    model = ScriptedModel(["Paris."])
    agent = Agent(name="A", instructions="Be brief.", model=model)
    result = await Runner.run(agent, "Capital of France?")
    assert result.final_output == "Paris."
    assert result.last_agent is agent
    assert [i.type for i in result.new_items] == ["message_output_item"]
    assert isinstance(result.new_items[0], MessageOutputItem)
    assert result.usage.requests == 1 and result.usage.total_tokens > 0
    assert len(result.raw_responses) == 1
    sent = model.requests[0]
    assert sent.instructions == "Be brief."
    assert sent.input == [{"role": "user", "content": "Capital of France?"}]
    assert result.to_input_list()[0] == {"role": "user", "content": "Capital of France?"}
    assert result.to_input_list()[1]["role"] == "assistant"


async def test_dynamic_instructions_see_the_context() -> None:
    @dataclass
    class User:
        name: str

    def instructions(ctx: RunContextWrapper[User], agent: Agent[User]) -> str:
        return f"Address {ctx.context.name}. You are {agent.name}."

    model = ScriptedModel(["Hi"])
    agent = Agent(name="Greeter", instructions=instructions, model=model)
    await Runner.run(agent, "hello", context=User("Ada"))
    assert model.requests[0].instructions == "Address Ada. You are Greeter."


async def test_async_instructions() -> None:
    async def instructions(ctx: RunContextWrapper[Any], agent: Agent[Any]) -> str:
        return "async!"

    model = ScriptedModel(["ok"])
    await Runner.run(Agent(name="A", instructions=instructions, model=model), "x")
    assert model.requests[0].instructions == "async!"


async def test_several_tool_calls_run_concurrently_and_feed_back() -> None:
    started: list[str] = []
    both_started = asyncio.Event()

    @function_tool
    async def slow(tag: str) -> str:
        """Wait until the other call started too."""
        started.append(tag)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 2)
        return f"done {tag}"

    model = ScriptedModel(
        [[call("slow", {"tag": "a"}, call_id="c1"), call("slow", {"tag": "b"}, call_id="c2")], "ok"]
    )
    result = await Runner.run(Agent(name="A", model=model, tools=[slow]), "go")
    assert result.final_output == "ok"
    assert sorted(started) == ["a", "b"]
    second = model.requests[1].input
    outputs = [i for i in second if i.get("type") == "function_call_output"]
    assert outputs == [
        {"type": "function_call_output", "call_id": "c1", "output": "done a"},
        {"type": "function_call_output", "call_id": "c2", "output": "done b"},
    ]
    assert len(items_of_type(result.new_items, "tool_call_item")) == 2
    outs = items_of_type(result.new_items, "tool_call_output_item")
    assert [o.output for o in outs] == ["done a", "done b"]
    assert isinstance(outs[0], ToolCallOutputItem)
    assert isinstance(items_of_type(result.new_items, "tool_call_item")[0], ToolCallItem)


async def test_tools_receive_the_context() -> None:
    seen: list[Any] = []

    @function_tool
    def whoami(ctx: RunContextWrapper[dict[str, str]]) -> str:
        """Tell who the user is."""
        seen.append(ctx.context)
        return ctx.context["user"]

    model = ScriptedModel([[call("whoami", {})], "done"])
    await Runner.run(Agent(name="A", model=model, tools=[whoami]), "x", context={"user": "ada"})
    assert seen == [{"user": "ada"}]
    assert model.requests[1].input[-1]["output"] == "ada"


async def test_tool_exception_is_fed_back_to_the_model() -> None:
    @function_tool
    def broken() -> str:
        """Always fails."""
        raise ValueError("disk on fire")

    model = ScriptedModel([[call("broken", {})], "sorry"])
    result = await Runner.run(Agent(name="A", model=model, tools=[broken]), "x")
    assert result.final_output == "sorry"
    output = model.requests[1].input[-1]["output"]
    assert "disk on fire" in output


async def test_tool_exception_can_propagate() -> None:
    @function_tool(failure_error_function=None)
    def broken() -> str:
        """Always fails."""
        raise ValueError("disk on fire")

    model = ScriptedModel([[call("broken", {})]])
    with pytest.raises(ToolError, match="disk on fire"):
        await Runner.run(Agent(name="A", model=model, tools=[broken]), "x")


async def test_malformed_arguments_are_reported_to_the_model() -> None:
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = ScriptedModel(
        [
            [call("add", "{not json")],
            [call("add", {"a": "x", "b": 2})],
            [call("add", {"a": 1, "b": 2})],
            "3",
        ]
    )
    result = await Runner.run(Agent(name="A", model=model, tools=[add]), "1+2")
    assert result.final_output == "3"
    first_error = model.requests[1].input[-1]["output"]
    second_error = model.requests[2].input[-1]["output"]
    assert "add" in first_error and "JSON" in first_error
    assert "add" in second_error and "a" in second_error
    assert model.requests[3].input[-1]["output"] == "3"


async def test_unknown_tool_is_reported_to_the_model() -> None:
    model = ScriptedModel([[call("nope", {})], "ok"])
    result = await Runner.run(Agent(name="A", model=model), "x")
    assert result.final_output == "ok"
    assert "no tool named 'nope'" in model.requests[1].input[-1]["output"]


async def test_handoff_switches_the_agent() -> None:
    model = ScriptedModel([[call("transfer_to_math_assistant", {})], "4"])
    math = Agent(name="Math Assistant", instructions="Solve math.", model=model)
    main = Agent(name="Main", instructions="Route.", model=model, handoffs=[math])
    result = await Runner.run(main, "2+2?")
    assert result.final_output == "4"
    assert result.last_agent is math
    assert model.requests[1].instructions == "Solve math."
    assert [t.name for t in model.requests[0].tools] == ["transfer_to_math_assistant"]
    kinds = [i.type for i in result.new_items]
    assert kinds == ["handoff_call_item", "handoff_output_item", "message_output_item"]
    assert result.new_items[1].target_agent is math


async def test_handoff_callback_and_custom_name() -> None:
    called: list[Any] = []
    model = ScriptedModel([[call("to_b", {})], "b here"])
    b = Agent(name="B", model=model)
    a = Agent(
        name="A",
        model=model,
        handoffs=[
            handoff(b, tool_name_override="to_b", on_handoff=lambda ctx: called.append(ctx.context))
        ],
    )
    result = await Runner.run(a, "x", context="ctx")
    assert result.last_agent is b and called == ["ctx"]


async def test_agent_as_tool_keeps_control_with_the_caller() -> None:
    inner_model = ScriptedModel(["42"])
    outer_model = ScriptedModel([[call("ask_math", {"input": "6*7"})], "The answer is 42."])
    math = Agent(name="Math", model=inner_model)
    main = Agent(name="Main", model=outer_model, tools=[math.as_tool("ask_math", "Math questions")])
    result = await Runner.run(main, "6*7?")
    assert result.final_output == "The answer is 42."
    assert result.last_agent is main
    assert inner_model.requests[0].input == [{"role": "user", "content": "6*7"}]
    assert outer_model.requests[1].input[-1]["output"] == "42"
    assert result.usage.requests == 3


async def test_max_turns() -> None:
    model = ScriptedModel(responder=lambda request: [call("nope", {})])
    with pytest.raises(MaxTurnsExceeded, match="max_turns=3"):
        await Runner.run(Agent(name="A", model=model), "x", max_turns=3)
    assert len(model.requests) == 3


class Answer(BaseModel):
    city: str
    population: int


async def test_structured_output_is_validated() -> None:
    model = ScriptedModel(['{"city": "SF", "population": 808000}'])
    agent = Agent(name="A", model=model, output_type=Answer)
    result = await Runner.run(agent, "x")
    assert result.final_output == Answer(city="SF", population=808000)
    schema = model.requests[0].output_schema
    assert schema is not None and schema.json_schema["additionalProperties"] is False


async def test_structured_output_wraps_non_objects() -> None:
    model = ScriptedModel(['{"response": [1, 2]}'])
    result = await Runner.run(Agent(name="A", model=model, output_type=list[int]), "x")
    assert result.final_output == [1, 2]


async def test_invalid_structured_output_fails_clearly() -> None:
    model = ScriptedModel(['{"city": "SF"}'])
    with pytest.raises(ModelBehaviorError, match="population"):
        await Runner.run(Agent(name="A", model=model, output_type=Answer), "x")


async def test_stop_on_first_tool() -> None:
    @function_tool
    def lookup() -> str:
        """Look up."""
        return "found"

    model = ScriptedModel([[call("lookup", {})]])
    agent = Agent(name="A", model=model, tools=[lookup], tool_use_behavior="stop_on_first_tool")
    result = await Runner.run(agent, "x")
    assert result.final_output == "found"
    assert len(model.requests) == 1


async def test_hooks_see_the_lifecycle() -> None:
    events: list[str] = []

    class Recorder(RunHooks[Any]):
        async def on_agent_start(self, context: Any, agent: Any) -> None:
            events.append(f"start {agent.name}")

        async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
            events.append(f"end {agent.name} {output}")

        async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
            events.append(f"tool {tool.name}")

        async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: str) -> None:
            events.append(f"tool done {result}")

        async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
            events.append(f"handoff {from_agent.name}->{to_agent.name}")

    @function_tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = ScriptedModel([[call("ping", {})], [call("transfer_to_b", {})], "bye"])
    b = Agent(name="B", model=model)
    a = Agent(name="A", model=model, tools=[ping], handoffs=[b])
    await Runner.run(a, "x", hooks=Recorder())
    assert events == [
        "start A",
        "tool ping",
        "tool done pong",
        "handoff A->B",
        "start B",
        "end B bye",
    ]


async def test_run_config_model_overrides_the_agent_model() -> None:
    unused = ScriptedModel()
    used = ScriptedModel(["from config"])
    result = await Runner.run(Agent(name="A", model=unused), "x", run_config=RunConfig(model=used))
    assert result.final_output == "from config" and unused.requests == []


async def test_model_settings_overlay() -> None:
    from threadline import ModelSettings

    model = ScriptedModel(["ok"])
    agent = Agent(
        name="A", model=model, model_settings=ModelSettings(temperature=0.1, max_tokens=5)
    )
    await Runner.run(
        agent, "x", run_config=RunConfig(model_settings=ModelSettings(temperature=0.9))
    )
    settings = model.requests[0].settings
    assert settings.temperature == 0.9 and settings.max_tokens == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input": 42}, "input must be a string or a list"),
        ({"input": [{"content": "no role"}]}, "input item 0 has neither"),
        ({"input": "x", "max_turns": 0}, "max_turns must be a positive integer"),
    ],
)
async def test_bad_arguments_are_user_errors(kwargs: dict[str, Any], message: str) -> None:
    agent = Agent(name="A", model=ScriptedModel())
    with pytest.raises(UserError, match=message):
        await Runner.run(agent, **kwargs)


async def test_starting_agent_must_be_an_agent() -> None:
    with pytest.raises(UserError, match="must be an Agent"):
        await Runner.run("not an agent", "x")  # type: ignore[arg-type]


def test_agent_validation() -> None:
    with pytest.raises(UserError, match="non-empty"):
        Agent(name="")
    with pytest.raises(UserError, match=r"tools\[0\]"):
        Agent(name="A", tools=[print])  # type: ignore[list-item]
    with pytest.raises(UserError, match=r"handoffs\[0\]"):
        Agent(name="A", handoffs=["B"])  # type: ignore[list-item]


def test_run_sync() -> None:
    model = ScriptedModel(["one", "two"])
    agent = Agent(name="A", model=model)
    assert Runner.run_sync(agent, "1").final_output == "one"
    assert Runner.run_sync(agent, "2").final_output == "two"


async def test_run_sync_inside_a_loop_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"await Runner\.run"):
        Runner.run_sync(Agent(name="A", model=ScriptedModel()), "x")


async def test_list_input_is_sent_as_is() -> None:
    model = ScriptedModel(["ok"])
    history = [
        {"role": "user", "content": "Hi, I'm Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "Who am I?"},
    ]
    await Runner.run(Agent(name="A", model=model), history)
    assert model.requests[0].input == history


async def test_memory_by_hand_with_to_input_list() -> None:
    model = ScriptedModel(["Hello Ada.", "You are Ada."])
    agent = Agent(name="A", model=model)
    first = await Runner.run(agent, "I'm Ada.")
    second = await Runner.run(
        agent, [*first.to_input_list(), {"role": "user", "content": "Who am I?"}]
    )
    assert second.final_output == "You are Ada."
    assert [m.get("role") for m in model.requests[1].input] == ["user", "assistant", "user"]


async def test_custom_tool_call_is_answered_so_the_history_stays_valid() -> None:
    from threadline.items import pairing_problem
    from threadline.sessions import InMemorySession

    custom = {"type": "custom_tool_call", "call_id": "ct1", "name": "grep", "input": "x"}
    model = ScriptedModel([[custom], "done"])
    session = InMemorySession("custom")
    result = await Runner.run(Agent(name="A", model=model), "x", session=session)
    assert result.final_output == "done"
    stored = await session.get_items()
    assert pairing_problem(stored) is None
    answer = next(i for i in stored if i.get("type") == "custom_tool_call_output")
    assert answer["call_id"] == "ct1" and "custom tool" in answer["output"]
    assert model.requests[1].input[-1] == answer
