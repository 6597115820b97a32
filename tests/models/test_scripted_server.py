"""ScriptedServer itself: queueing, recording, loud failures, and the wire formats it speaks."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import AsyncOpenAI

from threadline.errors import UserError
from threadline.testing._wire import split_text
from threadline.testing.server import (
    RecordedRequest,
    ScriptedCompletion,
    ScriptedServer,
    cut_off,
    error,
    raw,
    reply,
    tool_calls,
)
from threadline.usage import Usage


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_steps_are_consumed_in_order_from_a_plain_sync_client() -> None:
    with ScriptedServer() as server:
        server.add(reply("first"), reply("second"))
        url = f"{server.base_url}/chat/completions"

        bodies = [json.loads(post(url, {"model": "m", "messages": []})[2]) for _ in range(2)]

    assert [b["choices"][0]["message"]["content"] for b in bodies] == ["first", "second"]
    assert server.pending == 0


def test_requests_are_recorded_with_body_and_lowercase_headers() -> None:
    with ScriptedServer() as server:
        server.add(reply("ok"))
        post(f"{server.base_url}/responses", {"model": "m", "input": "hi"})

    [recorded] = server.requests
    assert recorded == RecordedRequest(
        path="/v1/responses", body={"model": "m", "input": "hi"}, headers=recorded.headers
    )
    assert recorded.headers["content-type"] == "application/json"


def test_running_out_of_script_is_a_loud_500_that_is_not_retried() -> None:
    with ScriptedServer() as server:
        status, headers, body = post(f"{server.base_url}/chat/completions", {"model": "m"})

    assert status == 500
    assert headers["x-should-retry"] == "false"
    assert "the script ran out" in json.loads(body)["error"]["message"]


def test_responder_answers_when_the_queue_is_empty() -> None:
    seen: list[str] = []

    def echo(request: RecordedRequest) -> ScriptedCompletion:
        seen.append(request.path)
        return reply(f"echo {request.body['messages'][-1]['content']}")

    with ScriptedServer() as server:
        server.add(reply("queued"))
        server.responder = echo
        url = f"{server.base_url}/chat/completions"
        texts = [
            json.loads(post(url, {"messages": [{"role": "user", "content": word}]})[2])["choices"][
                0
            ]["message"]["content"]
            for word in ("a", "b")
        ]

    assert texts == ["queued", "echo b"]
    assert seen == ["/v1/chat/completions"]


def test_a_failing_responder_is_reported() -> None:
    def broken(request: RecordedRequest) -> ScriptedCompletion:
        raise ValueError("no idea")

    with ScriptedServer() as server:
        server.responder = broken
        status, _, body = post(f"{server.base_url}/chat/completions", {})

    assert status == 500
    assert "responder raised ValueError: no idea" in json.loads(body)["error"]["message"]


def test_unknown_path_is_404() -> None:
    with ScriptedServer() as server:
        server.add(reply("unused"))
        status, _, _ = post(f"{server.base_url}/embeddings", {})

    assert status == 404
    assert server.pending == 1


def test_error_step_sends_status_body_and_retry_headers() -> None:
    with ScriptedServer() as server:
        server.add(error(429, "slow down", retry_after=1.5))
        status, headers, body = post(f"{server.base_url}/chat/completions", {})

    assert status == 429
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "1500"
    assert json.loads(body)["error"]["message"] == "slow down"


def test_usage_override_accepts_usage_objects() -> None:
    with ScriptedServer() as server:
        server.add(reply("x", usage=Usage(input_tokens=11, output_tokens=22)))
        body = json.loads(post(f"{server.base_url}/chat/completions", {})[2])

    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}


def test_step_helpers_reject_bad_input() -> None:
    with pytest.raises(UserError, match="at least one"):
        tool_calls()
    with pytest.raises(UserError, match=r"call 0 must be a \(name, arguments\) tuple"):
        tool_calls(["f", {}])  # type: ignore[arg-type]
    with pytest.raises(UserError, match="400-599"):
        error(200)
    with pytest.raises(UserError, match="step 0"):
        ScriptedServer().add("hello")  # type: ignore[arg-type]


def test_base_url_needs_a_running_server() -> None:
    server = ScriptedServer()
    with pytest.raises(UserError, match="not running"):
        _ = server.base_url
    server.start()
    try:
        assert server.base_url.startswith("http://127.0.0.1:")
    finally:
        server.stop()
    server.stop()  # stopping twice is harmless


async def test_async_context_manager_and_streamed_chat_chunks_without_usage() -> None:
    async with ScriptedServer() as server:
        server.add(reply("one two three"))
        async with AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            chunks = [chunk async for chunk in stream]

    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["one", " two", " three"]
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@given(st.text(alphabet=st.sampled_from(" \nab\tc"), max_size=30), st.integers(0, 5))
def test_split_text_pieces_join_back(text: str, size: int) -> None:
    pieces = split_text(text, size)

    assert "".join(pieces) == text
    assert all(pieces)


def post_raw(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """POST with http.client and read the body up to the close, even if it is cut short."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request(
            "POST", parts.path, json.dumps(body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        try:
            data = response.read()
        except http.client.IncompleteRead as exc:
            data = b"INCOMPLETE:" + exc.partial
        return response.status, dict(response.headers), data
    finally:
        connection.close()


STREAM_REQUEST = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}


def test_cut_off_stream_sends_the_first_events_and_closes() -> None:
    with ScriptedServer() as server:
        server.add(reply("a b c"), cut_off(reply("a b c"), after=3))
        url = f"{server.base_url}/chat/completions"
        _, _, whole = post_raw(url, STREAM_REQUEST)
        status, headers, cut = post_raw(url, STREAM_REQUEST)

    events = whole.split(b"\n\n")[:-1]
    assert len(events) == 7  # role, three words, finish_reason, usage, [DONE]
    assert events[-1] == b"data: [DONE]"
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream"
    assert cut.split(b"\n\n")[:-1] == [e.replace(b"chatcmpl-1", b"chatcmpl-2") for e in events[:3]]
    assert b'finish_reason": "stop' not in cut


def test_cut_off_counts_from_the_end_like_a_slice() -> None:
    with ScriptedServer() as server:
        server.add(cut_off(tool_calls(("f", {"x": 1})), after=-1))
        _, _, body = post_raw(f"{server.base_url}/responses", {"model": "m", "stream": True})

    events = body.split(b"\n\n")[:-1]
    assert events[-1].startswith(b"event: response.output_item.done")
    assert b"response.completed" not in body


def test_chunked_cut_off_is_a_broken_transfer() -> None:
    with ScriptedServer() as server:
        server.add(
            reply("a b c"),
            cut_off(reply("a b c"), after=2, chunked=True),
            cut_off(reply("a b c"), after=99, chunked=True),
        )
        url = f"{server.base_url}/chat/completions"
        bodies = [post_raw(url, STREAM_REQUEST)[2] for _ in range(3)]

    assert bodies[1].startswith(b"INCOMPLETE:")
    assert bodies[1].count(b"data: ") == 2
    # even a cut after every event leaves the transfer unfinished (no closing chunk)
    assert bodies[2] == b"INCOMPLETE:" + bodies[0].replace(b"chatcmpl-1", b"chatcmpl-3")


def test_cut_off_non_streamed_answer_sends_a_prefix_of_the_json() -> None:
    with ScriptedServer() as server:
        server.add(
            reply("hello"),
            cut_off(reply("hello"), after=25),
            cut_off(reply("hello"), after=25, chunked=True),
        )
        url = f"{server.base_url}/chat/completions"
        _, _, whole = post_raw(url, {"model": "m"})
        status, headers, cut = post_raw(url, {"model": "m"})
        _, _, broken = post_raw(url, {"model": "m"})

    assert status == 200
    assert "Content-Length" not in headers
    assert cut == whole.replace(b"chatcmpl-1", b"chatcmpl-2")[:25]
    assert broken == b"INCOMPLETE:" + whole.replace(b"chatcmpl-1", b"chatcmpl-3")[:25]


def test_raw_step_sends_exactly_its_body() -> None:
    with ScriptedServer() as server:
        server.add(raw("not json"), raw(b"\xff<html>", status=502, content_type="text/html"))
        url = f"{server.base_url}/chat/completions"
        first = post_raw(url, STREAM_REQUEST)
        second = post_raw(url, {"model": "m"})

    assert (first[0], first[1]["Content-Type"], first[2]) == (200, "application/json", b"not json")
    assert (second[0], second[1]["Content-Type"], second[2]) == (502, "text/html", b"\xff<html>")
    assert second[1]["x-should-retry"] == "false"


def test_misbehaving_step_helpers_reject_bad_input() -> None:
    with pytest.raises(UserError, match=r"cut_off\(\) needs a step made by reply"):
        cut_off(error(500), after=1)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="after must be an int"):
        cut_off(reply("x"), after="1")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="HTTP status code"):
        raw("x", status=42)
