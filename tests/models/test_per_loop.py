"""PerLoop: one object per running event loop, closed before that loop closes."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from threadline.sessions._per_loop import PerLoop


class Thing:
    """A stand-in for a client: records whether, and on which loop, it was closed."""

    def __init__(self) -> None:
        self.closed_on: asyncio.AbstractEventLoop | None = None


async def close(thing: Thing) -> None:
    await asyncio.sleep(0)  # closing may await, as a client's does
    thing.closed_on = asyncio.get_running_loop()


def things() -> PerLoop[Thing]:
    return PerLoop(Thing, close)


def test_one_object_per_loop_closed_when_asyncio_run_ends() -> None:
    per_loop = things()

    async def use() -> tuple[Thing, asyncio.AbstractEventLoop]:
        thing = per_loop.get()
        assert per_loop.get() is thing and per_loop.current() is thing
        return thing, asyncio.get_running_loop()

    first, first_loop = asyncio.run(use())
    second, second_loop = asyncio.run(use())
    assert second is not first
    assert first.closed_on is first_loop  # closed on its own loop, while it still ran
    assert second.closed_on is second_loop


def test_outside_a_loop_there_is_no_object() -> None:
    per_loop = things()
    assert per_loop.current() is None
    with pytest.raises(RuntimeError):
        per_loop.get()


async def test_aclose_closes_the_running_loops_object_now() -> None:
    per_loop = things()
    first = per_loop.get()
    await per_loop.aclose()
    assert first.closed_on is asyncio.get_running_loop()
    assert per_loop.current() is None
    assert per_loop.get() is not first
    await per_loop.aclose()
    await per_loop.aclose()  # nothing left to close


async def test_a_failing_make_keeps_nothing() -> None:
    def broken() -> Thing:
        raise ValueError("no key")

    per_loop: PerLoop[Thing] = PerLoop(broken, close)
    with pytest.raises(ValueError, match="no key"):
        per_loop.get()
    assert per_loop.current() is None


async def test_a_dropped_per_loop_closes_its_object_on_the_running_loop() -> None:
    per_loop = things()
    thing = per_loop.get()
    del per_loop
    gc.collect()
    for _ in range(5):  # the loop runs the close it was handed
        await asyncio.sleep(0)
    assert thing.closed_on is asyncio.get_running_loop()


def test_each_thread_gets_its_own() -> None:
    per_loop = things()
    seen: list[Thing] = []

    async def use() -> None:
        seen.append(per_loop.get())

    threads = [threading.Thread(target=asyncio.run, args=(use(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(thing) for thing in seen}) == 2
    assert all(thing.closed_on is not None for thing in seen)


def test_a_loop_closed_without_finalizing_is_forgotten() -> None:
    per_loop = things()
    loop = asyncio.new_event_loop()

    async def use() -> Thing:
        return per_loop.get()

    lost = loop.run_until_complete(use())
    loop.close()  # no shutdown_asyncgens(): nothing can run the close any more
    asyncio.run(use())
    assert lost.closed_on is None
    assert loop not in per_loop._entries  # dropped at the next lookup


def test_aclose_all_leaves_other_loops_objects_to_their_shutdown() -> None:
    """A store closed on one loop while its client on an idle loop (a ``run_sync`` loop between
    calls) is still open: that client is closed by its own loop's shutdown, not dropped."""
    per_loop = things()
    idle = asyncio.new_event_loop()
    other: Thing = idle.run_until_complete(_get(per_loop))
    mine: list[Thing] = []

    async def close_all(owner: PerLoop[Thing]) -> None:
        mine.append(owner.get())
        await owner.aclose_all()

    asyncio.run(close_all(per_loop))
    assert mine[0].closed_on is not None and other.closed_on is None
    del per_loop
    gc.collect()  # the owner is gone; the idle loop's object is still waiting for its loop
    assert other.closed_on is None
    idle.run_until_complete(idle.shutdown_asyncgens())
    assert other.closed_on is idle
    idle.close()


async def _get(per_loop: PerLoop[Thing]) -> Thing:
    return per_loop.get()
