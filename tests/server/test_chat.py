"""``POST /v1/chat/completions``: stateless, on a conversation (body or header), tail-append,
divergence (409 or a fork), client tools, streaming chunks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from threadline import Agent, function_tool
from threadline.testing.server import ScriptedServer, reply, tool_calls

from .conftest import Served, http, upstream_model

CHAT_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def sent(server: ScriptedServer, index: int = -1) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in server.requests[index].body["messages"]]


def test_stateless(serve: Callable[..., Served], upstream: ScriptedServer, store_url: str) -> None:
    client = serve().client()
    upstream.add(reply("Paris."))
    completion = client.chat.completions.create(
        model="assistant",
        messages=[
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of France?"},
        ],
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    # the leading system message is the request's instructions
    assert sent(upstream) == [("system", "Answer in one word."), ("user", "Capital of France?")]
    assert client.conversations.create()  # the store holds only that new conversation


def test_a_conversation_by_body_and_by_header(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(reply("San Francisco."), reply("California."), reply("Yes."))
    first = client.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": "What city is the Golden Gate Bridge in?"}],
        extra_body={"conversation": conv.id},
    )
    assert first.choices[0].message.content == "San Francisco."
    # the client resends the whole transcript: only the tail is new
    transcript: list[Any] = [
        {"role": "user", "content": "What city is the Golden Gate Bridge in?"},
        {"role": "assistant", "content": "San Francisco."},
        {"role": "user", "content": "What state is it in?"},
    ]
    client.chat.completions.create(
        model="assistant",
        messages=transcript,
        extra_headers={"X-Threadline-Conversation-Id": conv.id},
    )
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [item.content[0].text for item in items] == [  # type: ignore[union-attr]
        "What city is the Golden Gate Bridge in?",
        "San Francisco.",
        "What state is it in?",
        "California.",
    ]
    # a system prompt resent each time is the instructions, never stored
    client.chat.completions.create(
        model="assistant",
        messages=[
            {"role": "system", "content": "Be brief."},
            *transcript,
            {"role": "assistant", "content": "California."},
            {"role": "user", "content": "Sure?"},
        ],
        extra_body={"conversation": conv.id},
    )
    assert sent(upstream)[0] == ("system", "Be brief.")
    assert len(client.conversations.items.list(conv.id).data) == 6


def test_divergence_is_a_409_or_a_fork(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(reply("A1"), reply("A2"), reply("fork answer"))
    base = [{"role": "user", "content": "Q1"}]
    client.chat.completions.create(
        model="assistant", messages=base, extra_body={"conversation": conv.id}
    )  # type: ignore[arg-type]
    client.chat.completions.create(
        model="assistant",
        messages=[*base, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}],  # type: ignore[list-item]
        extra_body={"conversation": conv.id},
    )
    edited: Any = [
        *base,
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2, edited"},
    ]
    with pytest.raises(openai.ConflictError) as caught:
        client.chat.completions.create(
            model="assistant", messages=edited, extra_body={"conversation": conv.id}
        )
    assert caught.value.code == "conversation_diverged"
    assert len(client.conversations.items.list(conv.id).data) == 4  # nothing overwritten
    assert "whole transcript" not in caught.value.message
    # only the new message, as a Responses client would send it: the 409 says why
    with pytest.raises(openai.ConflictError) as only_new:
        client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "Q3"}],
            extra_body={"conversation": conv.id},
        )
    assert "whole transcript" in only_new.value.message
    assert "/v1/responses" in only_new.value.message
    # a transcript the conversation moved past is a divergence too
    with pytest.raises(openai.ConflictError):
        client.chat.completions.create(
            model="assistant", messages=base, extra_body={"conversation": conv.id}
        )  # type: ignore[arg-type]

    raw = client.chat.completions.with_raw_response.create(
        model="assistant",
        messages=edited,
        extra_body={"conversation": conv.id},
        extra_headers={"X-Threadline-On-Divergence": "fork"},
    )
    fork_id = raw.headers["x-threadline-conversation-id"]
    assert fork_id != conv.id
    assert raw.parse().choices[0].message.content == "fork answer"
    forked = [
        item.content[0].text for item in client.conversations.items.list(fork_id, order="asc").data
    ]  # type: ignore[union-attr]
    assert forked == ["Q1", "A1", "Q2, edited", "fork answer"]
    original = [
        item.content[0].text for item in client.conversations.items.list(conv.id, order="asc").data
    ]  # type: ignore[union-attr]
    assert original == ["Q1", "A1", "Q2", "A2"]
    assert sent(upstream)[1:] == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2, edited")]


def test_nothing_new_is_a_400(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    conv = client.conversations.create(
        items=[
            {"role": "user", "content": "Q"},
            {"type": "message", "role": "assistant", "content": "A"},
        ]
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
            extra_body={"conversation": conv.id},
        )
    assert upstream.requests == []


def test_client_tools_with_a_conversation(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(tool_calls(("get_weather", {"city": "Oslo"})), reply("Cold in Oslo."))
    messages: list[Any] = [{"role": "user", "content": "Oslo?"}]
    asked = client.chat.completions.create(
        model="assistant",
        messages=messages,
        tools=[CHAT_TOOL],
        extra_body={"conversation": conv.id},
    )
    choice = asked.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "-5C"},
    ]
    done = client.chat.completions.create(
        model="assistant",
        messages=messages,
        tools=[CHAT_TOOL],
        extra_body={"conversation": conv.id},
    )
    assert done.choices[0].message.content == "Cold in Oslo."
    assert sent(upstream)[-1] == ("tool", "-5C")
    kinds = [item.type for item in client.conversations.items.list(conv.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output", "message"]


def test_server_tools_are_hidden_from_the_transcript(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    @function_tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    agent = Agent(name="calc", instructions="i", model=upstream_model(upstream), tools=[add])
    client = serve(agents=[agent]).client()
    conv = client.conversations.create()
    upstream.add(tool_calls(("add", {"a": 1, "b": 2})), reply("3"), reply("ok"))
    first = client.chat.completions.create(
        model="calc",
        messages=[{"role": "user", "content": "1+2?"}],
        extra_body={"conversation": conv.id},
    )
    assert first.choices[0].message.content == "3"
    assert first.choices[0].message.tool_calls is None
    # the client's transcript never saw the tool step, and still continues the conversation
    client.chat.completions.create(
        model="calc",
        messages=[
            {"role": "user", "content": "1+2?"},
            {"role": "assistant", "content": "3"},
            {"role": "user", "content": "thanks"},
        ],
        extra_body={"conversation": conv.id},
    )
    assert len(client.conversations.items.list(conv.id).data) == 6


def test_streaming_chunks(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(reply("Streaming works fine."))
    chunks = list(
        client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "go"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"conversation": conv.id},
        )
    )
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Streaming works fine."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    stored = client.conversations.items.list(conv.id, order="asc").data
    assert stored[-1].content[0].text == "Streaming works fine."  # type: ignore[union-attr]


def test_streamed_tool_calls(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    upstream.add(tool_calls(("get_weather", {"city": "Rome"})))
    chunks = list(
        client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "Rome?"}],
            tools=[CHAT_TOOL],
            stream=True,
        )
    )
    calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert len(calls) == 1 and calls[0][0].function.name == "get_weather"  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_done_marker_on_the_wire(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    served = serve()
    upstream.add(reply("x"))
    answer = http(
        "POST",
        served.base_url + "/chat/completions",
        {"model": "assistant", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    lines = [line for line in answer.body.decode().split("\n") if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_bad_requests(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    for kwargs in (
        {"messages": []},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x"}], "n": 2},
        {
            "messages": [{"role": "user", "content": "x"}],
            "extra_body": {"conversation": "conv_nope"},
        },
    ):
        with pytest.raises((openai.BadRequestError, openai.NotFoundError)):
            client.chat.completions.create(model="assistant", **kwargs)  # type: ignore[call-overload]
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"
    assert upstream.requests == []


def test_a_tool_message_that_answers_no_call_is_a_400(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    """A ``role: tool`` message whose tool_call_id no assistant tool call before it carries is
    refused before the upstream is called or anything is stored."""
    client = serve().client()
    conv = client.conversations.create()
    messages: Any = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_ghost", "content": "x"},
    ]
    for extra in ({}, {"conversation": conv.id}):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="assistant", messages=messages, extra_body=extra)
        assert "call_ghost" in caught.value.message and caught.value.param == "messages"
    assert upstream.requests == []
    assert client.conversations.items.list(conv.id).data == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_missing_conversation_is_a_404_that_writes_nothing(
    serve: Callable[..., Served], upstream: ScriptedServer, store_url: str, stream: bool
) -> None:
    import sqlite3

    client = serve().client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"conversation": "conv_nope"},
            stream=stream,
        )
    assert missing.value.body["param"] == "conversation"  # type: ignore[index]
    assert "conv_nope" in missing.value.body["message"]  # type: ignore[index]
    with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT count(*) FROM threadline_leases").fetchone() == (0,)
    assert upstream.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_turn_on_a_conversation_ends_its_lease_with_the_reply(
    serve: Callable[..., Served],
    upstream: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
    store_url: str,
    stream: bool,
) -> None:
    import sqlite3

    from .._engine_jobs import log_engine_jobs

    client = serve().client()
    conv = client.conversations.create()
    log = log_engine_jobs(monkeypatch)
    upstream.add(reply("One."), reply("Two."))
    transcript: list[Any] = []
    for text, answer_text in (("a", "One."), ("b", "Two.")):  # (b: a 409 had a's lease stayed)
        log.clear()
        transcript.append({"role": "user", "content": text})
        answer = client.chat.completions.create(
            model="assistant",
            messages=transcript,
            extra_body={"conversation": conv.id},
            stream=stream,
        )
        transcript.append({"role": "assistant", "content": answer_text})
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in answer if c.choices)  # type: ignore[union-attr]
        writes = [job for job in log if job[0] != "read"]
        assert writes[0] == ("False", "acquire_lease_existing")
        assert writes[-1] == ("True", "add_and_release")  # the reply and the lease's end
        assert ("False", "release_lease") not in log
    with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT owner FROM threadline_leases").fetchall() == [("",)]
