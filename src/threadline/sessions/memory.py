"""InMemorySession: the reference implementation of the session contract.

Each instance is its own store and lives as long as the object. Items are kept as the same
compact JSON text a database would hold, so what comes back is always a fresh copy, exactly as
a database-backed session returns it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..errors import UserError
from ..items import Item
from ._window import window_size
from .base import SessionSettings
from .codec import KIND_USER, EncodedItem, check_count, check_session_id, encode_items, gc_paused
from .lease import check_timeout, local_lock

__all__ = ["InMemorySession"]

_GC_PAUSE_ABOVE = 2000


def _decode(rows: list[EncodedItem]) -> list[Item]:
    if not rows:
        return []
    with gc_paused(len(rows) > _GC_PAUSE_ABOVE):
        items: list[Item] = json.loads("[" + ",".join(row.data for row in rows) + "]")
    return items


class InMemorySession:
    """A session kept in process memory; gone when the object is.

    Implements the whole :class:`~threadline.sessions.ThreadlineSession` contract and is
    safe to share between threads and event loops.
    """

    def __init__(self, session_id: str, *, session_settings: SessionSettings | None = None):
        self.session_id = check_session_id(session_id)
        self.session_settings = session_settings
        self._rows: list[EncodedItem] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InMemorySession({self.session_id!r}, items={len(self._rows)})"

    async def get_items(self, limit: int | None = None) -> list[Item]:
        """The newest ``limit`` items (all when ``None``), oldest first."""
        limit = check_count(limit, "limit")
        with self._lock:
            if limit is None:
                rows = list(self._rows)
            else:
                rows = self._rows[max(0, len(self._rows) - limit) :] if limit else []
        return _decode(rows)

    async def add_items(self, items: list[Item]) -> None:
        """Append ``items`` atomically, keeping their order."""
        encoded = encode_items(items)
        if encoded:
            with self._lock:
                self._rows.extend(encoded)

    async def pop_item(self) -> Item | None:
        """Remove and return the newest item, or ``None`` when empty."""
        with self._lock:
            if not self._rows:
                return None
            row = self._rows.pop()
        return _decode([row])[0]

    async def clear_session(self) -> None:
        """Remove every item."""
        with self._lock:
            self._rows.clear()

    async def get_window(
        self, max_items: int | None = None, max_tokens: int | None = None
    ) -> list[Item]:
        """The newest items within the budget, oldest first, cut at a turn boundary."""
        max_items = check_count(max_items, "max_items")
        max_tokens = check_count(max_tokens, "max_tokens")
        with self._lock:
            if max_items is None and max_tokens is None:
                rows = list(self._rows)
            else:
                size = window_size(
                    ((r.kind, r.call_id, r.tokens) for r in reversed(self._rows)),
                    max_items,
                    max_tokens,
                )
                rows = self._rows[len(self._rows) - size :] if size else []
        return _decode(rows)

    async def pop_turn(self) -> list[Item]:
        """Remove and return the newest user message and everything after it."""
        with self._lock:
            for index in range(len(self._rows) - 1, -1, -1):
                if self._rows[index].kind == KIND_USER:
                    removed = self._rows[index:]
                    del self._rows[index:]
                    break
            else:
                return []
        return _decode(removed)

    async def replace_items(self, items: list[Item]) -> None:
        """Replace the whole history with ``items`` atomically."""
        encoded = encode_items(items)
        with self._lock:
            self._rows = encoded

    async def fork(self, new_session_id: str, at: int | None = None) -> InMemorySession:
        """A new, independent session holding the first ``at`` items (all when ``None``)."""
        new_session_id = check_session_id(new_session_id)
        at = check_count(at, "at")
        if new_session_id == self.session_id:
            raise UserError(f"cannot fork session {self.session_id!r} into itself: pick a new id")
        child = InMemorySession(new_session_id, session_settings=self.session_settings)
        with self._lock:
            child._rows = list(self._rows if at is None else self._rows[:at])
        return child

    @asynccontextmanager
    async def lease(
        self, *, wait: bool = True, timeout: float | None = None
    ) -> AsyncIterator[None]:
        """Hold this session's writer lease (an in-process lock: the store is this object)."""
        timeout = check_timeout(timeout)
        async with local_lock(self, self.session_id, wait=wait, timeout=timeout):
            yield
