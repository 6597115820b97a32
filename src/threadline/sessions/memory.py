"""The in-memory store: the reference backend, and ``InMemorySession``.

:class:`InMemoryDatabase` holds sessions as lists of encoded rows (the same payloads a
database would hold, so what comes back is always a fresh copy). :class:`InMemoryStore` is a
store over one such database; two stores given the same database behave like two processes
sharing a file (each has its own in-process lock, both respect the fenced lease).
``InMemorySession(session_id)`` is a session with a private store of its own, as in the
OpenAI Agents SDK. Everything is safe to share between threads and event loops.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import CorruptItemError, LeaseLostError, SessionError, UserError
from ..items import Item
from ._base_store import Store
from ._handle import StoreSession
from ._search import make_snippet, matches
from ._window import check_fork_cut, window_size
from .backend import (
    Fence,
    LeaseGrant,
    LeaseHolder,
    PairingSummary,
    Payload,
    SearchHit,
    StoreBackend,
    StoreStats,
    TailWindow,
    pairing_of,
    rows_window_size,
)
from .base import SessionInfo, SessionSettings
from .codec import (
    KIND_CALL,
    KIND_OUTPUT,
    KIND_USER,
    ROW_SEPARATOR,
    EncodedItem,
    ItemCodec,
    JsonCodec,
    decode_joined,
    decode_payload,
    gc_paused,
    search_text,
)

__all__ = ["InMemoryBackend", "InMemoryDatabase", "InMemorySession", "InMemoryStore"]

_GC_PAUSE_ABOVE = 2000


@dataclass
class _Session:
    rows: list[EncodedItem]
    created_at: float
    updated_at: float
    tick: int
    records: dict[str, Payload] = field(default_factory=dict)


@dataclass
class _LeaseRow:
    owner: str = ""
    epoch: int = 0
    expires_at: float = 0.0


@dataclass
class InMemoryDatabase:
    """The storage behind in-memory stores: sessions, rows and lease rows, under one lock."""

    sessions: dict[str, _Session] = field(default_factory=dict)
    leases: dict[str, _LeaseRow] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    ticks: Any = field(default_factory=lambda: itertools.count(1), repr=False)


class InMemoryBackend(StoreBackend):
    """Rows in an :class:`InMemoryDatabase`; every method is one step under its lock."""

    capabilities = frozenset(
        {"window", "pop_turn", "replace", "fork", "lease", "records", "search", "shared"}
    )

    def __init__(self, database: InMemoryDatabase, codec: ItemCodec) -> None:
        super().__init__(codec)
        self.db = database
        self._closed = False

    @property
    def where(self) -> str:
        return "in memory"

    async def close(self) -> None:
        self._closed = True

    # ------------------------------------------------------------------ helpers

    def _open(self) -> InMemoryDatabase:
        if self._closed:
            raise SessionError("the session store in memory is closed: open a new store")
        return self.db

    def _decode(self, session_id: str, rows: Sequence[EncodedItem], offset: int) -> list[Item]:
        if not rows:
            return []
        codec = self.codec
        if codec.plain_json and all(row.data.__class__ is str for row in rows):
            with gc_paused(len(rows) > _GC_PAUSE_ABOVE):
                values = decode_joined(ROW_SEPARATOR.join([str(r.data) for r in rows]), len(rows))
            if values is not None:
                return values
        items = []
        for index, row in enumerate(rows):
            item, problem = decode_payload(codec, session_id, row.data)
            if item is None:
                raise CorruptItemError(session_id, offset + index, problem)
            items.append(item)
        return items

    def _touch(self, db: InMemoryDatabase, session_id: str, now: float) -> _Session:
        found = db.sessions.get(session_id)
        if found is None:
            found = _Session([], now, now, next(db.ticks))
            db.sessions[session_id] = found
        else:
            found.updated_at = now
            found.tick = next(db.ticks)
        return found

    @staticmethod
    def _check_fence(db: InMemoryDatabase, session_id: str, fence: Fence | None) -> None:
        if fence is None:
            return
        row = db.leases.get(session_id)
        if row is None or row.owner != fence.owner or row.epoch != fence.epoch:
            raise LeaseLostError(session_id, f"epoch {fence.epoch} is no longer the lease")

    # ------------------------------------------------------------------ one session's items

    async def append(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        db = self._open()
        with db.lock:
            self._check_fence(db, session_id, fence)
            found = self._touch(db, session_id, time.time())
            found.rows.extend(rows)
            if records:
                _write_records(found, records)

    async def get_record(self, session_id: str, key: str) -> Payload | None:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            return None if found is None else found.records.get(key)

    async def list_records(self, session_id: str, prefix: str) -> list[tuple[str, Payload]]:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            if found is None:
                return []
            return sorted((k, v) for k, v in found.records.items() if k.startswith(prefix))

    async def put_records(
        self, session_id: str, records: Mapping[str, Payload | None], fence: Fence | None
    ) -> None:
        db = self._open()
        with db.lock:
            self._check_fence(db, session_id, fence)
            found = db.sessions.get(session_id)
            if found is None:
                if all(value is None for value in records.values()):
                    return
                now = time.time()
                found = _Session([], now, now, next(db.ticks))
                db.sessions[session_id] = found
            _write_records(found, records)

    async def read(self, session_id: str, limit: int | None) -> list[Item]:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            rows = [] if found is None else found.rows
            start = 0 if limit is None else max(0, len(rows) - limit)
            taken = rows[start:]
        return self._decode(session_id, taken, start)

    async def window(
        self, session_id: str, max_items: int | None, max_tokens: int | None
    ) -> list[Item]:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            rows = [] if found is None else found.rows
            if max_items is None and max_tokens is None:
                size = len(rows)
            else:
                size = window_size(
                    ((r.kind, r.call_id, r.tokens) for r in reversed(rows)), max_items, max_tokens
                )
            start = len(rows) - size
            taken = rows[start:] if size else []
        return self._decode(session_id, taken, start)

    async def window_since(
        self, session_id: str, start: int, max_items: int | None, max_tokens: int | None
    ) -> TailWindow:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            rows = [] if found is None else found.rows
            count = len(rows)
            if start > count:
                return TailWindow(count, None, [], 0)
            tail = rows[start:]
            tail_tokens = sum(row.tokens for row in tail)
            size = rows_window_size(tail, max_items, max_tokens)
            anchor_row = rows[start - 1 : start] if start > 0 else []
            taken = tail[len(tail) - size :] if size else []
        anchor = self._decode(session_id, anchor_row, start - 1)[0] if anchor_row else None
        return TailWindow(count, anchor, self._decode(session_id, taken, count - size), tail_tokens)

    async def pop(self, session_id: str, fence: Fence | None) -> Item | None:
        db = self._open()
        with db.lock:
            self._check_fence(db, session_id, fence)
            found = db.sessions.get(session_id)
            if found is None or not found.rows:
                return None
            position = len(found.rows) - 1
            item = self._decode(session_id, found.rows[-1:], position)[0]
            found.rows.pop()
            self._touch(db, session_id, time.time())
            return item

    async def pop_turn(self, session_id: str, fence: Fence | None) -> list[Item]:
        db = self._open()
        with db.lock:
            self._check_fence(db, session_id, fence)
            found = db.sessions.get(session_id)
            if found is None:
                return []
            for index in range(len(found.rows) - 1, -1, -1):
                if found.rows[index].kind == KIND_USER:
                    break
            else:
                return []
            items = self._decode(session_id, found.rows[index:], index)
            del found.rows[index:]
            self._touch(db, session_id, time.time())
            return items

    async def replace(
        self, session_id: str, rows: Sequence[EncodedItem], fence: Fence | None
    ) -> None:
        db = self._open()
        with db.lock:
            self._check_fence(db, session_id, fence)
            self._touch(db, session_id, time.time()).rows = list(rows)

    async def clear(self, session_id: str, fence: Fence | None) -> None:
        db = self._open()
        with db.lock:
            self._check_fence(db, session_id, fence)
            if session_id in db.sessions:
                self._touch(db, session_id, time.time()).rows = []

    async def fork(self, session_id: str, new_session_id: str, at: int | None) -> None:
        db = self._open()
        with db.lock:
            target = db.sessions.get(new_session_id)
            if target is not None and target.rows:
                raise UserError(
                    f"cannot fork session {session_id!r} into {new_session_id!r}: that session "
                    f"already holds {len(target.rows)} items; clear it first or pick a new id"
                )
            source = db.sessions.get(session_id)
            if source is not None and at is not None and at < len(source.rows):
                check_fork_cut(
                    session_id,
                    at,
                    (
                        (position, row.kind, row.call_id)
                        for position, row in enumerate(source.rows)
                        if row.kind in (KIND_CALL, KIND_OUTPUT)
                    ),
                )
            rows = [] if source is None else source.rows if at is None else source.rows[:at]
            if not rows:
                return
            self._touch(db, new_session_id, time.time()).rows = list(rows)

    async def fork_resealed(
        self,
        session_id: str,
        new_session_id: str,
        at: int | None,
        reseal: Callable[[Payload], Payload],
    ) -> int:
        db = self._open()
        with db.lock:  # one step, like fork: check, reseal every copied row, write
            target = db.sessions.get(new_session_id)
            if target is not None and target.rows:
                raise UserError(
                    f"cannot fork session {session_id!r} into {new_session_id!r}: that session "
                    f"already holds {len(target.rows)} items; clear it first or pick a new id"
                )
            source = db.sessions.get(session_id)
            if source is None:
                return 0
            if at is not None and at < len(source.rows):
                check_fork_cut(
                    session_id,
                    at,
                    (
                        (position, row.kind, row.call_id)
                        for position, row in enumerate(source.rows)
                        if row.kind in (KIND_CALL, KIND_OUTPUT)
                    ),
                )
            rows = source.rows if at is None else source.rows[:at]
            copied = []
            for position, row in enumerate(rows):
                try:
                    copied.append(row._replace(data=reseal(row.data)))
                except ValueError as exc:
                    raise CorruptItemError(
                        session_id, position, f"the {self.codec.name} codec cannot open it: {exc}"
                    ) from None
            if copied:
                self._touch(db, new_session_id, time.time()).rows = copied
            return len(copied)

    # ------------------------------------------------------------------ the store

    async def delete(self, session_id: str) -> bool:
        db = self._open()
        with db.lock:
            return db.sessions.pop(session_id, None) is not None

    async def list_sessions(
        self, limit: int | None, after: str | None
    ) -> tuple[list[SessionInfo], str | None]:
        db = self._open()
        below = _tick_cursor(after)
        with db.lock:
            ordered = sorted(
                (
                    (found.tick, session_id, found)
                    for session_id, found in db.sessions.items()
                    if below is None or found.tick < below
                ),
                key=lambda entry: entry[0],
                reverse=True,
            )
            page = ordered if limit is None else ordered[: limit + 1]
            infos = [
                SessionInfo.from_timestamps(
                    session_id, len(found.rows), found.created_at, found.updated_at
                )
                for _, session_id, found in page[:limit]
            ]
        more = limit is not None and len(page) > limit
        return infos, (f"t{page[limit - 1][0]}" if more and limit else None)

    async def list_sessions_with_record(
        self,
        limit: int | None,
        after: str | None,
        key: str,
        select: Callable[[str, Payload | None], Any],
    ) -> tuple[list[tuple[SessionInfo, Any]], str | None]:
        db = self._open()
        below = _tick_cursor(after)
        with db.lock:
            ordered = sorted(
                (
                    (found.tick, session_id, found)
                    for session_id, found in db.sessions.items()
                    if below is None or found.tick < below
                ),
                key=lambda entry: entry[0],
                reverse=True,
            )
            page: list[tuple[SessionInfo, Any]] = []
            for index, (tick, session_id, found) in enumerate(ordered):
                selected = select(session_id, found.records.get(key))
                if selected is None:
                    continue
                info = SessionInfo.from_timestamps(
                    session_id, len(found.rows), found.created_at, found.updated_at
                )
                page.append((info, selected))
                if limit is not None and len(page) >= limit:
                    more = index + 1 < len(ordered)
                    return page, (f"t{tick}" if more else None)
        return page, None

    async def user_positions(self, session_id: str) -> list[int]:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            rows = [] if found is None else found.rows
            return [index for index, row in enumerate(rows) if row.kind == KIND_USER]

    async def pairing_summary(self, session_ids: Sequence[str]) -> dict[str, PairingSummary]:
        db = self._open()
        found: dict[str, PairingSummary] = {}
        with db.lock:
            for session_id in session_ids:
                entry = db.sessions.get(session_id)
                if entry is not None:
                    rows = [(row.kind, row.call_id) for row in entry.rows]
                    found[session_id] = pairing_of(session_id, rows)
        return found

    async def read_json(self, session_id: str) -> list[str]:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            rows = [] if found is None else list(found.rows)
        if not (self.codec.plain_json and all(row.data.__class__ is str for row in rows)):
            return await StoreBackend.read_json(self, session_id)
        texts = [str(row.data) for row in rows]
        with gc_paused(len(texts) > _GC_PAUSE_ABOVE):
            checked = decode_joined(ROW_SEPARATOR.join(texts), len(texts)) if texts else []
        if checked is None:
            self._decode(session_id, rows, 0)  # names the corrupt row
        return texts

    async def read_oldest(self, session_id: str, limit: int) -> list[Item]:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            taken = [] if found is None else found.rows[:limit]
        return self._decode(session_id, taken, 0)

    async def session_info(self, session_id: str) -> SessionInfo | None:
        db = self._open()
        with db.lock:
            found = db.sessions.get(session_id)
            if found is None:
                return None
            return SessionInfo.from_timestamps(
                session_id, len(found.rows), found.created_at, found.updated_at
            )

    async def search(
        self, terms: Sequence[str], limit: int, session_id: str | None
    ) -> list[SearchHit]:
        db = self._open()
        with db.lock:
            if session_id is None:
                candidates = sorted(db.sessions.items(), key=lambda e: e[1].tick, reverse=True)
            else:
                found = db.sessions.get(session_id)
                candidates = [] if found is None else [(session_id, found)]
            snapshot = [(sid, list(found.rows)) for sid, found in candidates]
        hits: list[SearchHit] = []
        for sid, rows in snapshot:  # a plain scan, newest first: the reference, not an index
            for position in range(len(rows) - 1, -1, -1):
                item = self._decode(sid, rows[position : position + 1], position)[0]
                text = search_text(item)
                if text is not None and matches(text, terms):
                    hits.append(SearchHit(sid, position, make_snippet(text, terms), item))
                    if len(hits) >= limit:
                        return hits
        return hits

    async def stats(self) -> StoreStats:
        db = self._open()
        with db.lock:
            items = sum(len(found.rows) for found in db.sessions.values())
            return StoreStats(len(db.sessions), items, {"backend": "memory"})

    # ------------------------------------------------------------------ lease primitives

    async def lease_acquire(self, session_id: str, owner: str, ttl: float) -> LeaseGrant:
        db = self._open()
        now = time.time()
        with db.lock:
            row = db.leases.setdefault(session_id, _LeaseRow())
            if row.owner and row.owner != owner and row.expires_at > now:
                return LeaseGrant(False, row.epoch, row.owner, row.expires_at - now)
            row.owner, row.epoch, row.expires_at = owner, row.epoch + 1, now + ttl
            return LeaseGrant(True, row.epoch)

    async def lease_renew(self, session_id: str, fence: Fence, ttl: float) -> bool:
        db = self._open()
        with db.lock:
            row = db.leases.get(session_id)
            if row is None or row.owner != fence.owner or row.epoch != fence.epoch:
                return False
            row.expires_at = time.time() + ttl
            return True

    async def lease_holders(self, session_ids: Sequence[str]) -> dict[str, LeaseHolder]:
        db = self._open()
        now = time.time()
        found: dict[str, LeaseHolder] = {}
        with db.lock:
            for session_id in session_ids:
                row = db.leases.get(session_id)
                if row is not None and row.owner and row.expires_at > now:
                    found[session_id] = LeaseHolder(
                        session_id, row.owner, row.epoch, row.expires_at
                    )
        return found

    async def lease_release(self, session_id: str, fence: Fence) -> None:
        db = self._open()
        with db.lock:
            row = db.leases.get(session_id)
            if row is not None and row.owner == fence.owner and row.epoch == fence.epoch:
                row.owner, row.expires_at = "", 0.0


def _write_records(found: _Session, records: Mapping[str, Payload | None]) -> None:
    for key, value in records.items():
        if value is None:
            found.records.pop(key, None)
        else:
            found.records[key] = value


def _tick_cursor(after: str | None) -> int | None:
    if after is None:
        return None
    if not after.startswith("t") or not after[1:].isdigit():
        raise UserError(f"after={after!r} is not a cursor of this store: pass a page's next_cursor")
    return int(after[1:])


class InMemorySession(StoreSession):
    """A session kept in process memory; gone when the object (and its store) is.

    ``InMemorySession(session_id)`` has a private store of its own; ``InMemoryStore()``
    hands out handles that share one. Implements the whole
    :class:`~threadline.sessions.ThreadlineSession` contract.
    """

    def __init__(self, session_id: str, *, session_settings: SessionSettings | None = None):
        super().__init__(InMemoryStore(), session_id, session_settings=session_settings)

    def __repr__(self) -> str:
        return f"InMemorySession({self.session_id!r})"


class InMemoryStore(Store):
    """A store in process memory (see the module docstring).

    * ``database`` — an :class:`InMemoryDatabase` to share with other stores (default: new).
    * ``codec`` — the item codec (default :class:`~threadline.sessions.JsonCodec`).
    """

    session_class: ClassVar[type[StoreSession]] = InMemorySession

    def __init__(
        self, database: InMemoryDatabase | None = None, *, codec: ItemCodec | None = None
    ) -> None:
        if database is not None and not isinstance(database, InMemoryDatabase):
            raise UserError(f"database must be an InMemoryDatabase, got {type(database).__name__}")
        self.database = database if database is not None else InMemoryDatabase()
        super().__init__(InMemoryBackend(self.database, codec or JsonCodec()))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> InMemoryStore:
        """``memory://`` (nothing may follow the scheme)."""
        if url.split("://", 1)[1] not in ("", "/"):
            raise UserError(f"a memory:// store URL takes nothing after the scheme, got {url!r}")
        return cls(**options)
