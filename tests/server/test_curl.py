"""The seed's chatbot through ``curl`` alone: two turns that need memory, no client library."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from threadline.testing.server import ScriptedServer, reply

from .conftest import Served

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args: str) -> Any:
    assert CURL is not None
    done = subprocess.run(
        [CURL, "--silent", "--show-error", "--fail-with-body", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def post(url: str, body: dict[str, Any], *headers: str) -> Any:
    extra = [part for header in headers for part in ("-H", header)]
    return curl(
        "-X", "POST", url, "-H", "Content-Type: application/json", *extra, "-d", json.dumps(body)
    )


def test_the_chatbot_through_curl(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    url = serve().base_url
    upstream.add(reply("It is in San Francisco."), reply("California."))
    conv = post(f"{url}/conversations", {"metadata": {"user": "u1"}})
    first = post(
        f"{url}/responses",
        {
            "model": "assistant",
            "input": "What city is the Golden Gate Bridge in?",
            "conversation": conv["id"],
        },
    )
    assert first["output"][0]["content"][0]["text"] == "It is in San Francisco."
    second = post(
        f"{url}/responses",
        {"model": "assistant", "input": "What state is it in?", "conversation": conv["id"]},
    )
    assert second["output"][0]["content"][0]["text"] == "California."
    # the second turn was answered with the first in its history
    assert [m["content"] for m in upstream.requests[-1].body["messages"]][1:] == [
        "What city is the Golden Gate Bridge in?",
        "It is in San Francisco.",
        "What state is it in?",
    ]
    items = curl(f"{url}/conversations/{conv['id']}/items?order=asc&limit=20")
    assert [item["role"] for item in items["data"]] == ["user", "assistant", "user", "assistant"]


def test_chat_completions_with_the_conversation_header(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    url = serve().base_url
    upstream.add(reply("Hello, Ada."), reply("Your name is Ada."))
    conv = post(f"{url}/conversations", {})
    header = f"X-Threadline-Conversation-Id: {conv['id']}"
    post(
        f"{url}/chat/completions",
        {"model": "assistant", "messages": [{"role": "user", "content": "I am Ada."}]},
        header,
    )
    # a client that sends only the new message on a conversation with history diverges: the
    # full transcript is what chat clients send, and only its tail is stored
    answer = post(
        f"{url}/chat/completions",
        {
            "model": "assistant",
            "messages": [
                {"role": "user", "content": "I am Ada."},
                {"role": "assistant", "content": "Hello, Ada."},
                {"role": "user", "content": "What is my name?"},
            ],
        },
        header,
    )
    assert answer["choices"][0]["message"]["content"] == "Your name is Ada."
    assert len(curl(f"{url}/conversations/{conv['id']}/items")["data"]) == 4
