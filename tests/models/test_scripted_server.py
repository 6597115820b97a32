"""ScriptedServer itself: queueing, recording, loud failures, and the wire formats it speaks."""

from __future__ import annotations

import json
import urllib.error
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
    error,
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
