"""writer_lease and the in-process lock behind it."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from typing import Any

import pytest

from threadline.errors import SessionBusyError, UserError
from threadline.items import Item
from threadline.sessions import InMemorySession, SessionSettings, writer_lease
from threadline.sessions import lease as lease_module
from threadline.sessions.lease import local_lock


class PlainSession:
    """A third-party session: the four methods and nothing else."""

    def __init__(self, session_id: str, settings: Any = None) -> None:
        self.session_id = session_id
        self.items: list[Item] = []
        if settings is not None:
            self.session_settings = settings

    async def get_items(self, limit: int | None = None) -> list[Item]:
        return self.items[-limit:] if limit else list(self.items)

    async def add_items(self, items: list[Item]) -> None:
        self.items.extend(items)

    async def pop_item(self) -> Item | None:
        return self.items.pop() if self.items else None

    async def clear_session(self) -> None:
        self.items.clear()


async def test_plain_sessions_with_one_id_exclude_each_other() -> None:
    first, second, other = PlainSession("s"), PlainSession("s"), PlainSession("t")
    async with writer_lease(first):
        with pytest.raises(SessionBusyError, match="'s' is busy"):
            async with writer_lease(second, wait=False):
                pass
        with pytest.raises(SessionBusyError):
            async with writer_lease(second, timeout=0.05):
                pass
        async with writer_lease(other, wait=False):
            pass
    async with writer_lease(second, wait=False):
        pass


async def test_waiters_are_served_in_order() -> None:
    session = PlainSession("fifo")
    order: list[int] = []

    async def run(number: int) -> None:
        async with writer_lease(session):
            order.append(number)
            await asyncio.sleep(0.001)

    async with writer_lease(session):
        tasks = []
        for number in range(5):
            tasks.append(asyncio.ensure_future(run(number)))
            await asyncio.sleep(0.005)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_settings_choose_not_to_wait() -> None:
    holder = PlainSession("cfg")
    impatient = PlainSession("cfg", SessionSettings(wait_for_lease=False))
    patient_briefly = PlainSession("cfg", SessionSettings(lease_timeout=0.05))
    async with writer_lease(holder):
        with pytest.raises(SessionBusyError):
            async with writer_lease(impatient):
                pass
        with pytest.raises(SessionBusyError):
            async with writer_lease(patient_briefly):
                pass


async def test_session_with_its_own_lease_uses_it() -> None:
    session = InMemorySession("own", session_settings=SessionSettings(wait_for_lease=False))
    async with session.lease():
        with pytest.raises(SessionBusyError):
            async with writer_lease(session):
                pass
    async with writer_lease(session):
        pass


async def test_timed_out_and_cancelled_waiters_do_not_leak() -> None:
    session = PlainSession("leak")

    async def wait_forever() -> None:
        async with writer_lease(session):
            pass

    async with writer_lease(session):
        with pytest.raises(SessionBusyError):
            async with writer_lease(session, timeout=0.02):
                pass
        cancelled = asyncio.ensure_future(wait_forever())
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
    async with writer_lease(session, wait=False):
        pass


async def test_waiter_cancelled_during_hand_over_passes_it_on() -> None:
    key = object()
    release = asyncio.Event()
    got: list[str] = []

    async def holder() -> None:
        async with local_lock(key, "k"):
            await release.wait()

    async def waiter(name: str) -> None:
        async with local_lock(key, "k"):
            got.append(name)

    hold = asyncio.ensure_future(holder())
    await asyncio.sleep(0)
    first = asyncio.ensure_future(waiter("first"))
    second = asyncio.ensure_future(waiter("second"))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.sleep(0)  # the holder releases: the hand-over to `first` is now in flight
    await hold
    first.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert got in (["second"], ["first", "second"])
    async with local_lock(key, "k", wait=False):
        pass


async def test_lock_works_across_threads_and_event_loops() -> None:
    session = PlainSession("threads")
    held, finish = threading.Event(), threading.Event()

    async def hold() -> None:
        async with writer_lease(session):
            held.set()
            await asyncio.to_thread(finish.wait)

    thread = threading.Thread(target=lambda: asyncio.run(hold()))
    thread.start()
    await asyncio.to_thread(held.wait, 10)
    waiting = asyncio.ensure_future(_enter(session))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    finish.set()
    await asyncio.wait_for(waiting, 10)
    await asyncio.to_thread(thread.join)


async def _enter(session: Any) -> None:
    async with writer_lease(session):
        pass


async def test_hand_over_skips_a_waiter_whose_loop_is_closed() -> None:
    key = object()
    async with local_lock(key, "k"):
        doomed = asyncio.new_event_loop()
        orphan = doomed.create_future()
        doomed.close()
        with lease_module._mutex:  # as if that loop had been closed while its task waited
            lease_module._waiters.setdefault(key, deque()).append(
                lease_module._Waiter(doomed, orphan)
            )
    async with local_lock(key, "k", wait=False):
        pass


@pytest.mark.parametrize("timeout", [-1, "soon", True])
async def test_bad_timeout_is_a_user_error(timeout: Any) -> None:
    with pytest.raises(UserError, match="timeout"):
        async with writer_lease(PlainSession("t"), timeout=timeout):
            pass


@pytest.mark.parametrize("session_id", ["", None, 3])
async def test_session_without_a_usable_id_is_a_user_error(session_id: Any) -> None:
    session = PlainSession("x")
    session.session_id = session_id
    with pytest.raises(UserError, match="session_id"):
        async with writer_lease(session):
            pass


class _Renewals:
    """A backend's lease renewal for the default keepalive: records when each attempt began,
    fails the ones listed in ``failing`` and takes ``delay`` seconds."""

    where = "a test backend"

    def __init__(self, failing: frozenset[int] = frozenset(), delay: float = 0.0) -> None:
        self.failing = failing
        self.delay = delay
        self.began: list[float] = []

    async def lease_renew(self, session_id: str, fence: Any, ttl: float) -> bool:
        self.began.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.delay)
        if len(self.began) - 1 in self.failing:
            raise ConnectionError("server gone for a moment")
        return True


async def _beats(renewals: _Renewals, ttl: float, count: int) -> list[float]:
    from threadline.sessions.backend import _keepalive_task

    start = asyncio.get_running_loop().time()
    stop = _keepalive_task(renewals, "s", Any, ttl, lambda: True, lambda: None)  # type: ignore[arg-type]
    try:
        for _ in range(400):
            if len(renewals.began) >= count:
                break
            await asyncio.sleep(0.01)
    finally:
        stop()
    return [at - start for at in renewals.began]


async def test_a_failed_renewal_is_retried_soon_not_a_third_of_the_ttl_later() -> None:
    """Two failed renewals in a row used to leave the lease two thirds of its ttl unrenewed
    (the next try came ttl / 3 after each failure); now a failure is retried after
    min(ttl / 12, 1) s, so the lease is renewed well before it runs out."""
    began = await _beats(_Renewals(failing=frozenset({0, 1})), ttl=2.4, count=3)
    assert began[0] == pytest.approx(0.8, abs=0.4)
    assert began[1] - began[0] < 0.5 and began[2] - began[1] < 0.5  # retries: 0.2 s each
    assert began[2] < 2.4 * 0.75


async def test_a_slow_renewal_does_not_push_the_next_one_later() -> None:
    """A renewal is due a third of the ttl after the previous one began, however long that
    one took (a renewal queued behind a busy pool once delayed the next by its own wait)."""
    began = await _beats(_Renewals(delay=0.5), ttl=1.5, count=3)
    gaps = [later - earlier for earlier, later in itertools.pairwise(began)]
    assert all(gap < 0.5 + 0.35 for gap in gaps), gaps  # 0.5 s apart, not 1.0 s


async def test_a_lease_ended_by_its_last_write_is_not_renewed_nor_reported_lost(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """After the write that ended it, the heartbeat would find the lease released; it must
    not renew it (which fails) nor warn that another run took the session over."""
    from threadline.items import user_message
    from threadline.sessions import SQLiteStore

    store = SQLiteStore(str(tmp_path / "ended.db"))
    try:
        session = store.session("s", session_settings=SessionSettings(lease_ttl=0.3))
        session._last_write_ends_lease = True
        async with session.lease() as held:
            await session._add_run_items([user_message("last")], records=None, last=True)
            await asyncio.sleep(0.5)  # past the ttl: the heartbeat ran at least once
            assert not held.lost
            assert await store.lease_holders(["s"]) == {}
        assert "taken over" not in caplog.text
        assert [item["content"] for item in await session.get_items()] == ["last"]
    finally:
        store.close()
