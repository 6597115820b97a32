"""One history, two doors: a session the library writes is a conversation the server
continues, and the other way round; importing threadline never imports the server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import threadline
from threadline import Agent, Runner
from threadline.sessions import open_store
from threadline.testing.server import ScriptedServer, reply

from .conftest import Served, upstream_model

SRC = str(Path(threadline.__file__).parent.parent)


async def test_library_then_server_then_library(
    serve: Callable[..., Served], upstream: ScriptedServer, store_url: str
) -> None:
    served = serve()
    store = open_store(store_url)
    agent = Agent(
        name="lib", instructions="You are a helpful assistant.", model=upstream_model(upstream)
    )
    try:
        session = store.session("support-ticket-7")
        upstream.add(reply("Your order ships Monday."))
        await Runner.run(agent, "When does my order ship?", session=session)

        async with served.async_client() as client:
            upstream.add(reply("It ships from Oslo."))
            answer = await client.responses.create(
                model="assistant", input="From where?", conversation="support-ticket-7"
            )
            assert answer.output_text == "It ships from Oslo."
        assert [m["content"] for m in upstream.requests[-1].body["messages"]][1:] == [
            "When does my order ship?",
            "Your order ships Monday.",
            "From where?",
        ]
        upstream.add(reply("Monday, from Oslo."))
        result = await Runner.run(agent, "Summarise.", session=session)
        assert result.final_output == "Monday, from Oslo."
        assert [m["content"] for m in upstream.requests[-1].body["messages"]][1:] == [
            "When does my order ship?",
            "Your order ships Monday.",
            "From where?",
            "It ships from Oslo.",
            "Summarise.",
        ]
    finally:
        await store.aclose()


def test_importing_threadline_does_not_import_the_server() -> None:
    code = "import sys, threadline; print(any(m.startswith(('starlette', 'uvicorn', 'threadline.server')) for m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=60,
    )
    assert done.stdout.strip() == "False", done.stderr


def test_a_missing_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "try:\n    import threadline.server\nexcept ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=60,
    )
    assert "[serve]" in done.stdout and "starlette" in done.stdout, done.stdout + done.stderr
