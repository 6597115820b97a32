"""The writer lease: one run at a time writes to a session.

:func:`writer_lease` is what the runner holds around a whole run. A session that has its own
``lease()`` (every threadline backend) supplies it; for any other session an in-process lock
keyed by the session's type and id keeps two runs in this process apart.

The in-process lock (:func:`local_lock`) is shared by every thread and event loop of the
process: ``Runner.run_sync`` starts a fresh loop per call, so a loop-bound ``asyncio.Lock``
would not do. Its bookkeeping sits behind a ``threading.Lock`` that is only held for a few
dictionary operations, so the event loop never blocks on it; a waiter parks on a future of its
own loop and is handed the lock, first come first served. Cancelling or timing out a waiter
never leaks the lock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Any

from ..errors import SessionBusyError, UserError

__all__ = ["check_timeout", "local_lock", "remaining", "writer_lease"]


class _Waiter:
    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        self.loop = loop
        self.future = future


_mutex = threading.Lock()
_held: set[Hashable] = set()
_waiters: dict[Hashable, deque[_Waiter]] = {}


def _release(key: Hashable) -> None:
    """Give the lock for ``key`` to the next live waiter, or free it."""
    while True:
        with _mutex:
            queue = _waiters.get(key)
            if not queue:
                _waiters.pop(key, None)
                _held.discard(key)
                return
            waiter = queue.popleft()
            if not queue:
                del _waiters[key]
        # Ownership passes to ``waiter``; its loop confirms (or passes it on) in _deliver.
        try:
            waiter.loop.call_soon_threadsafe(_deliver, key, waiter.future)
        except RuntimeError:  # the waiter's loop is closed: try the next one
            continue
        return


def _deliver(key: Hashable, future: asyncio.Future[None]) -> None:
    if future.done():  # the waiter gave up (cancelled or timed out) before the hand-over
        _release(key)
    else:
        future.set_result(None)


def _abandon(key: Hashable, waiter: _Waiter) -> None:
    """A waiter stops waiting: leave the queue, or pass on a lock already handed to it."""
    with _mutex:
        queue = _waiters.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del _waiters[key]
            return
    future = waiter.future
    if future.done() and not future.cancelled():
        _release(key)  # it was ours already
    else:
        future.cancel()  # the hand-over is in flight; _deliver will pass it on


async def _acquire(key: Hashable, session_id: str, wait: bool, timeout: float | None) -> None:
    loop = asyncio.get_running_loop()
    with _mutex:
        if key not in _held:
            _held.add(key)
            return
        if not wait or (timeout is not None and timeout <= 0):
            raise SessionBusyError(session_id, waited=timeout if wait else None)
        waiter = _Waiter(loop, loop.create_future())
        _waiters.setdefault(key, deque()).append(waiter)
    try:
        if timeout is None:
            await waiter.future
        else:
            await asyncio.wait({waiter.future}, timeout=timeout)
    except BaseException:
        _abandon(key, waiter)
        raise
    if not waiter.future.done():  # timed out
        _abandon(key, waiter)
        raise SessionBusyError(session_id, waited=timeout)


@asynccontextmanager
async def local_lock(
    key: Hashable, session_id: str, *, wait: bool = True, timeout: float | None = None
) -> AsyncIterator[None]:
    """Hold the in-process lock for ``key`` (any hashable) for the duration of the block.

    Busy and ``wait=False`` (or the ``timeout`` passed) raises :class:`SessionBusyError`
    naming ``session_id``. Not re-entrant: a run must not wait for a lease it holds.
    """
    await _acquire(key, session_id, wait, timeout)
    try:
        yield
    finally:
        _release(key)


def check_timeout(timeout: object) -> float | None:
    """Return ``timeout`` if it is ``None`` or a number >= 0, else raise :class:`UserError`."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise UserError(f"lease timeout must be None or a number of seconds >= 0, got {timeout!r}")
    return float(timeout)


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value), never below zero."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


@asynccontextmanager
async def writer_lease(
    session: Any, *, wait: bool | None = None, timeout: float | None = None
) -> AsyncIterator[None]:
    """Hold ``session``'s writer lease around a block (the runner holds it for a whole run).

    ``wait`` and ``timeout`` default to the session's ``session_settings``
    (``wait_for_lease``, ``lease_timeout``), then to waiting without bound. Uses
    ``session.lease(...)`` when the session has one; otherwise an in-process lock keyed by
    ``(type(session), session.session_id)``. Busy and not waiting (or the timeout passed)
    raises :class:`~threadline.errors.SessionBusyError`.
    """
    settings = getattr(session, "session_settings", None)
    if wait is None:
        configured = getattr(settings, "wait_for_lease", None)
        wait = True if configured is None else bool(configured)
    if timeout is None:
        timeout = getattr(settings, "lease_timeout", None)
    timeout = check_timeout(timeout)
    own_lease = getattr(session, "lease", None)
    if callable(own_lease):
        async with own_lease(wait=wait, timeout=timeout):
            yield
        return
    session_id = getattr(session, "session_id", None)
    if not isinstance(session_id, str) or not session_id:
        raise UserError(
            f"a session needs a non-empty string session_id, got {session_id!r} "
            f"on {type(session).__name__}"
        )
    async with local_lock((type(session), session_id), session_id, wait=wait, timeout=timeout):
        yield
