"""OpenAIChatCompletionsModel through the real openai client, over HTTP, against ScriptedServer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline.errors import UserError
from threadline.items import function_call, function_call_output, user_message
from threadline.models.base import (
    ModelRequest,
    OutputSchema,
    ResponseCompleted,
    TextDelta,
    ToolSpec,
)
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.settings import ModelSettings
from threadline.testing.server import ScriptedServer, reply, tool_calls
from threadline.usage import Usage

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)


def ask(text: str, *, instructions: str | None = None, **fields: Any) -> ModelRequest:
    return ModelRequest(instructions=instructions, input=[user_message(text)], **fields)


@pytest.fixture
def model(client: AsyncOpenAI) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(model="test-model", openai_client=client)


async def test_text_reply_becomes_an_assistant_message_item(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(reply("San Francisco"))

    response = await model.get_response(ask("Where is the Golden Gate?", instructions="Be brief."))

    [message] = response.output
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["status"] == "completed"
    assert message["id"].startswith("msg_")
    assert message["content"] == [
        {"type": "output_text", "text": "San Francisco", "annotations": []}
    ]
    assert response.response_id == "chatcmpl-1"
    assert response.raw.choices[0].message.content == "San Francisco"
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.body["model"] == "test-model"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is the Golden Gate?"},
    ]
    assert "stream" not in sent.body


async def test_model_takes_positional_arguments_like_the_agents_sdk(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(reply("ok"))
    model = OpenAIChatCompletionsModel("positional-model", client)

    await model.get_response(ask("hi"))

    assert server.requests[0].body["model"] == "positional-model"


async def test_usage_is_reported_with_one_request(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(
        reply("four words right here"), reply("x", usage={"input_tokens": 7, "output_tokens": 3})
    )

    first = await model.get_response(ask("one two three"))
    second = await model.get_response(ask("again"))

    assert first.usage == Usage(requests=1, input_tokens=3, output_tokens=4, total_tokens=7)
    assert second.usage == Usage(requests=1, input_tokens=7, output_tokens=3, total_tokens=10)


async def test_several_tool_calls_in_one_response(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(
        tool_calls(("get_weather", {"city": "Tokyo"}), ("add", {"a": 1, "b": 2}), text="Checking.")
    )

    response = await model.get_response(ask("weather and sum", tools=[WEATHER]))

    message, weather, add = response.output
    assert message["content"][0]["text"] == "Checking."
    assert weather["type"] == "function_call"
    assert weather["call_id"] == "call_1_0"
    assert weather["name"] == "get_weather"
    assert json.loads(weather["arguments"]) == {"city": "Tokyo"}
    assert weather["id"].startswith("fc_")
    assert (add["call_id"], add["name"], json.loads(add["arguments"])) == (
        "call_1_1",
        "add",
        {"a": 1, "b": 2},
    )
    assert server.requests[0].body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": WEATHER.parameters,
                "strict": True,
            },
        }
    ]


async def test_tool_calls_without_text_give_only_call_items(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(tool_calls(("get_weather", {"city": "Oslo"})))

    response = await model.get_response(ask("weather", tools=[WEATHER]))

    assert [item["type"] for item in response.output] == ["function_call"]


async def test_malformed_arguments_are_passed_through_verbatim(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(tool_calls(("get_weather", "{not json")))

    response = await model.get_response(ask("weather", tools=[WEATHER]))

    assert response.output[0]["arguments"] == "{not json"


async def test_streaming_text_yields_deltas_then_one_completed_event(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(reply("The fog rolls in"))

    events = [event async for event in model.stream_response(ask("describe SF"))]

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 3
    assert "".join(d.delta for d in deltas) == "The fog rolls in"
    assert isinstance(events[-1], ResponseCompleted)
    assert sum(isinstance(e, ResponseCompleted) for e in events) == 1
    final = events[-1].response
    [message] = final.output
    assert message["content"][0]["text"] == "The fog rolls in"
    assert {d.item_id for d in deltas} == {message["id"]}
    assert final.usage.requests == 1
    assert final.usage.output_tokens == 4
    assert final.response_id == "chatcmpl-1"
    body = server.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_streaming_tool_calls_are_assembled_from_fragments(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(tool_calls(("get_weather", {"city": "San Francisco"}), ("get_weather", "{broken")))

    events = [event async for event in model.stream_response(ask("two cities", tools=[WEATHER]))]

    assert not any(isinstance(e, TextDelta) for e in events)
    [completed] = events
    assert isinstance(completed, ResponseCompleted)
    first, second = completed.response.output
    assert (first["call_id"], first["name"]) == ("call_1_0", "get_weather")
    assert json.loads(first["arguments"]) == {"city": "San Francisco"}
    assert (second["call_id"], second["arguments"]) == ("call_1_1", "{broken")


async def test_structured_output_request_shape(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    server.add(reply('{"answer": 4}'))

    response = await model.get_response(
        ask("2+2?", output_schema=OutputSchema(name="final_output", json_schema=schema))
    )

    assert json.loads(response.output[0]["content"][0]["text"]) == {"answer": 4}
    assert server.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "final_output", "schema": schema, "strict": True},
    }


async def test_settings_are_mapped_to_request_fields(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    settings = ModelSettings(
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        tool_choice="get_weather",
        parallel_tool_calls=False,
        stop=["END"],
        seed=7,
        frequency_penalty=0.1,
        presence_penalty=0.3,
        extra_body={"top_k": 5},
    )
    server.add(reply("ok"))

    await model.get_response(ask("hi", tools=[WEATHER], settings=settings))

    body = server.requests[0].body
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 50
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["stop"] == ["END"]
    assert body["seed"] == 7
    assert body["frequency_penalty"] == 0.1
    assert body["presence_penalty"] == 0.3
    assert body["top_k"] == 5


async def test_unset_settings_are_not_sent_and_parallel_calls_need_tools(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(reply("ok"))

    await model.get_response(
        ask("hi", settings=ModelSettings(tool_choice="required", parallel_tool_calls=True))
    )

    body = server.requests[0].body
    assert body["tool_choice"] == "required"
    assert "parallel_tool_calls" not in body
    for absent in ("temperature", "top_p", "max_tokens", "stop", "seed", "tools"):
        assert absent not in body


async def test_full_history_is_sent_as_chat_messages(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    history = [
        user_message("Weather in Tokyo and Paris?"),
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}],
        },
        function_call("c1", "get_weather", '{"city": "Tokyo"}'),
        function_call("c2", "get_weather", '{"city": "Paris"}'),
        {"type": "reasoning", "id": "rs_1", "summary": []},
        function_call_output("c1", "sunny"),
        function_call_output("c2", "rainy"),
        {"type": "message", "role": "assistant", "content": "Tokyo sunny, Paris rainy."},
        user_message("Thanks"),
    ]
    server.add(reply("You're welcome"))

    await model.get_response(ModelRequest(instructions="Be kind.", input=history))

    assert server.requests[0].body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Weather in Tokyo and Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rainy"},
        {"role": "assistant", "content": "Tokyo sunny, Paris rainy."},
        {"role": "user", "content": "Thanks"},
    ]


async def test_output_items_can_be_sent_back_unchanged(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    server.add(tool_calls(("get_weather", {"city": "Lima"}), text="One moment."), reply("Warm."))
    first = await model.get_response(ask("Lima?", tools=[WEATHER]))
    call_id = first.output[1]["call_id"]
    history = [user_message("Lima?"), *first.output, function_call_output(call_id, "25C")]

    await model.get_response(ModelRequest(instructions=None, input=history, tools=[WEATHER]))

    messages = server.requests[1].body["messages"]
    assert messages[1]["content"] == "One moment."
    assert messages[1]["tool_calls"][0]["id"] == call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call_id, "content": "25C"}


async def test_unsendable_item_is_a_user_error_before_any_request(
    server: ScriptedServer, model: OpenAIChatCompletionsModel
) -> None:
    history = [user_message("hi"), {"type": "item_reference", "id": "msg_1"}]

    with pytest.raises(
        UserError, match=r"item 1: chat completions cannot send item type 'item_reference'"
    ):
        await model.get_response(ModelRequest(instructions=None, input=history))

    assert server.requests == []
