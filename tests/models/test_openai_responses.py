"""OpenAIResponsesModel through the real openai client, over HTTP, against ScriptedServer."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI

from threadline.errors import UserError
from threadline.items import function_call_output, message_text, user_message
from threadline.models.base import (
    ModelRequest,
    OutputSchema,
    ResponseCompleted,
    TextDelta,
    ToolSpec,
)
from threadline.models.openai_responses import OpenAIResponsesModel
from threadline.models.settings import ModelSettings
from threadline.testing.server import ScriptedServer, reply, tool_calls
from threadline.usage import Usage

ADD = ToolSpec(
    name="add",
    description="Add two numbers.",
    parameters={"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    strict=False,
)


@pytest.fixture
def model(client: AsyncOpenAI) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model="gpt-test", openai_client=client)


async def test_text_reply_and_request_shape(
    server: ScriptedServer, model: OpenAIResponsesModel
) -> None:
    server.add(reply("Hello back"))

    response = await model.get_response(
        ModelRequest(instructions="Be brief.", input=[user_message("Hello")])
    )

    [message] = response.output
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message_text(message) == "Hello back"
    assert response.response_id == "resp_1"
    assert response.usage == Usage(requests=1, input_tokens=3, output_tokens=2, total_tokens=5)
    sent = server.requests[0]
    assert sent.path == "/v1/responses"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["instructions"] == "Be brief."
    assert sent.body["input"] == [{"role": "user", "content": "Hello"}]


async def test_tool_calls_come_back_as_sendable_items(
    server: ScriptedServer, model: OpenAIResponsesModel
) -> None:
    server.add(tool_calls(("add", {"a": 1, "b": 2}), ("add", "{oops")), reply("3"))

    first = await model.get_response(
        ModelRequest(instructions=None, input=[user_message("1+2")], tools=[ADD])
    )

    call, broken = first.output
    assert call["type"] == "function_call"
    assert (call["call_id"], call["name"]) == ("call_1_0", "add")
    assert json.loads(call["arguments"]) == {"a": 1, "b": 2}
    assert broken["arguments"] == "{oops"
    assert all(isinstance(value, (str, int, float, bool, list, dict)) for value in call.values())
    assert server.requests[0].body["tools"] == [
        {
            "type": "function",
            "name": "add",
            "description": "Add two numbers.",
            "parameters": ADD.parameters,
            "strict": False,
        }
    ]

    history = [user_message("1+2"), *first.output, function_call_output("call_1_0", "3")]
    await model.get_response(ModelRequest(instructions=None, input=history, tools=[ADD]))

    assert server.requests[1].body["input"] == history


async def test_structured_output_and_settings(
    server: ScriptedServer, model: OpenAIResponsesModel
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    server.add(reply('{"answer": 4}'))
    settings = ModelSettings(
        temperature=0.5,
        top_p=0.8,
        max_tokens=20,
        tool_choice="add",
        parallel_tool_calls=False,
        extra_body={"store": False},
    )

    await model.get_response(
        ModelRequest(
            instructions=None,
            input=[user_message("2+2")],
            tools=[ADD],
            settings=settings,
            output_schema=OutputSchema(name="final_output", json_schema=schema, strict=False),
        )
    )

    body = server.requests[0].body
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "final_output", "schema": schema, "strict": False}
    }
    assert body["temperature"] == 0.5
    assert body["top_p"] == 0.8
    assert body["max_output_tokens"] == 20
    assert "max_tokens" not in body
    assert body["tool_choice"] == {"type": "function", "name": "add"}
    assert body["parallel_tool_calls"] is False
    assert body["store"] is False


async def test_chat_only_settings_are_refused(
    server: ScriptedServer, model: OpenAIResponsesModel
) -> None:
    request = ModelRequest(
        instructions=None, input=[user_message("hi")], settings=ModelSettings(seed=3)
    )

    with pytest.raises(
        UserError, match=r"ModelSettings\.seed is not supported by the OpenAI Responses API"
    ):
        await model.get_response(request)

    assert server.requests == []


async def test_streaming_text_and_calls(
    server: ScriptedServer, model: OpenAIResponsesModel
) -> None:
    server.add(tool_calls(("add", {"a": 2, "b": 2}), text="Adding two and two"))

    events = [
        event
        async for event in model.stream_response(
            ModelRequest(instructions=None, input=[user_message("2+2")], tools=[ADD])
        )
    ]

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 4
    assert "".join(d.delta for d in deltas) == "Adding two and two"
    assert {d.item_id for d in deltas} == {"msg_1"}
    completed = events[-1]
    assert isinstance(completed, ResponseCompleted)
    assert sum(isinstance(e, ResponseCompleted) for e in events) == 1
    message, call = completed.response.output
    assert message_text(message) == "Adding two and two"
    assert json.loads(call["arguments"]) == {"a": 2, "b": 2}
    assert completed.response.usage.requests == 1
    assert completed.response.usage.total_tokens > 0
    assert server.requests[0].body["stream"] is True
