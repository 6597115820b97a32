"""A client never outlives its event loop: ``asyncio.run``, ``run_sync`` and threads, mixed.

Each program runs in a fresh interpreter (``-X dev -W error``: asyncio debug mode, every warning
an error, so a leaked socket or loop shows up on stderr) against the scripted server behind a
keep-alive front, because real endpoints keep connections open and a pooled connection is what
breaks when it is reused on another loop. The default provider is configured the README's way,
by ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``. The last tests, in process, check that a client
of another loop is reported as one clear error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import threadline
from threadline import Agent, ModelConnectionError, Runner, UserError
from threadline.models.base import ModelRequest, ModelResponse, ModelStreamEvent
from threadline.testing import RecordedRequest, ScriptedServer, ServerStep, reply

from ._keepalive import KeepAliveFront

SRC = Path(threadline.__file__).resolve().parent.parent
README = Path(__file__).resolve().parents[2] / "README.md"
QUICK_START = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
# asyncio's debug mode logs a slow step (the first run imports openai): not a problem.
SLOW_STEP = re.compile(r"Executing <.*> took \d+\.\d+ seconds")


def _user_texts(request: RecordedRequest) -> list[str]:
    body = request.body
    messages = body["messages"] if "messages" in body else body["input"]
    return [m["content"] for m in messages if m.get("role") == "user"]


def echo(request: RecordedRequest) -> ServerStep:
    """Answer ``"<question> #<n>"``, n = the user messages sent: the memory the model saw."""
    texts = _user_texts(request)
    return reply(f"{texts[-1]} #{len(texts)}")


@pytest.fixture
def front() -> Iterator[KeepAliveFront]:
    with ScriptedServer() as server, KeepAliveFront(server) as keep_alive:
        server.responder = echo
        yield keep_alive


def run_program(code: str, front: KeepAliveFront, cwd: Path, *, clean: bool = True) -> list[str]:
    """Run ``code`` in a fresh interpreter; return its stdout lines; stderr must be clean."""
    script = cwd / "program.py"
    script.write_text(textwrap.dedent(code))
    env = {
        **os.environ,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": front.base_url,
        "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p),
    }
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    noise = [line for line in done.stderr.splitlines() if not SLOW_STEP.fullmatch(line)]
    assert done.returncode == 0, done.stderr
    if clean:
        assert noise == [], done.stderr  # no ResourceWarning, "Event loop is closed", traceback
    return done.stdout.splitlines()


def test_the_readme_quick_start_runs_as_written(front: KeepAliveFront, tmp_path: Path) -> None:
    # two awaited turns under asyncio.run, then Runner.run_sync on a new loop
    assert "asyncio.run(main())" in QUICK_START and "Runner.run_sync" in QUICK_START
    lines = run_program(QUICK_START, front, tmp_path)
    assert lines == [
        "What city is the Golden Gate Bridge in? #1",
        "What state is it in? #2",
        "What's the population? #3",  # the session remembered both earlier turns
    ]
    assert front.connections_opened == 2  # one client per loop, its connection kept alive
    assert front.served == 3


PROGRAM_HEAD = """
    import asyncio
    import sys
    import threading

    from threadline import Agent, Runner, SQLiteSession, set_default_openai_api

    agent = Agent(name="Assistant", instructions="Reply very concisely.")


    def say(text):
        sys.stdout.write(f"{text}\\n")  # one write: threads' lines do not interleave


    def session(name="s"):
        return SQLiteSession(name, "conversations.db")


    async def turn(text, name="s"):
        say((await Runner.run(agent, text, session=session(name))).final_output)


    async def streamed_turn(text):
        result = Runner.run_streamed(agent, text, session=session())
        deltas = [e async for e in result.stream_events() if e.type == "raw_response_event"]
        assert deltas
        say(result.final_output)


    def sync_turn(text, name="s"):
        say(Runner.run_sync(agent, text, session=session(name)).final_output)
"""


def test_several_asyncio_runs_in_sequence(front: KeepAliveFront, tmp_path: Path) -> None:
    lines = run_program(
        PROGRAM_HEAD
        + """
    for text in ("a", "b", "c", "d"):
        asyncio.run(turn(text))
    """,
        front,
        tmp_path,
    )
    assert lines == ["a #1", "b #2", "c #3", "d #4"]
    assert front.connections_opened == 4


def test_run_sync_then_asyncio_run_then_run_sync(front: KeepAliveFront, tmp_path: Path) -> None:
    lines = run_program(
        PROGRAM_HEAD
        + """
    sync_turn("a")
    sync_turn("b")  # the same loop: its client and connection are reused
    asyncio.run(turn("c"))
    sync_turn("d")  # the run_sync loop again, after another loop came and went
    asyncio.run(turn("e"))
    """,
        front,
        tmp_path,
    )
    assert lines == ["a #1", "b #2", "c #3", "d #4", "e #5"]
    assert front.connections_opened == 3  # the run_sync loop's, and one per asyncio.run


def test_two_threads_each_using_run_sync(front: KeepAliveFront, tmp_path: Path) -> None:
    lines = run_program(
        PROGRAM_HEAD
        + """
    def chat(name):
        sync_turn(f"{name}-1", name)
        sync_turn(f"{name}-2", name)

    threads = [threading.Thread(target=chat, args=(name,)) for name in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sync_turn("main")  # shuts down the ended threads' loops, then runs on the main one
    """,
        front,
        tmp_path,
    )
    assert sorted(lines) == ["main #1", "x-1 #1", "x-2 #2", "y-1 #1", "y-2 #2"]
    assert lines[-1] == "main #1"
    assert front.connections_opened == 3  # one client (and connection) per thread's loop


def test_a_thread_that_ends_last_is_shut_down_at_exit(
    front: KeepAliveFront, tmp_path: Path
) -> None:
    lines = run_program(
        PROGRAM_HEAD
        + """
    thread = threading.Thread(target=sync_turn, args=("in a thread",))
    thread.start()
    thread.join()
    """,
        front,
        tmp_path,
    )
    assert lines == ["in a thread #1"]


def test_streamed_runs_across_loops(front: KeepAliveFront, tmp_path: Path) -> None:
    lines = run_program(
        PROGRAM_HEAD
        + """
    asyncio.run(streamed_turn("a"))
    asyncio.run(streamed_turn("b"))
    sync_turn("c")
    asyncio.run(streamed_turn("d"))
    """,
        front,
        tmp_path,
    )
    assert lines == ["a #1", "b #2", "c #3", "d #4"]


def test_responses_api_across_loops(front: KeepAliveFront, tmp_path: Path) -> None:
    lines = run_program(
        PROGRAM_HEAD
        + """
    set_default_openai_api("responses")
    asyncio.run(turn("a"))
    sync_turn("b")
    asyncio.run(streamed_turn("c"))
    """,
        front,
        tmp_path,
    )
    assert lines == ["a #1", "b #2", "c #3"]


def test_your_own_client_is_kept_and_reusing_it_on_a_new_loop_is_one_clear_error(
    front: KeepAliveFront, tmp_path: Path
) -> None:
    lines = run_program(
        """
    import asyncio, os

    from threadline import Agent, AsyncOpenAI, OpenAIChatCompletionsModel, Runner, UserError

    client = AsyncOpenAI(api_key="k", base_url=os.environ["OPENAI_BASE_URL"])
    agent = Agent(name="A", model=OpenAIChatCompletionsModel(model="m", openai_client=client))
    print(asyncio.run(Runner.run(agent, "a")).final_output)
    try:
        asyncio.run(Runner.run(agent, "b"))
    except UserError as exc:
        print(type(exc).__name__, exc)
    assert agent.model.openai_client is client  # never replaced
    """,
        front,
        tmp_path,
        clean=False,  # the connection left on the first loop is the caller's to have closed
    )
    assert lines[0] == "a #1"
    assert lines[1].startswith("UserError the client of model OpenAIChatCompletionsModel")
    assert "Event loop is closed" in lines[1] and "async with AsyncOpenAI" in lines[1]


class FailingModel:
    """A model whose client fails the way a pooled connection of a closed loop does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __repr__(self) -> str:
        return "FailingModel()"

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        raise self.error

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        raise self.error
        yield  # pragma: no cover - makes this an async generator


def wrapped(cause: Exception) -> ModelConnectionError:
    """``cause`` as the openai client may report it: a connection error raised from it."""
    try:
        raise cause
    except Exception as exc:
        try:
            raise ModelConnectionError("could not connect to the model endpoint") from exc
        except ModelConnectionError as outer:
            return outer


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("Event loop is closed"),
        wrapped(RuntimeError("Event loop is closed")),
        RuntimeError("<asyncio.locks.Event object at 0x1> is bound to a different event loop"),
    ],
    ids=["raw", "wrapped", "bound-elsewhere"],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
async def test_another_loops_client_is_one_user_error(error: Exception, streamed: bool) -> None:
    agent = Agent(name="A", model=FailingModel(error))
    with pytest.raises(UserError, match=r"FailingModel\(\) belongs to another event loop") as info:
        if streamed:
            async for _ in Runner.run_streamed(agent, "hi").stream_events():
                pass
        else:
            await Runner.run(agent, "hi")
    assert info.value.__cause__ is error


async def test_other_runtime_errors_are_not_rewritten() -> None:
    error = RuntimeError("something else")
    with pytest.raises(RuntimeError, match="something else") as info:
        await Runner.run(Agent(name="A", model=FailingModel(error)), "hi")
    assert info.value is error
