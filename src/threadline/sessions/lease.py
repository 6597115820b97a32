"""The writer lease: one run at a time writes to a session.

:func:`writer_lease` is what the runner holds around a whole run. A session that has its own
``lease()`` (every threadline backend) supplies it; for any other session an in-process lock
keyed by the session's type and id keeps two runs in this process apart.

:func:`fenced_lease` is the one lease driver every threadline store uses, written over the
backend's try/renew/release primitives (:class:`~threadline.sessions.backend.StoreBackend`):
an in-process lock first (waiters in this process queue instead of polling the store), then
the store's lease with a unique owner token, back-off while another holder has it, a shielded
attempt whose success is undone if the caller is cancelled meanwhile, a heartbeat, and a
shielded release. The lease is *fenced*: each acquisition gets a higher epoch, and while the
lease is held every write the caller makes through a session handle of that store carries
``Fence(owner, epoch)``, which the store checks inside the write transaction. A holder that
stalled past its ttl (a paused process, a long blocking call) and was taken over therefore
gets :class:`~threadline.errors.LeaseLostError` instead of writing into another run's turn.

The in-process lock (:func:`local_lock`) is shared by every thread and event loop of the
process: ``Runner.run_sync`` runs on a loop of its own thread and ``asyncio.run`` on another,
so a loop-bound ``asyncio.Lock`` would not do. Its bookkeeping sits behind a ``threading.Lock`` that is only held for a few
dictionary operations, so the event loop never blocks on it; a waiter parks on a future of its
own loop and is handed the lock, first come first served. Cancelling or timing out a waiter
never leaks the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Any

from ..errors import LeaseLostError, SessionBusyError, SessionError, UserError
from .backend import Fence, LeaseGrant, ReadPlan, StartRead, StoreBackend
from .base import SessionInfo

__all__ = [
    "Lease",
    "NoSuchSession",
    "check_fence",
    "check_timeout",
    "check_ttl",
    "declared_parameters",
    "fenced_lease",
    "held_lease",
    "local_lock",
    "remaining",
    "writer_lease",
]

logger = logging.getLogger("threadline.sessions")


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
    """``None`` for no bound (``None`` or ``math.inf``), else ``timeout`` as seconds >= 0.

    Anything else (a negative number, NaN, a string) raises :class:`UserError`.
    """
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or math.isnan(timeout)
        or timeout < 0
    ):
        raise UserError(
            f"lease timeout must be None, math.inf or a number of seconds >= 0, got {timeout!r}"
        )
    return None if math.isinf(timeout) else float(timeout)


def check_ttl(ttl: object) -> float:
    """Return ``ttl`` as a finite number of seconds > 0, else raise :class:`UserError`."""
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, (int, float))
        or not math.isfinite(ttl)
        or ttl <= 0
    ):
        raise UserError(f"lease ttl must be a finite number of seconds > 0, got {ttl!r}")
    return float(ttl)


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value), never below zero."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


@functools.lru_cache(maxsize=512)
def _parameters_of(function: Any) -> tuple[frozenset[str], bool]:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return frozenset(), False
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return frozenset(parameters), takes_any


def declared_parameters(method: Any) -> tuple[frozenset[str], bool]:
    """The parameter names of a callable and whether it takes ``**kwargs``, asked once per
    function (not per run): runs check a session's methods with it on every call."""
    if method is None:
        return frozenset(), False
    function = getattr(method, "__func__", method)
    try:
        return _parameters_of(function)
    except TypeError:  # unhashable callable: ask directly
        return _parameters_of.__wrapped__(function)


def _accepts_ttl(lease_method: Any) -> bool:
    names, takes_any = declared_parameters(lease_method)
    return "ttl" in names or takes_any


@asynccontextmanager
async def writer_lease(
    session: Any,
    *,
    wait: bool | None = None,
    timeout: float | None = None,
    ttl: float | None = None,
) -> AsyncIterator[None]:
    """Hold ``session``'s writer lease around a block (the runner holds it for a whole run).

    ``wait``, ``timeout`` and ``ttl`` default to the session's ``session_settings``
    (``wait_for_lease``, ``lease_timeout``, ``lease_ttl``), then to waiting without bound
    with a 30 s ttl; ``math.inf`` as ``timeout`` waits without bound whatever the settings
    say. Uses ``session.lease(...)`` when the session has one; otherwise an in-process lock
    keyed by ``(type(session), session.session_id)``. Busy and not waiting (or the timeout
    passed) raises :class:`~threadline.errors.SessionBusyError`.
    """
    settings = getattr(session, "session_settings", None)
    if wait is None:
        configured = getattr(settings, "wait_for_lease", None)
        wait = True if configured is None else bool(configured)
    if timeout is None:
        timeout = getattr(settings, "lease_timeout", None)
    timeout = check_timeout(timeout)
    if ttl is not None:
        ttl = check_ttl(ttl)
    own_lease = getattr(session, "lease", None)
    if callable(own_lease):
        if ttl is not None and _accepts_ttl(own_lease):
            manager = own_lease(wait=wait, timeout=timeout, ttl=ttl)
        else:
            manager = own_lease(wait=wait, timeout=timeout)
        async with manager:
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


# ---------------------------------------------------------------------- the fenced lease


class Lease:
    """A writer lease held through :func:`fenced_lease` (what ``session.lease()`` yields).

    ``fence`` is its token; ``lost`` turns true once a heartbeat found the lease taken over,
    after which every write through the store's sessions raises
    :class:`~threadline.errors.LeaseLostError` at once (the store would refuse it anyway).
    """

    __slots__ = (
        "_ended",
        "_local",
        "_renewing",
        "fence",
        "info",
        "lost",
        "released",
        "session_id",
        "start",
        "ttl",
    )

    def __init__(
        self, session_id: str, fence: Fence, ttl: float, info: SessionInfo | None = None
    ) -> None:
        self.session_id = session_id
        self.fence = fence
        self.ttl = ttl
        self.info = info
        """The session as it was when the lease was granted (leases taken with
        ``existing=True`` only; ``None`` otherwise)."""
        self.lost = False
        self.released = False
        self._renewing = True
        self._ended = False  # released by the holder's last write (_end_by_write)
        self._local: _LocalHold | None = None  # the in-process lock, set by fenced_lease
        self.start: StartRead | None = None
        """The read made as the lease was granted (``fenced_lease(read=…)``), else ``None``."""

    def __repr__(self) -> str:
        state = "lost" if self.lost else "held"
        return f"<Lease {self.session_id!r} epoch={self.fence.epoch} ttl={self.ttl:g}s {state}>"

    @property
    def epoch(self) -> int:
        """The lease's epoch: higher than that of every earlier holder of the session."""
        return self.fence.epoch

    def suspend_renewal(self) -> None:
        """Stop renewing the lease, as a paused or stalled holder would (a testing aid).

        Once ``ttl`` passes without a renewal another store may take the session over;
        every write this holder makes afterwards is refused.
        """
        self._renewing = False

    def resume_renewal(self) -> None:
        """Renew the lease again (it may already be lost)."""
        self._renewing = True

    def _should_renew(self) -> bool:
        return self._renewing and not self._ended

    def _end_by_write(self) -> None:
        """Record that the holder's last write released the lease in its own transaction
        (:meth:`~threadline.sessions.backend.StoreBackend.append_and_release`): it is no
        longer renewed nor seen as held (later writes of the block go unfenced, as after
        it), the in-process lock is free for the next holder at once, and the end of the
        block releases nothing more."""
        self._ended = True
        self.released = True
        if self._local is not None:
            self._local.free()

    def _mark_lost(self) -> None:
        if not self.lost:
            self.lost = True
            logger.warning(
                "threadline: session %r: the writer lease (epoch %d) was taken over by "
                "another run; this run's further writes are refused",
                self.session_id,
                self.fence.epoch,
            )


_HELD: contextvars.ContextVar[tuple[tuple[object, str, Lease], ...]] = contextvars.ContextVar(
    "threadline_held_leases", default=()
)
_background: set[asyncio.Future[Any]] = set()


def held_lease(store: object, session_id: str) -> Lease | None:
    """The lease on ``session_id`` of ``store`` held around the current task, if any.

    Tasks started inside a lease block (a run's tools) see it too; once the block has ended
    it no longer counts, so a task that outlives it writes unfenced.
    """
    for held_store, held_id, lease in _HELD.get():
        if held_store is store and held_id == session_id and not lease.released:
            return lease
    return None


def _new_owner() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} ({uuid.uuid4().hex})"


def _holder(owner: str | None) -> str | None:
    """The readable part of an owner token: ``"pid 12 on host (uuid)"`` → ``"pid 12 on host"``."""
    return None if owner is None else owner.split(" (", 1)[0]


def _keep(future: asyncio.Future[Any]) -> None:
    _background.add(future)
    future.add_done_callback(_background.discard)


def _undo_acquire(backend: StoreBackend, session_id: str, owner: str, task: Any) -> None:
    """The caller was cancelled while its attempt ran: give back a lease it got anyway."""
    if task.cancelled() or task.exception() is not None or task.result() is None:
        return
    grant = task.result()[0]
    if not grant.acquired:
        return
    fence = Fence(owner, grant.epoch)
    with contextlib.suppress(RuntimeError):  # no running loop: the lease expires after its ttl
        _keep(asyncio.ensure_future(_release_quietly(backend, session_id, fence)))


async def _release_quietly(backend: StoreBackend, session_id: str, fence: Fence) -> None:
    try:
        await backend.lease_release(session_id, fence)
    except SessionError as exc:  # a closed or failing store: the lease expires by itself
        logger.debug("threadline: releasing the lease of %r failed: %s", session_id, exc)


async def _plain(
    backend: StoreBackend, session_id: str, owner: str, ttl: float
) -> tuple[LeaseGrant, None, None]:
    return await backend.lease_acquire(session_id, owner, ttl), None, None


async def _existing(
    backend: StoreBackend, session_id: str, owner: str, ttl: float
) -> tuple[LeaseGrant, SessionInfo, None] | None:
    found = await backend.lease_acquire_existing(session_id, owner, ttl)
    return None if found is None else (*found, None)


async def _attempt(
    backend: StoreBackend,
    session_id: str,
    owner: str,
    ttl: float,
    existing: bool,
    read: ReadPlan | None,
) -> tuple[LeaseGrant, SessionInfo | None, StartRead | None]:
    if read is not None:
        attempt: Any = backend.lease_acquire_and_read(session_id, owner, ttl, existing, read)
    elif existing:
        attempt = _existing(backend, session_id, owner, ttl)
    else:
        attempt = _plain(backend, session_id, owner, ttl)
    task = asyncio.ensure_future(attempt)
    try:
        found: tuple[LeaseGrant, SessionInfo | None, StartRead | None] | None
        found = await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(functools.partial(_undo_acquire, backend, session_id, owner))
        raise
    if found is None:
        raise NoSuchSession(session_id)
    return found


async def _acquire_store(
    backend: StoreBackend,
    session_id: str,
    owner: str,
    ttl: float,
    wait: bool,
    deadline: float | None,
    existing: bool,
    read: ReadPlan | None,
) -> tuple[LeaseGrant, SessionInfo | None, StartRead | None]:
    started = time.monotonic()
    delay = 0.005
    while True:
        grant, info, start = await _attempt(backend, session_id, owner, ttl, existing, read)
        if grant.acquired:
            return grant, info, start
        left = remaining(deadline)
        if not wait or left == 0:
            waited = None if not wait or deadline is None else time.monotonic() - started
            raise SessionBusyError(
                session_id, waited=waited, holder=_holder(grant.owner), expires_in=grant.expires_in
            )
        await asyncio.sleep(delay if left is None else min(delay, left))
        delay = min(delay * 2, 0.1)


@asynccontextmanager
async def fenced_lease(
    backend: StoreBackend,
    store: object,
    session_id: str,
    *,
    wait: bool = True,
    timeout: float | None = None,
    ttl: float,
    existing: bool = False,
    read: ReadPlan | None = None,
) -> AsyncIterator[Lease]:
    """Hold the fenced writer lease on ``session_id`` of ``store`` (see the module docstring).

    ``store`` identifies the store in this process (the in-process lock and the fence lookup
    are keyed by it); ``backend`` supplies the primitives. Yields the :class:`Lease`.
    ``existing``: only for a session that exists (else :class:`NoSuchSession`, nothing
    written); the lease's ``info`` is then the session as the grant found it. ``read``: a
    run's start read, made as the lease is granted (one store operation where the backend
    can; :meth:`~threadline.sessions.backend.StoreBackend.lease_acquire_and_read`); its
    result is the lease's ``start``.
    """
    timeout = check_timeout(timeout)
    ttl = check_ttl(ttl)
    deadline = None if timeout is None else time.monotonic() + timeout
    key = (fenced_lease, store, session_id)
    await _acquire(key, session_id, wait, timeout)  # the in-process lock (see local_lock)
    local = _LocalHold(key)
    try:
        owner = _new_owner()
        grant, info, start = await _acquire_store(
            backend, session_id, owner, ttl, wait, deadline, existing, read
        )
        lease = Lease(session_id, Fence(owner, grant.epoch), ttl, info)
        lease.start = start
        lease._local = local
        try:
            stop = backend.lease_keepalive(
                session_id, lease.fence, ttl, lease._should_renew, lease._mark_lost
            )
        except BaseException:
            await _release_quietly(backend, session_id, lease.fence)
            raise
        token = _HELD.set((*_HELD.get(), (store, session_id, lease)))
        try:
            yield lease
        finally:
            lease.released = True
            try:
                _HELD.reset(token)
            except ValueError:  # finalised in another context: drop just this entry
                _HELD.set(tuple(entry for entry in _HELD.get() if entry[2] is not lease))
            stop()
            if not lease.lost and not lease._ended:
                release = asyncio.ensure_future(_release_quietly(backend, session_id, lease.fence))
                _keep(release)
                await asyncio.shield(release)
    finally:
        local.free()


class _LocalHold:
    """The in-process lock a :func:`fenced_lease` holds, freed once: at the end of the block,
    or earlier when the holder's last write ended the lease."""

    __slots__ = ("freed", "key")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.freed = False

    def free(self) -> None:
        if not self.freed:
            self.freed = True
            _release(self.key)


class NoSuchSession(SessionError):
    """:func:`fenced_lease` with ``existing=True`` on a session that does not exist (nothing
    was written)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist")
        self.session_id = session_id


def check_fence(lease: Lease | None) -> Fence | None:
    """The fence to send with a write, or :class:`LeaseLostError` if the lease is known lost."""
    if lease is None:
        return None
    if lease.lost:
        raise LeaseLostError(lease.session_id, f"epoch {lease.fence.epoch}")
    return lease.fence
