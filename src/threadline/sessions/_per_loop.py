"""One object per running event loop, closed when that loop shuts down.

An ``AsyncOpenAI`` client's connections belong to the event loop that opened them: used from
another loop they fail (``RuntimeError: Event loop is closed`` once ``asyncio.run`` has closed
the first one), and left open when their loop closes they are leaked sockets. :class:`PerLoop`
keeps one object per loop, made on first use inside that loop, and closes it while the loop can
still run the close:

* when the loop shuts down — ``asyncio.run``, ``asyncio.Runner`` and ``Runner.run_sync``'s
  loops call ``loop.shutdown_asyncgens()`` before closing, and each object is held by a small
  async generator registered with its loop, whose ``finally`` closes it;
* on :meth:`PerLoop.aclose`, for the running loop;
* when the ``PerLoop`` itself is dropped: the generators are collected and the loop finalizes
  them, so a provider that goes away closes its clients.

The table is keyed weakly by the loop. A loop closed without ``shutdown_asyncgens()`` (a
hand-made loop closed directly) cannot close anything any more; its entry is dropped at the next
lookup and its objects go with it.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")


@dataclass(eq=False)
class _Entry(Generic[T]):
    """One loop's object and the async generator that closes it."""

    value: T
    closed: bool = False
    keeper: AsyncGenerator[None, None] | None = field(default=None, repr=False)


async def _keep(
    entry: _Entry[T], close: Callable[[T], Awaitable[None]]
) -> AsyncGenerator[None, None]:
    """Suspend until the loop finalizes this generator, then close the entry's object."""
    try:
        yield
    finally:
        entry.closed = True
        await close(entry.value)


def _start(keeper: AsyncGenerator[None, None]) -> None:
    """Run ``keeper`` to its first ``yield`` now.

    The first step registers it with the running loop (the loop's ``firstiter`` hook), so
    ``shutdown_asyncgens()`` finalizes it; it awaits nothing before the ``yield``, so one
    synchronous step gets there.
    """
    step = keeper.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()  # pragma: no cover - _keep never awaits before its yield
    raise AssertionError("the keeper awaited before its first yield")


_parked_lock = threading.Lock()
_parked: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[AsyncGenerator[None, None]]] = (
    weakref.WeakKeyDictionary()
)
"""Keepers handed to their loops by :meth:`PerLoop.aclose_all`, finalized at loop shutdown."""


class PerLoop(Generic[T]):
    """One ``make()`` result per running event loop, passed to ``close`` before the loop closes.

    Thread-safe: each thread's loop gets its own object.
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[T]] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Entry[T]] | None = None
        """The loop of the latest :meth:`get` and its entry: most calls come from that loop
        again, and then need neither the lock nor the table."""

    def get(self) -> T:
        """The running loop's object, made now if it has none (``RuntimeError`` outside a loop).

        Exceptions of ``make()`` propagate, and nothing is kept for the loop.
        """
        loop = asyncio.get_running_loop()
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0]() is loop and not last[1].closed:
            return last[1].value
        with self._lock:
            entry = self._entries.get(loop)
        if entry is None or entry.closed:
            entry = _Entry(self._make())
            entry.keeper = _keep(entry, self._close)
            _start(entry.keeper)
            with self._lock:
                self._prune()
                self._entries[loop] = entry
        self._last = (weakref.ref(loop), entry)
        return entry.value

    def current(self) -> T | None:
        """The running loop's object if it has one; ``None`` outside a loop or before ``get()``."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        with self._lock:
            entry = self._entries.get(loop)
        return entry.value if entry is not None and not entry.closed else None

    async def aclose(self) -> None:
        """Close the running loop's object now; a later :meth:`get` makes a new one.

        Objects of other loops are closed when those loops shut down (they cannot be closed
        from this one).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.pop(loop, None)
            self._last = None
        if entry is not None and entry.keeper is not None:
            await entry.keeper.aclose()

    async def aclose_all(self) -> None:
        """Close the running loop's object now, and hand every other loop's object to that
        loop to close when it shuts down.

        For an owner that is closed for good (a store): the objects of loops that are not
        running now (a ``Runner.run_sync`` loop between calls) cannot be closed from here, and
        dropping them would leave their connections to the garbage collector; parked, they
        are closed by the loop's ``shutdown_asyncgens()`` like any other.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            others = [
                (other, entry)
                for other, entry in self._entries.items()
                if other is not loop and not entry.closed and entry.keeper is not None
            ]
            for other, _ in others:
                del self._entries[other]
        with _parked_lock:
            for other, entry in others:
                if not other.is_closed() and entry.keeper is not None:
                    _parked.setdefault(other, []).append(entry.keeper)
        await self.aclose()

    def _prune(self) -> None:
        """Drop the entries of loops that closed without finalizing them (holding the lock)."""
        for loop in [loop for loop in self._entries if loop.is_closed()]:
            del self._entries[loop]
