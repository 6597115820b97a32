"""SQLiteSession and SQLiteStore: the embedded default session backend.

A :class:`SQLiteStore` owns one database (a file, or ``:memory:``) and the threads and
connections that reach it; :meth:`SQLiteStore.session` hands out light session handles that
share them. ``SQLiteSession(session_id, "file.db")`` uses a process-wide store per file, so many
sessions on one file never open a connection each. ``SQLiteSession(session_id)`` keeps its
history in a private in-memory database, as in the OpenAI Agents SDK.

See ``docs/sessions.md`` for the durability and locking guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...errors import SessionBusyError, SessionError, UserError
from ...items import Item
from ..base import DEFAULT_LEASE_TTL, SessionInfo, SessionSettings
from ..codec import check_count, check_session_id, encode_items
from ..lease import check_timeout, local_lock, remaining
from . import _ops as ops
from ._engine import SQLiteEngine

__all__ = ["SQLiteSession", "SQLiteStore"]

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], SQLiteStore] = {}


def _resolve_path(db_path: str | Path) -> str:
    if isinstance(db_path, Path):
        db_path = str(db_path)
    if not isinstance(db_path, str) or not db_path:
        raise UserError(f"db_path must be a file path or ':memory:', got {db_path!r}")
    if db_path == ":memory:":
        return db_path
    return str(Path(db_path).expanduser().resolve())


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise UserError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _close_engine(engine: SQLiteEngine) -> None:
    """Close ``engine`` when its store is collected, without joining a thread from itself."""
    if threading.current_thread().name.startswith("threadline-sqlite"):
        threading.Thread(target=engine.close, name="threadline-sqlite-closer", daemon=True).start()
    else:
        engine.close()


class SQLiteStore:
    """One SQLite database of sessions, with the connections and threads that serve it.

    * ``db_path`` — a file (created ``0600`` when new) or ``":memory:"``.
    * ``synchronous`` — ``"FULL"`` (default: an acknowledged write survives power loss),
      ``"NORMAL"`` (faster; a power cut may lose the latest writes, never corrupts), ``"EXTRA"``
      or ``"OFF"``.
    * ``busy_timeout`` — seconds SQLite itself waits on another process's lock per attempt.
    * ``lock_timeout`` — seconds a write keeps retrying a locked database before it fails.
    * ``readers`` — reader threads (each with one connection) for a file database.

    The schema is created or migrated on first use. Close the store with :meth:`close` (or use
    it as an ``async with`` block) when done; sessions of a closed store raise
    :class:`~threadline.errors.SessionError`.
    """

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        lock_timeout: float = 60.0,
        readers: int = 4,
    ) -> None:
        path = _resolve_path(db_path)
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in _SYNCHRONOUS:
            raise UserError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        if isinstance(readers, bool) or not isinstance(readers, int) or readers < 1:
            raise UserError(f"readers must be an integer >= 1, got {readers!r}")
        self._engine = SQLiteEngine(
            path,
            synchronous=mode,
            busy_timeout=_positive("busy_timeout", busy_timeout),
            lock_timeout=_positive("lock_timeout", lock_timeout),
            readers=readers,
        )
        self._users = 0
        self._registry_key: tuple[str, str] | None = None
        # A store dropped without close() (SQLiteSession("id") is used that way) still closes
        # its connections: no "unclosed database" warning, no connection left to the GC.
        weakref.finalize(self, _close_engine, self._engine)

    @classmethod
    def shared(cls, db_path: str | Path, *, synchronous: str = "FULL") -> SQLiteStore:
        """The process-wide store for the file ``db_path`` (created on first use).

        Every ``SQLiteSession(session_id, db_path)`` of this process with the same file and
        ``synchronous`` setting uses it. It stays open until :meth:`close` is called.
        """
        return cls._shared(db_path, synchronous)

    @classmethod
    def _shared(cls, db_path: str | Path, synchronous: str) -> SQLiteStore:
        path = _resolve_path(db_path)
        if path == ":memory:":
            raise UserError(
                "':memory:' databases are private: use SQLiteStore() instead of shared()"
            )
        key = (path, synchronous.upper() if isinstance(synchronous, str) else str(synchronous))
        with _registry_lock:
            store = _registry.get(key)
            if store is None or store.closed or store._engine._pid != os.getpid():
                store = cls(path, synchronous=synchronous)
                store._registry_key = key
                _registry[key] = store
            store._users += 1
            return store

    @property
    def db_path(self) -> str:
        """The resolved database path, or ``":memory:"``."""
        return self._engine.path

    @property
    def closed(self) -> bool:
        """Whether the store was closed."""
        return self._engine.closed

    def __repr__(self) -> str:
        return f"SQLiteStore({self.db_path!r})"

    def session(
        self, session_id: str, *, session_settings: SessionSettings | None = None
    ) -> SQLiteSession:
        """A session handle on this store (cheap: no connection of its own)."""
        return SQLiteSession(session_id, store=self, session_settings=session_settings)

    async def setup(self) -> None:
        """Open the database now and bring its schema up to date (otherwise done on first use)."""
        await self._engine.write(lambda conn: None)

    async def list_sessions(self) -> list[SessionInfo]:
        """Every session in the store with its item count, most recently updated first."""
        rows = await self._engine.read(ops.list_sessions)
        return [
            SessionInfo(
                session_id,
                count,
                datetime.fromtimestamp(created, timezone.utc),
                datetime.fromtimestamp(updated, timezone.utc),
            )
            for session_id, count, created, updated in rows
        ]

    async def delete_session(self, session_id: str) -> bool:
        """Remove a session and all its items; ``False`` when the store had no such session."""
        session_id = check_session_id(session_id)
        deleted: bool = await self._engine.write(
            functools.partial(ops.clear, session_id=session_id)
        )
        return deleted

    def close(self) -> None:
        """Finish queued writes and close every connection (blocks until done)."""
        with _registry_lock:
            if self._registry_key is not None and _registry.get(self._registry_key) is self:
                del _registry[self._registry_key]
        self._engine.close()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- used by SQLiteSession

    def _release_user(self) -> None:
        with _registry_lock:
            self._users -= 1
            if self._users > 0:
                return
            if self._registry_key is not None and _registry.get(self._registry_key) is self:
                del _registry[self._registry_key]
        self._engine.close()

    async def _acquire_lease(
        self, session_id: str, ttl: float, wait: bool, deadline: float | None
    ) -> str:
        owner = f"{os.getpid()}:{uuid.uuid4().hex}"
        started = time.monotonic()
        attempt = functools.partial(ops.acquire_lease, session_id=session_id, owner=owner, ttl=ttl)
        delay = 0.005
        while True:
            future = self._engine.submit_write(attempt, durable=False)
            try:
                acquired = await asyncio.shield(asyncio.wrap_future(future))
            except asyncio.CancelledError:
                # Unless it is dropped from the queue, the attempt may still succeed after we
                # stop waiting: give the lease back if so.
                future.cancel()
                future.add_done_callback(functools.partial(self._undo_lease, session_id, owner))
                raise
            if acquired:
                break
            left = remaining(deadline)
            if not wait or left == 0:
                waited = None if not wait or deadline is None else time.monotonic() - started
                raise SessionBusyError(session_id, waited=waited)
            await asyncio.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 2, 0.1)
        self._engine.add_heartbeat(
            ("lease", session_id, owner),
            ttl / 3,
            functools.partial(ops.renew_lease, session_id=session_id, owner=owner, ttl=ttl),
        )
        return owner

    def _undo_lease(self, session_id: str, owner: str, future: Any) -> None:
        if not future.cancelled() and future.exception() is None and future.result():
            with contextlib.suppress(SessionError):  # a closed store: the row expires by itself
                self._engine.submit_write(
                    functools.partial(ops.release_lease, session_id=session_id, owner=owner),
                    durable=False,
                )

    async def _release_lease(self, session_id: str, owner: str) -> None:
        self._engine.remove_heartbeat(("lease", session_id, owner))
        if self._engine.closed:
            return  # the row expires after its ttl
        future = self._engine.submit_write(
            functools.partial(ops.release_lease, session_id=session_id, owner=owner),
            durable=False,
        )
        await asyncio.shield(asyncio.wrap_future(future))


class SQLiteSession:
    """A conversation history stored in SQLite.

    ``SQLiteSession("user_123", "conversations.db")`` keeps it in a file (many sessions per
    file); ``SQLiteSession("conversation_123")`` in a private in-memory database. Pass
    ``store=`` to use a :class:`SQLiteStore` you manage. Implements the whole
    :class:`~threadline.sessions.ThreadlineSession` contract.
    """

    def __init__(
        self,
        session_id: str,
        db_path: str | Path = ":memory:",
        *,
        session_settings: SessionSettings | None = None,
        store: SQLiteStore | None = None,
        synchronous: str = "FULL",
    ) -> None:
        self.session_id = check_session_id(session_id)
        self.session_settings = session_settings
        self._owns_store = store is None
        if store is not None:
            if not isinstance(store, SQLiteStore):
                raise UserError(f"store must be a SQLiteStore, got {type(store).__name__}")
            if db_path != ":memory:" and _resolve_path(db_path) != store.db_path:
                raise UserError(
                    f"db_path {str(db_path)!r} does not match the store's {store.db_path!r}: "
                    "pass one or the other"
                )
            self.store = store
        elif _resolve_path(db_path) == ":memory:":
            self.store = SQLiteStore(":memory:", synchronous=synchronous)
            self.store._users = 1
        else:
            self.store = SQLiteStore._shared(db_path, synchronous)
        self._closed = False
        self.db_path = self.store.db_path

    def __repr__(self) -> str:
        return f"SQLiteSession({self.session_id!r}, {self.db_path!r})"

    @property
    def _engine(self) -> SQLiteEngine:
        return self.store._engine

    async def get_items(self, limit: int | None = None) -> list[Item]:
        """The newest ``limit`` items (all when ``None``), oldest first."""
        limit = check_count(limit, "limit")
        return await self._engine.read(
            functools.partial(ops.read_newest, session_id=self.session_id, limit=limit),
            snapshot=limit is None or limit > ops.SINGLE_STATEMENT_LIMIT,
        )

    async def add_items(self, items: list[Item]) -> None:
        """Append ``items`` atomically in one durable transaction, keeping their order."""
        rows = encode_items(items)
        if rows:
            await self._engine.write(
                functools.partial(ops.add, session_id=self.session_id, rows=rows)
            )

    async def pop_item(self) -> Item | None:
        """Remove and return the newest item, or ``None`` when empty."""
        return await self._engine.write(functools.partial(ops.pop, session_id=self.session_id))

    async def clear_session(self) -> None:
        """Remove every item of this session."""
        await self._engine.write(functools.partial(ops.clear, session_id=self.session_id))

    async def get_window(
        self, max_items: int | None = None, max_tokens: int | None = None
    ) -> list[Item]:
        """The newest items within the budget, oldest first, cut at a turn boundary."""
        max_items = check_count(max_items, "max_items")
        max_tokens = check_count(max_tokens, "max_tokens")
        return await self._engine.read(
            functools.partial(
                ops.window, session_id=self.session_id, max_items=max_items, max_tokens=max_tokens
            )
        )

    async def pop_turn(self) -> list[Item]:
        """Remove and return the newest user message and everything after it."""
        return await self._engine.write(functools.partial(ops.pop_turn, session_id=self.session_id))

    async def replace_items(self, items: list[Item]) -> None:
        """Replace the whole history with ``items`` in one transaction."""
        rows = encode_items(items)
        await self._engine.write(
            functools.partial(ops.replace, session_id=self.session_id, rows=rows)
        )

    async def fork(self, new_session_id: str, at: int | None = None) -> SQLiteSession:
        """Copy the first ``at`` items (all when ``None``) into a new, empty session of this store."""
        new_session_id = check_session_id(new_session_id)
        at = check_count(at, "at")
        if new_session_id == self.session_id:
            raise UserError(f"cannot fork session {self.session_id!r} into itself: pick a new id")
        await self._engine.write(
            functools.partial(
                ops.fork, session_id=self.session_id, new_session_id=new_session_id, at=at
            )
        )
        return SQLiteSession(
            new_session_id, store=self.store, session_settings=self.session_settings
        )

    @asynccontextmanager
    async def lease(
        self, *, wait: bool = True, timeout: float | None = None
    ) -> AsyncIterator[None]:
        """Hold the writer lease: an in-process lock plus a lease row other processes respect.

        The row is renewed every third of ``session_settings.lease_ttl`` while held; if this
        process dies, another takes the lease over once the row expires.
        """
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        settings = self.session_settings
        ttl = settings.effective_ttl if settings is not None else DEFAULT_LEASE_TTL
        key = (SQLiteStore, self.store, self.session_id)
        async with local_lock(key, self.session_id, wait=wait, timeout=timeout):
            if self.store.db_path == ":memory:":  # no other process can see this database
                yield
                return
            owner = await self.store._acquire_lease(self.session_id, ttl, wait, deadline)
            try:
                yield
            finally:
                await self.store._release_lease(self.session_id, owner)

    def close(self) -> None:
        """Release this handle; the store closes with its last constructor-made handle.

        Handles from :meth:`SQLiteStore.session` leave closing to the store's owner.
        """
        if self._owns_store and not self._closed:
            self._closed = True
            self.store._release_user()
