"""A stream that stops before its end is a ModelError, never a shorter answer (STYLE §12).

Chat completions: complete means a chunk with a ``finish_reason`` arrived. ``[DONE]`` and the
usage chunk after it are optional (some providers leave them out). Responses API: complete means
``response.completed`` (or ``response.incomplete``) arrived.
"""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI

from threadline.errors import ModelConnectionError, ModelError
from threadline.items import user_message
from threadline.models.base import ModelRequest, ResponseCompleted, TextDelta, ToolSpec
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.openai_responses import OpenAIResponsesModel
from threadline.testing.server import ScriptedServer, cut_off, raw, reply, tool_calls

TOOL = ToolSpec(name="f", description="A tool.", parameters={"type": "object"}, strict=False)
REQUEST = ModelRequest(instructions=None, input=[user_message("hi")], tools=[TOOL])
TEXT = "one two three four"
# The chat stream of reply(TEXT): role chunk, four words, finish_reason, usage, [DONE].
FINISH = 5


def chat(client: AsyncOpenAI) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(model="m", openai_client=client)


def responses(client: AsyncOpenAI) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model="m", openai_client=client)


async def completed(model: OpenAIChatCompletionsModel | OpenAIResponsesModel) -> ResponseCompleted:
    events = [event async for event in model.stream_response(REQUEST)]
    assert isinstance(events[-1], ResponseCompleted)
    return events[-1]


def text_of(event: ResponseCompleted) -> str:
    [message] = event.response.output
    return str(message["content"][0]["text"])


@pytest.mark.parametrize("after", [1, 3, FINISH - 1])
async def test_chat_stream_cut_before_finish_reason_is_an_error(
    server: ScriptedServer, client: AsyncOpenAI, after: int
) -> None:
    server.add(cut_off(reply(TEXT), after=after))

    seen: list[str] = []
    with pytest.raises(ModelError, match="ended early") as caught:
        async for event in chat(client).stream_response(REQUEST):
            assert isinstance(event, TextDelta), "no response may complete"
            seen.append(event.delta)

    err = caught.value
    url = f"{server.base_url}/chat/completions"
    assert url in str(err)
    assert err.url == url
    assert "finish_reason" in str(err)
    assert "\n" not in str(err)
    assert "".join(seen) == " ".join(TEXT.split()[: after - 1])


async def test_chat_tool_call_stream_cut_mid_arguments_is_an_error(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    # role chunk, call head, first piece of the arguments: then the connection closes
    server.add(cut_off(tool_calls(("f", {"city": "San Francisco"})), after=3))

    with pytest.raises(ModelError, match="ended early"):
        await completed(chat(client))


async def test_chat_stream_with_finish_reason_but_no_usage_or_done_is_complete(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    """Providers that end with finish_reason and close (no usage chunk, no [DONE]) are fine."""
    server.add(cut_off(reply(TEXT), after=FINISH + 1), cut_off(reply(TEXT), after=-1))

    without_usage = await completed(chat(client))
    without_done = await completed(chat(client))

    assert text_of(without_usage) == text_of(without_done) == TEXT
    assert without_usage.response.usage.output_tokens == 0
    assert without_done.response.usage.output_tokens == 4


async def test_chat_tool_call_stream_without_done_is_complete(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(cut_off(tool_calls(("f", {"a": 1})), after=-1))

    [call] = (await completed(chat(client))).response.output

    assert json.loads(call["arguments"]) == {"a": 1}


async def test_finish_reason_then_a_usage_only_chunk_is_complete(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    chunks = [
        dict(base, choices=[{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]),
        dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "length"}]),
        dict(base, choices=[], usage={"prompt_tokens": 2, "completion_tokens": 1}),
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    server.add(raw(body, content_type="text/event-stream"))

    event = await completed(chat(client))

    assert text_of(event) == "Hi"
    assert event.response.usage.input_tokens == 2


async def test_chat_stream_broken_mid_transfer_says_so(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(cut_off(reply(TEXT), after=3, chunked=True))

    with pytest.raises(ModelConnectionError, match="ended early") as caught:
        await completed(chat(client))

    assert f"{server.base_url}/chat/completions" in str(caught.value)
    assert "could not connect" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("<html>Bad gateway</html>", "text/html"), ('{"id": "x"}', "application/json"), ("", "")],
)
async def test_chat_stream_request_answered_without_events_is_an_error(
    server: ScriptedServer, client: AsyncOpenAI, body: str, content_type: str
) -> None:
    server.add(raw(body, content_type=content_type or "text/event-stream"))

    with pytest.raises(ModelError, match="ended early") as caught:
        await completed(chat(client))

    if content_type:
        assert repr(content_type) in str(caught.value)


@pytest.mark.parametrize("after", [1, 4, -1])
async def test_responses_stream_cut_before_completed_names_the_url(
    server: ScriptedServer, client: AsyncOpenAI, after: int
) -> None:
    server.add(cut_off(reply(TEXT), after=after))

    with pytest.raises(ModelError, match="ended early") as caught:
        await completed(responses(client))

    assert caught.value.url == f"{server.base_url}/responses"
    assert caught.value.url in str(caught.value)


async def test_responses_stream_broken_mid_transfer_says_so(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(cut_off(tool_calls(("f", {})), after=2, chunked=True))

    with pytest.raises(ModelConnectionError, match="ended early"):
        await completed(responses(client))
