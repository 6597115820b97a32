"""An answer that is not what the API promises is a ModelError naming the URL and the problem.

Never a raw JSONDecodeError, KeyError, TypeError or AttributeError from the client or the
converters; and never an item that would fail validation when the runner stores it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline.errors import ModelConnectionError, ModelError
from threadline.items import user_message, validate_items
from threadline.models.base import ModelRequest, ModelResponse, ResponseCompleted
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.openai_responses import OpenAIResponsesModel
from threadline.testing.server import ScriptedServer, cut_off, raw, reply

REQUEST = ModelRequest(instructions=None, input=[user_message("hi")])


def chat(client: AsyncOpenAI) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(model="m", openai_client=client)


def responses(client: AsyncOpenAI) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model="m", openai_client=client)


def completion(message: Any) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
    )


def response(*output: Any) -> str:
    return json.dumps(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": "m",
            "output": list(output),
        }
    )


def assistant(**fields: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": None, **fields}


def tool_call(**fields: Any) -> dict[str, Any]:
    return {"id": "call_1", "type": "function", **fields}


GARBAGE = [
    pytest.param("garbage", "application/json", id="not-json"),
    pytest.param('{"id": "chatcmpl-1", "choi', "application/json", id="truncated-json"),
    pytest.param("<html>Bad gateway</html>", "text/html", id="html"),
    pytest.param("[1, 2]", "application/json", id="json-list"),
    pytest.param("", "application/json", id="empty"),
    pytest.param(b"\xff\xfe\x00", "application/json", id="not-utf8"),
]


@pytest.mark.parametrize(("body", "content_type"), GARBAGE)
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_garbage_body_is_a_model_error_naming_the_url(
    server: ScriptedServer, client: AsyncOpenAI, api: str, body: str, content_type: str
) -> None:
    server.add(raw(body, content_type=content_type))
    model = chat(client) if api == "chat" else responses(client)

    with pytest.raises(ModelError, match="malformed") as caught:
        await model.get_response(REQUEST)

    err = caught.value
    path = "chat/completions" if api == "chat" else "responses"
    assert err.url == f"{server.base_url}/{path}"
    assert err.url in str(err)
    assert "\n" not in str(err)


async def test_a_body_cut_mid_transfer_says_the_connection_broke(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(cut_off(reply("hello there"), after=30, chunked=True))

    with pytest.raises(ModelConnectionError) as caught:
        await chat(client).get_response(REQUEST)

    message = str(caught.value)
    assert f"{server.base_url}/chat/completions" in message
    assert "before the answer was complete" in message
    assert "could not connect" not in message


CHAT_MALFORMED = [
    pytest.param(5, "message", id="message-not-an-object"),
    pytest.param(assistant(content=7), "content", id="content-not-a-string"),
    pytest.param(assistant(refusal=["no"]), "refusal", id="refusal-not-a-string"),
    pytest.param(assistant(tool_calls="f()"), "tool_calls", id="tool-calls-not-a-list"),
    pytest.param(assistant(tool_calls=[5]), "tool call 0", id="tool-call-not-an-object"),
    pytest.param(assistant(tool_calls=[tool_call()]), "function", id="tool-call-no-function"),
    pytest.param(
        assistant(tool_calls=[tool_call(function={"arguments": "{}"})]),
        "name",
        id="tool-call-no-name",
    ),
    pytest.param(
        assistant(tool_calls=[tool_call(function={"name": "f", "arguments": {"a": 1}})]),
        "arguments",
        id="arguments-not-a-string",
    ),
    pytest.param(
        assistant(tool_calls=[tool_call(id=12, function={"name": "f", "arguments": "{}"})]),
        "id",
        id="tool-call-id-not-a-string",
    ),
]


@pytest.mark.parametrize(("message", "field"), CHAT_MALFORMED)
async def test_a_malformed_chat_message_is_a_model_error_naming_the_field(
    server: ScriptedServer, client: AsyncOpenAI, message: Any, field: str
) -> None:
    server.add(raw(completion(message)))

    with pytest.raises(ModelError, match="malformed") as caught:
        await chat(client).get_response(REQUEST)

    assert field in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"id": "c", "choices": "none"}', id="choices-not-a-list"),
        pytest.param('{"id": "c", "choices": [7]}', id="choice-not-an-object"),
        pytest.param(
            '{"id": "c", "choices": [{"message": {"role": "assistant", "content": "hi"}}], '
            '"usage": {"prompt_tokens": "many"}}',
            id="usage-not-a-number",
        ),
    ],
)
async def test_a_malformed_chat_completion_is_a_model_error(
    server: ScriptedServer, client: AsyncOpenAI, body: str
) -> None:
    server.add(raw(body))

    with pytest.raises(ModelError, match="malformed"):
        await chat(client).get_response(REQUEST)


async def test_a_chat_tool_call_without_id_or_arguments_is_still_usable(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    """Some servers leave the id (or empty arguments) out: the call gets a fresh id."""
    calls = [{"type": "function", "function": {"name": "f"}}]
    server.add(raw(completion(assistant(tool_calls=calls))))

    [call] = (await chat(client).get_response(REQUEST)).output

    assert call["call_id"].startswith("call_")
    assert (call["name"], call["arguments"]) == ("f", "")
    validate_items([call])


FUNCTION_CALL = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
MESSAGE = {
    "type": "message",
    "id": "msg_1",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "hi", "annotations": []}],
}


def without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


RESPONSES_MALFORMED = [
    pytest.param(without(FUNCTION_CALL, "call_id"), "call_id", id="call-without-call-id"),
    pytest.param(without(FUNCTION_CALL, "name"), "name", id="call-without-name"),
    pytest.param(dict(FUNCTION_CALL, arguments=None), "arguments", id="call-arguments-null"),
    pytest.param(without(FUNCTION_CALL, "type"), "type", id="item-without-type"),
    pytest.param(5, "output item 0", id="item-not-an-object"),
    pytest.param(without(MESSAGE, "role"), "role", id="message-without-role"),
    pytest.param(dict(MESSAGE, content="hi"), "content", id="message-content-not-a-list"),
    pytest.param(dict(MESSAGE, content=[{"text": "hi"}]), "part 0", id="part-without-type"),
    pytest.param(
        dict(MESSAGE, content=[{"type": "output_text"}]), "text", id="output-text-without-text"
    ),
]


@pytest.mark.parametrize(("item", "field"), RESPONSES_MALFORMED)
@pytest.mark.parametrize("streamed", [False, True], ids=["get_response", "stream_response"])
async def test_a_malformed_responses_output_item_is_a_model_error_naming_the_field(
    server: ScriptedServer, client: AsyncOpenAI, item: Any, field: str, streamed: bool
) -> None:
    body = response(item)
    if streamed:
        event = {"type": "response.completed", "sequence_number": 0, "response": json.loads(body)}
        server.add(raw(f"data: {json.dumps(event)}\n\n", content_type="text/event-stream"))
    else:
        server.add(raw(body))
    model = responses(client)

    with pytest.raises(ModelError, match="malformed") as caught:
        if streamed:
            [event async for event in model.stream_response(REQUEST)]
        else:
            await model.get_response(REQUEST)

    assert field in str(caught.value)
    assert f"{server.base_url}/responses" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"id": "r", "status": "completed", "output": "hi"}', id="output-not-a-list"),
        pytest.param('{"status": "completed", "output": []}', id="no-id"),
        pytest.param(
            '{"id": "r", "status": "completed", "output": [], "usage": {"input_tokens": []}}',
            id="usage-not-a-number",
        ),
    ],
)
async def test_a_malformed_response_object_is_a_model_error(
    server: ScriptedServer, client: AsyncOpenAI, body: str
) -> None:
    server.add(raw(body))

    with pytest.raises(ModelError, match="malformed"):
        await responses(client).get_response(REQUEST)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("5", id="not-an-object"),
        pytest.param('{"id": "c", "choices": "abc"}', id="choices-not-a-list"),
        pytest.param('{"id": "c", "choices": [{"delta": 3}]}', id="delta-not-an-object"),
        pytest.param('{"id": "c", "choices": [{"delta": {"content": 3}}]}', id="content-number"),
        pytest.param(
            '{"id": "c", "choices": [{"delta": {"tool_calls": [{"index": "x"}]}}]}',
            id="tool-call-index-not-an-int",
        ),
    ],
)
async def test_a_malformed_chat_stream_chunk_is_a_model_error(
    server: ScriptedServer, client: AsyncOpenAI, data: str
) -> None:
    server.add(raw(f"data: {data}\n\n", content_type="text/event-stream"))

    with pytest.raises(ModelError, match="malformed") as caught:
        [event async for event in chat(client).stream_response(REQUEST)]

    assert f"{server.base_url}/chat/completions" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"type": "response.output_text.delta", "delta": 5}', id="delta-number"),
        pytest.param('{"type": "response.completed", "response": 5}', id="response-number"),
        pytest.param('{"type": 5}', id="type-number"),
    ],
)
async def test_a_malformed_responses_stream_event_is_a_model_error(
    server: ScriptedServer, client: AsyncOpenAI, data: str
) -> None:
    server.add(raw(f"data: {data}\n\n", content_type="text/event-stream"))

    with pytest.raises(ModelError, match="malformed") as caught:
        [event async for event in responses(client).stream_response(REQUEST)]

    assert f"{server.base_url}/responses" in str(caught.value)


async def test_healthy_answers_still_pass_and_are_storable(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(raw(completion(assistant(content="hi"))), raw(response(MESSAGE, FUNCTION_CALL)))
    outputs: list[ModelResponse] = [
        await chat(client).get_response(REQUEST),
        await responses(client).get_response(REQUEST),
    ]
    stream_event = {"type": "response.completed", "response": json.loads(response(MESSAGE))}
    server.add(raw(f"data: {json.dumps(stream_event)}\n\n", content_type="text/event-stream"))
    [done] = [event async for event in responses(client).stream_response(REQUEST)]
    assert isinstance(done, ResponseCompleted)

    for output in [*outputs, done.response]:
        validate_items(output.output)
    assert [item["type"] for item in outputs[1].output] == ["message", "function_call"]
