"""SQLiteSession and SQLiteStore: the embedded default session store.

A :class:`SQLiteStore` owns one database (a file, or ``:memory:``) and the threads and
connections that reach it; :meth:`SQLiteStore.session` hands out light session handles that
share them. ``SQLiteSession(session_id, "file.db")`` uses a process-wide store per file, so many
sessions on one file never open a connection each. ``SQLiteSession(session_id)`` keeps its
history in a private in-memory database, as in the OpenAI Agents SDK.

See ``docs/sessions.md`` for the durability and locking guarantees.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import urllib.parse
import weakref
from pathlib import Path
from typing import Any, ClassVar

from ...errors import UserError
from .._base_store import Store
from .._handle import StoreSession
from ..base import SessionSettings
from ..codec import ItemCodec, JsonCodec
from ._backend import SQLiteBackend
from ._engine import SQLiteEngine
from ._schema import SDK_TABLES
from ._sdk import DEFAULT_TABLES, check_table_name, find_sdk_tables, import_sdk_sessions

__all__ = ["SQLiteSession", "SQLiteStore"]

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

_registry_lock = threading.Lock()
_registry: dict[tuple[str, ...], SQLiteStore] = {}


def _resolve_path(db_path: str | Path) -> str:
    if isinstance(db_path, Path):
        db_path = str(db_path)
    if not isinstance(db_path, str) or not db_path:
        raise UserError(f"db_path must be a file path or ':memory:', got {db_path!r}")
    if db_path == ":memory:":
        return db_path
    return str(Path(db_path).expanduser().resolve())


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"{name} must be a number of seconds > 0, got {value!r}")
    if value == float("inf"):
        raise UserError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(value)


def _sdk_tables(sessions_table: str | None, messages_table: str | None) -> tuple[str, str]:
    return (
        check_table_name(sessions_table or DEFAULT_TABLES[0], "sessions_table"),
        check_table_name(messages_table or DEFAULT_TABLES[1], "messages_table"),
    )


def _adopt_sdk(tables: tuple[str, str], codec: ItemCodec, where: str, conn: Any) -> None:
    """When the schema is created: adopt the OpenAI Agents SDK's sessions, if the file has them."""
    found = find_sdk_tables(conn, tables)
    if found is not None:
        import_sdk_sessions(conn, codec, found, where)


def _close_engine(engine: SQLiteEngine) -> None:
    """Close ``engine`` when its store is collected, without joining a thread from itself."""
    if threading.current_thread().name.startswith("threadline-sqlite"):
        threading.Thread(target=engine.close, name="threadline-sqlite-closer", daemon=True).start()
    else:
        engine.close()


_URL_OPTIONS = {"synchronous": str, "busy_timeout": float, "lock_timeout": float, "readers": int}


def _url_options(query: str, url: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, values in urllib.parse.parse_qs(query, keep_blank_values=True).items():
        kind = _URL_OPTIONS.get(name)
        if kind is None:
            known = ", ".join(sorted(_URL_OPTIONS))
            raise UserError(f"unknown option {name!r} in the store URL {url!r}: use {known}")
        try:
            options[name] = kind(values[-1])
        except ValueError:
            raise UserError(
                f"option {name}={values[-1]!r} in the store URL {url!r} is not a {kind.__name__}"
            ) from None
    return options


class SQLiteSession(StoreSession):
    """A conversation history stored in SQLite.

    ``SQLiteSession("user_123", "conversations.db")`` keeps it in a file (many sessions per
    file); ``SQLiteSession("conversation_123")`` in a private in-memory database. Pass
    ``store=`` to use a :class:`SQLiteStore` you manage. Implements the whole
    :class:`~threadline.sessions.ThreadlineSession` contract.

    A file written by the OpenAI Agents SDK's ``SQLiteSession`` is adopted the first time
    threadline opens it (see :class:`SQLiteStore`); ``sessions_table`` / ``messages_table``
    name the SDK's tables when it was given other names.
    """

    store: SQLiteStore

    def __init__(
        self,
        session_id: str,
        db_path: str | Path = ":memory:",
        *,
        session_settings: SessionSettings | None = None,
        store: SQLiteStore | None = None,
        synchronous: str = "FULL",
        sessions_table: str | None = None,
        messages_table: str | None = None,
    ) -> None:
        owns = store is None
        tables = _sdk_tables(sessions_table, messages_table)
        if store is not None:
            if not isinstance(store, SQLiteStore):
                raise UserError(f"store must be a SQLiteStore, got {type(store).__name__}")
            if db_path != ":memory:" and _resolve_path(db_path) != store.db_path:
                raise UserError(
                    f"db_path {str(db_path)!r} does not match the store's {store.db_path!r}: "
                    "pass one or the other"
                )
            if tables != DEFAULT_TABLES and tables != store.sdk_tables:
                raise UserError(
                    "sessions_table / messages_table belong to the store: pass them to "
                    "SQLiteStore(..., sdk_tables=...) instead"
                )
        elif _resolve_path(db_path) == ":memory:":
            store = SQLiteStore(":memory:", synchronous=synchronous)
            store._users = 1
        else:
            store = SQLiteStore._shared(db_path, synchronous, tables)
        try:
            super().__init__(store, session_id, session_settings=session_settings)
        except BaseException:
            if owns:
                store._release_user()
            raise
        self._owns_store = owns
        self.db_path = store.db_path

    def _bound(self) -> None:
        self._owns_store = False
        self.db_path = self.store.db_path

    def __repr__(self) -> str:
        return f"SQLiteSession({self.session_id!r}, {self.db_path!r})"

    @property
    def _engine(self) -> SQLiteEngine:
        return self.store._engine

    def close(self) -> None:
        """Close this handle (later calls raise :class:`~threadline.errors.SessionClosedError`,
        also a ``RuntimeError``); the store closes with its last constructor-made handle.

        Handles from :meth:`SQLiteStore.session` leave closing the store to its owner.
        """
        if self._handle_closed:
            return
        self._handle_closed = True
        if self._owns_store:
            self.store._release_user()


class SQLiteStore(Store):
    """One SQLite database of sessions, with the connections and threads that serve it.

    * ``db_path`` — a file (created ``0600`` when new) or ``":memory:"``.
    * ``synchronous`` — ``"FULL"`` (default: an acknowledged write survives power loss),
      ``"NORMAL"`` (faster; a power cut may lose the latest writes, never corrupts), ``"EXTRA"``
      or ``"OFF"``.
    * ``busy_timeout`` — seconds SQLite itself waits on another process's lock per attempt.
    * ``lock_timeout`` — seconds a write keeps retrying a locked database before it fails.
    * ``readers`` — reader threads (each with one connection) for a file database.
    * ``codec`` — the item codec (default :class:`~threadline.sessions.JsonCodec`).
    * ``sdk_tables`` — the OpenAI Agents SDK's ``(sessions_table, messages_table)``;
      ``adopt_sdk=False`` leaves them alone when the schema is created.

    The schema is created or migrated on first use (or by :meth:`setup`). When a file written
    by the OpenAI Agents SDK is opened for the first time, its sessions are copied into
    threadline's schema in the same transaction (one warning line says so; the SDK's tables are
    left untouched); :meth:`import_sdk` does it explicitly. Close the store
    with :meth:`close` or :meth:`aclose` (or use it as an ``async with`` block) when done;
    sessions of a closed store raise :class:`~threadline.errors.SessionError`.
    """

    session_class: ClassVar[type[StoreSession]] = SQLiteSession

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        lock_timeout: float = 60.0,
        readers: int = 4,
        codec: ItemCodec | None = None,
        sdk_tables: tuple[str, str] = DEFAULT_TABLES,
        adopt_sdk: bool = True,
    ) -> None:
        path = _resolve_path(db_path)
        self.sdk_tables = _sdk_tables(*sdk_tables)
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in _SYNCHRONOUS:
            raise UserError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        if isinstance(readers, bool) or not isinstance(readers, int) or readers < 1:
            raise UserError(f"readers must be an integer >= 1, got {readers!r}")
        if codec is not None and not isinstance(codec, ItemCodec):
            raise UserError(f"codec must be an ItemCodec, got {type(codec).__name__}")
        self._engine = SQLiteEngine(
            path,
            synchronous=mode,
            busy_timeout=_positive("busy_timeout", busy_timeout),
            lock_timeout=_positive("lock_timeout", lock_timeout),
            readers=readers,
        )
        super().__init__(SQLiteBackend(self._engine, codec or JsonCodec()))
        # A plain function of values (no reference back to the store, which must stay
        # collectable so that its finaliser closes the engine).
        if adopt_sdk:
            self._engine.on_create = functools.partial(
                _adopt_sdk, self.sdk_tables, self.codec, self._engine.where
            )
        self._engine.sdk_tables = SDK_TABLES | set(self.sdk_tables)
        self._users = 0
        self._registry_key: tuple[str, ...] | None = None
        # A store dropped without close() (SQLiteSession("id") is used that way) still closes
        # its connections: no "unclosed database" warning, no connection left to the GC.
        weakref.finalize(self, _close_engine, self._engine)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        """A store from a ``sqlite:`` URL (see :func:`~threadline.sessions.open_store`)."""
        parts = urllib.parse.urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise UserError(
                f"a sqlite:// URL names a file, not a host: write sqlite:///relative.db or "
                f"sqlite:////absolute/path.db, got {url!r}"
            )
        path = urllib.parse.unquote(parts.path)
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise UserError(f"the store URL {url!r} names no database file")
        return cls(path, **{**_url_options(parts.query, url), **options})

    async def import_sdk(
        self, sdk_tables: tuple[str, str] = DEFAULT_TABLES
    ) -> tuple[int, int, list[str]]:
        """Copy the OpenAI Agents SDK's sessions in this file into threadline's schema now.

        Sessions threadline already holds are skipped. Returns ``(sessions, items, skipped
        ids)``; a file without the SDK's tables is a :class:`~threadline.errors.UserError`.
        """
        tables = _sdk_tables(*sdk_tables)
        where = self._engine.where

        def run(conn: Any) -> tuple[int, int, list[str]]:
            if find_sdk_tables(conn, tables) is None:
                raise UserError(
                    f"{where} has no OpenAI Agents SDK tables {tables[0]} / {tables[1]}"
                )
            return import_sdk_sessions(conn, self.codec, tables, where)

        self._check_open()
        result: tuple[int, int, list[str]] = await self._engine.write(run)
        return result

    @classmethod
    def shared(cls, db_path: str | Path, *, synchronous: str = "FULL") -> SQLiteStore:
        """The process-wide store for the file ``db_path`` (created on first use).

        Every ``SQLiteSession(session_id, db_path)`` of this process with the same file and
        ``synchronous`` setting uses it. It stays open until :meth:`close` is called.
        """
        return cls._shared(db_path, synchronous)

    @classmethod
    def _shared(
        cls, db_path: str | Path, synchronous: str, sdk_tables: tuple[str, str] = DEFAULT_TABLES
    ) -> SQLiteStore:
        path = _resolve_path(db_path)
        if path == ":memory:":
            raise UserError(
                "':memory:' databases are private: use SQLiteStore() instead of shared()"
            )
        mode = synchronous.upper() if isinstance(synchronous, str) else str(synchronous)
        key = (path, mode, *sdk_tables)
        with _registry_lock:
            store = _registry.get(key)
            if store is None or store.closed or store._engine._pid != os.getpid():
                store = cls(path, synchronous=synchronous, sdk_tables=sdk_tables)
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
        """Whether the store was closed (its engine is: every way of closing closes that)."""
        return self._engine.closed

    def __repr__(self) -> str:
        return f"SQLiteStore({self.db_path!r})"

    def session(
        self, session_id: str, *, session_settings: SessionSettings | None = None
    ) -> SQLiteSession:
        """A session handle on this store (cheap: no connection of its own)."""
        handle: SQLiteSession = super().session(session_id, session_settings=session_settings)
        return handle

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

    def _release_user(self) -> None:
        with _registry_lock:
            self._users -= 1
            if self._users > 0:
                return
            if self._registry_key is not None and _registry.get(self._registry_key) is self:
                del _registry[self._registry_key]
        self._engine.close()
