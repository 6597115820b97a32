"""Runner.run_sync's loop: one per thread, kept between calls, shut down when its thread ends."""

from __future__ import annotations

import asyncio
import threading
import time

from threadline import Agent, Runner
from threadline.run import _sync_loop
from threadline.sessions._per_loop import PerLoop
from threadline.testing import ScriptedModel


def loop_of_run_sync() -> asyncio.AbstractEventLoop:
    """The loop a run_sync call in this thread runs on (seen from inside the run)."""
    seen: list[asyncio.AbstractEventLoop] = []

    def instructions(context: object, agent: object) -> str:
        seen.append(asyncio.get_running_loop())
        return "Reply."

    Runner.run_sync(Agent(name="A", instructions=instructions, model=ScriptedModel(["ok"])), "x")
    return seen[0]


def wait_until_shut_down(loop: asyncio.AbstractEventLoop) -> None:
    """Call ``shutdown_ended`` until ``loop`` is closed (its thread's storage is freed late)."""
    deadline = time.monotonic() + 5
    while not loop.is_closed() and time.monotonic() < deadline:
        _sync_loop.shutdown_ended()
        time.sleep(0.01)


def test_one_loop_per_thread_kept_between_calls() -> None:
    here = loop_of_run_sync()
    assert loop_of_run_sync() is here
    assert asyncio.run(asyncio.sleep(0, "between")) == "between"  # another loop came and went
    assert loop_of_run_sync() is here
    elsewhere: list[asyncio.AbstractEventLoop] = []
    thread = threading.Thread(target=lambda: elsewhere.extend([loop_of_run_sync()] * 2))
    thread.start()
    thread.join()
    assert elsewhere[0] is not here
    assert not here.is_closed()


def test_an_ended_threads_loop_is_shut_down_like_asyncio_runs() -> None:
    closed: list[str] = []
    cancelled: list[str] = []

    async def close(value: str) -> None:
        await asyncio.sleep(0)
        closed.append(value)

    per_loop: PerLoop[str] = PerLoop(lambda: "client", close)
    loops: list[asyncio.AbstractEventLoop] = []

    async def leave_things_behind() -> None:
        per_loop.get()

        async def background() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                cancelled.append("background")

        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)

    def in_thread() -> None:
        loop = _sync_loop.thread_loop()
        loops.append(loop)
        loop.run_until_complete(leave_things_behind())

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert not loops[0].is_closed()
    wait_until_shut_down(loops[0])
    assert loops[0].is_closed()
    assert cancelled == ["background"]  # pending tasks cancelled first
    assert closed == ["client"]  # then the loop's clients closed, while it could still run
