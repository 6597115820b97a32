"""Features a ported app uses (issue 9): handoff input filters, max-turns error handlers,
``auto_previous_response_id`` and tools enabled per turn."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from threadline import (
    Agent,
    HandoffInputData,
    HandoffOutputItem,
    MaxTurnsExceeded,
    MessageOutputItem,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunContextWrapper,
    RunErrorHandlerInput,
    RunErrorHandlerResult,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    UserError,
    function_tool,
    handoff,
)
from threadline.testing import ScriptedModel, ScriptedServer, call, reply, tool_calls

from .conftest import SessionFactory


@function_tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def _no_tools(data: HandoffInputData) -> HandoffInputData:
    """Like the SDK's remove_all_tools: the next agent sees no tool calls or outputs."""

    def keep(item: Any) -> bool:
        return not isinstance(item, (ToolCallItem, ToolCallOutputItem, HandoffOutputItem)) and (
            item.raw_item.get("type") != "function_call"
        )

    history = tuple(
        item
        for item in data.input_history
        if isinstance(item, dict)
        and item.get("type") not in ("function_call", "function_call_output")
    )
    return data.clone(
        input_history=history,
        pre_handoff_items=tuple(filter(keep, data.pre_handoff_items)),
        new_items=tuple(filter(keep, data.new_items)),
    )


# ---------------------------------------------------------------------- handoff(input_filter=)


async def test_an_input_filter_shapes_what_the_next_agent_sees(
    make_session: SessionFactory,
) -> None:
    session = make_session("filtered")
    await session.add_items(
        [
            {"role": "user", "content": "earlier"},
            {"type": "function_call", "call_id": "old", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "old", "output": "old facts"},
        ]
    )
    expert_model = ScriptedModel(["expert answer"])
    expert = Agent(name="Expert", model=expert_model)
    seen: list[HandoffInputData] = []

    async def recording_filter(data: HandoffInputData) -> HandoffInputData:
        seen.append(data)
        return _no_tools(data)

    triage = Agent(
        name="Triage",
        model=ScriptedModel(
            [
                [call("lookup", {"topic": "owls"}, call_id="c1")],
                [call("transfer_to_expert", call_id="h1")],
            ]
        ),
        tools=[lookup],
        handoffs=[handoff(expert, input_filter=recording_filter)],
    )
    result = await Runner.run(triage, "tell me about owls", session=session)
    assert result.final_output == "expert answer"
    assert result.last_agent is expert
    (data,) = seen
    assert [i.get("content", i.get("type")) for i in data.input_history] == [
        "earlier",
        "function_call",
        "function_call_output",
        "tell me about owls",
    ]
    assert [type(i).__name__ for i in data.pre_handoff_items] == [
        "ToolCallItem",
        "ToolCallOutputItem",
    ]
    assert [type(i).__name__ for i in data.new_items] == ["HandoffCallItem", "HandoffOutputItem"]
    assert data.run_context is not None
    # the expert saw the filtered history
    assert expert_model.requests[0].input == [
        {"role": "user", "content": "earlier"},
        {"role": "user", "content": "tell me about owls"},
    ]
    # the session keeps every item as it was produced
    kinds = [item.get("type", "message") for item in await session.get_items()]
    assert kinds == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "function_call",
        "function_call_output",
        "function_call",
        "function_call_output",
        "message",
    ]


async def test_input_items_replace_new_items_for_the_next_agent_only() -> None:
    expert_model = ScriptedModel(["ok"])
    expert = Agent(name="Expert", model=expert_model)

    histories: list[Any] = []

    def only_history(data: HandoffInputData) -> HandoffInputData:
        histories.append(data.input_history)
        return data.clone(pre_handoff_items=(), input_items=())

    triage = Agent(
        name="Triage",
        model=ScriptedModel([[call("transfer_to_expert")]]),
        handoffs=[handoff(expert, input_filter=only_history)],
    )
    result = await Runner.run(triage, "hi")
    assert histories == ["hi"]  # without a session, the run's input as given (as the SDK)
    assert expert_model.requests[0].input == [{"role": "user", "content": "hi"}]
    assert [type(i).__name__ for i in result.new_items][:2] == [
        "HandoffCallItem",
        "HandoffOutputItem",
    ]


async def test_a_filter_must_return_handoff_input_data() -> None:
    expert = Agent(name="Expert", model=ScriptedModel(["never"]))
    triage = Agent(
        name="Triage",
        model=ScriptedModel([[call("transfer_to_expert")]]),
        handoffs=[handoff(expert, input_filter=lambda data: [])],
    )
    with pytest.raises(UserError, match="returned list; return a HandoffInputData"):
        await Runner.run(triage, "hi")
    with pytest.raises(UserError, match="input_filter must be a function"):
        handoff(expert, input_filter="no")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- error_handlers


def _looping_agent(**kwargs: Any) -> Agent[Any]:
    model = ScriptedModel(responder=lambda request: [call("lookup", {"topic": "more"})])
    return Agent(name="Loop", model=model, tools=[lookup], **kwargs)


async def test_a_max_turns_handler_ends_the_run_and_is_stored(
    make_session: SessionFactory,
) -> None:
    session = make_session("handled")
    seen: list[RunErrorHandlerInput[Any]] = []

    def give_up(data: RunErrorHandlerInput[Any]) -> str:
        seen.append(data)
        return "I could not finish in time."

    result = await Runner.run(
        _looping_agent(), "go", max_turns=2, session=session, error_handlers={"max_turns": give_up}
    )
    assert result.final_output == "I could not finish in time."
    (handled,) = seen
    assert isinstance(handled.error, MaxTurnsExceeded) and handled.error.max_turns == 2
    assert handled.run_data.last_agent.name == "Loop"
    assert len(handled.run_data.new_items) == 4 and len(handled.run_data.raw_responses) == 2
    assert handled.run_data.history[0] == {"role": "user", "content": "go"}
    assert isinstance(result.new_items[-1], MessageOutputItem)
    stored = await session.get_items()
    assert stored[-1]["role"] == "assistant"
    assert stored[-1]["content"][0]["text"] == "I could not finish in time."


async def test_a_handler_may_keep_the_answer_out_of_the_history(
    make_session: SessionFactory,
) -> None:
    session = make_session("not-stored")

    async def quietly(data: RunErrorHandlerInput[Any]) -> RunErrorHandlerResult:
        return RunErrorHandlerResult(final_output="stopped", include_in_history=False)

    result = await Runner.run(
        _looping_agent(), "go", max_turns=1, session=session, error_handlers={"max_turns": quietly}
    )
    assert result.final_output == "stopped"
    assert not isinstance(result.new_items[-1], MessageOutputItem)
    assert (await session.get_items())[-1]["type"] == "function_call_output"


async def test_a_handler_returning_none_lets_the_error_stand() -> None:
    with pytest.raises(MaxTurnsExceeded):
        await Runner.run(
            _looping_agent(), "go", max_turns=1, error_handlers={"max_turns": lambda d: None}
        )


async def test_a_structured_output_from_a_handler_is_validated() -> None:
    class Report(BaseModel):
        status: str

    agent = _looping_agent(output_type=Report)
    result = await Runner.run(
        agent,
        "go",
        max_turns=1,
        error_handlers={"max_turns": lambda d: {"final_output": {"status": "partial"}}},
    )
    assert result.final_output == Report(status="partial")
    with pytest.raises(UserError, match="does not match agent 'Loop'"):
        await Runner.run(
            _looping_agent(output_type=Report),
            "go",
            max_turns=1,
            error_handlers={"max_turns": lambda d: {"final_output": {"nope": 1}}},
        )


@pytest.mark.parametrize(
    ("handlers", "message"),
    [
        ({"model_refusal": lambda d: None}, "not supported by threadline"),
        ({"max_turn": lambda d: None}, "unknown kind 'max_turn'"),
        ({"max_turns": "x"}, "must be a function"),
        ([], "must be a dict"),
    ],
)
async def test_bad_error_handlers_are_clear_errors(handlers: Any, message: str) -> None:
    with pytest.raises(UserError, match=message):
        await Runner.run(_looping_agent(), "go", error_handlers=handlers)


# ---------------------------------------------------------------------- auto_previous_response_id


def _client(server: ScriptedServer) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)


async def test_auto_previous_response_id_chains_a_responses_model() -> None:
    with ScriptedServer() as server:
        server.add(tool_calls(("lookup", {"topic": "owls"})), reply("Owls hoot."))
        model = OpenAIResponsesModel(model="m", openai_client=_client(server))
        agent = Agent(name="A", model=model, tools=[lookup])
        result = await Runner.run(agent, "owls?", auto_previous_response_id=True)
        first, second = (r.body for r in server.requests)
    assert result.final_output == "Owls hoot."
    assert "previous_response_id" not in first
    assert first["input"] == [{"role": "user", "content": "owls?"}]
    assert second["previous_response_id"] == result.raw_responses[0].response_id
    assert [item["type"] for item in second["input"]] == ["function_call_output"]


async def test_auto_previous_response_id_with_a_chat_model_sends_the_whole_history() -> None:
    with ScriptedServer() as server:
        server.add(tool_calls(("lookup", {"topic": "owls"})), reply("Owls hoot."))
        model = OpenAIChatCompletionsModel(model="m", openai_client=_client(server))
        agent = Agent(name="A", model=model, tools=[lookup])
        result = await Runner.run(agent, "owls?", auto_previous_response_id=True)
        second = server.requests[1].body
    assert result.final_output == "Owls hoot."
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]


async def test_auto_previous_response_id_and_a_session_do_not_mix(
    make_session: SessionFactory,
) -> None:
    agent = Agent(name="A", model=ScriptedModel(["x"]))
    with pytest.raises(UserError, match="auto_previous_response_id"):
        await Runner.run(agent, "hi", session=make_session("s"), auto_previous_response_id=True)
    with pytest.raises(UserError, match="must be True or False"):
        await Runner.run(agent, "hi", auto_previous_response_id="yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- as_tool(is_enabled=)


async def test_as_tool_is_enabled_decides_what_is_offered() -> None:
    expert = Agent(name="Expert", model=ScriptedModel(["expert says hi"]))

    async def only_for_admins(ctx: RunContextWrapper[Any], agent: Agent[Any]) -> bool:
        return bool(ctx.context and ctx.context.get("admin"))

    main_model = ScriptedModel(["no tools", [call("ask_expert", {"input": "hi"})], "done"])
    agent = Agent(
        name="Main",
        model=main_model,
        tools=[
            expert.as_tool("ask_expert", "Ask the expert.", is_enabled=only_for_admins),
            expert.as_tool("never_offered", "Off.", is_enabled=False),
        ],
    )
    await Runner.run(agent, "hi", context={"admin": False})
    assert [t.name for t in main_model.requests[0].tools] == []
    result = await Runner.run(agent, "hi", context={"admin": True})
    assert [t.name for t in main_model.requests[1].tools] == ["ask_expert"]
    assert result.final_output == "done"
    assert main_model.requests[2].input[-1]["output"] == "expert says hi"


async def test_a_call_to_a_disabled_tool_is_answered_as_unknown() -> None:
    expert = Agent(name="Expert", model=ScriptedModel(["never"]))
    model = ScriptedModel([[call("ask", {"input": "x"})], "fine"])
    agent = Agent(
        name="Main", model=model, tools=[expert.as_tool("ask", is_enabled=lambda c, a: False)]
    )
    result = await Runner.run(agent, "hi")
    assert result.final_output == "fine"
    assert "there is no tool named 'ask'" in model.requests[1].input[-1]["output"]


async def test_a_streamed_run_takes_error_handlers_too() -> None:
    streamed = Runner.run_streamed(
        _looping_agent(), "go", max_turns=1, error_handlers={"max_turns": lambda d: "cut short"}
    )
    names = [
        event.name
        async for event in streamed.stream_events()
        if event.type == "run_item_stream_event"
    ]
    assert streamed.final_output == "cut short"
    assert names[-1] == "message_output_created"
