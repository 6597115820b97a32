"""The one list of backend configurations every backend-parametrised test runs on.

Each :class:`Backend` opens stores on a test's own storage: ``factory(tmp_path)`` returns a
function that opens a new store object on the same storage each time it is called (as another
process would). Add a backend here and the conformance suite, the runner's session tests and
the CLI's store tests all run on it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from threadline.sessions import InMemoryDatabase, InMemoryStore, SQLiteStore, Store, StoreBackend
from threadline.sessions.memory import InMemoryBackend

from .services import require_service

StoreFactory = Callable[[], Any]


class ScrambleCodec:
    """A codec that keeps no plaintext in the store (a stand-in for encryption at rest)."""

    name = "scramble"
    plain_json = False
    searchable = False

    def seal(self, session_id: str, data: str) -> bytes:
        return b"S1:" + base64.b85encode(zlib.compress(data.encode("utf-8")))

    def open(self, session_id: str, payload: str | bytes) -> str:
        raw = payload.encode("utf-8") if isinstance(payload, str) else payload
        if not raw.startswith(b"S1:"):
            raise ValueError("not a scrambled payload")
        try:
            return zlib.decompress(base64.b85decode(raw[3:])).decode("utf-8")
        except (zlib.error, ValueError) as exc:
            raise ValueError(f"damaged payload: {exc}") from None


class LoopBoundBackend(InMemoryBackend):
    """An in-memory backend whose "connection" belongs to the event loop that first used it.

    Like an asyncpg pool or a ``redis.asyncio`` client: each call awaits an ``asyncio.Lock``
    made on first use, and a call from any other event loop raises ``RuntimeError``. A
    conformance suite that moved a session between loops or threads fails on it.
    """

    def __init__(self, database: InMemoryDatabase) -> None:
        super().__init__(database, _default_codec())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def where(self) -> str:
        return "a loop-bound test store"

    # The optional methods a backend may leave out run their generic defaults here (built on
    # the required methods above), so every test on this configuration covers them.
    list_sessions_with_record = StoreBackend.list_sessions_with_record
    user_positions = StoreBackend.user_positions
    read_oldest = StoreBackend.read_oldest
    read_json = StoreBackend.read_json
    fork_resealed = StoreBackend.fork_resealed

    async def _io(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop, self._lock = loop, asyncio.Lock()
        elif loop is not self._loop:
            raise RuntimeError(
                "this store's connection is attached to a different event loop (as asyncpg "
                "and redis.asyncio connections are)"
            )
        assert self._lock is not None
        await asyncio.sleep(0)  # a real round trip yields to the loop
        return self._lock


def _bind_to_loop(name: str) -> None:
    inner = getattr(InMemoryBackend, name)

    async def bound(self: LoopBoundBackend, *args: Any, **kwargs: Any) -> Any:
        async with await self._io():
            return await inner(self, *args, **kwargs)

    bound.__name__ = name
    setattr(LoopBoundBackend, name, bound)


for _name in (
    "close",
    "append",
    "read",
    "window",
    "window_since",
    "pop",
    "pop_turn",
    "replace",
    "clear",
    "fork",
    "delete",
    "list_sessions",
    "search",
    "stats",
    "lease_acquire",
    "lease_renew",
    "lease_release",
    "get_record",
    "list_records",
    "put_records",
):
    _bind_to_loop(_name)


def _default_codec() -> Any:
    from threadline.sessions import JsonCodec

    return JsonCodec()


# ---------------------------------------------------------------------- hooks for bad data


async def _corrupt_sqlite(store: SQLiteStore, session_id: str, position: int) -> None:
    def corrupt(conn: Any) -> None:
        conn.execute(
            "UPDATE threadline_items SET data = 'not json' WHERE seq = ? AND sid = "
            "(SELECT sid FROM threadline_sessions WHERE session_id = ?)",
            (position, session_id),
        )

    await store._engine.write(corrupt)


async def _newer_sqlite(store: SQLiteStore) -> None:
    await store._engine.write(lambda conn: conn.execute("PRAGMA user_version = 99"))


async def _corrupt_memory(store: Store, session_id: str, position: int) -> None:
    database = store._backend.db  # type: ignore[attr-defined]
    rows = database.sessions[session_id].rows
    rows[position] = rows[position]._replace(data="not json")


@dataclass(frozen=True)
class Backend:
    """One backend configuration (see the module docstring)."""

    name: str
    factory: Callable[[Path], StoreFactory]
    loop_bound: bool = False
    """Its stores may only be used from the event loop that first used them."""
    corrupt_item: Callable[..., Any] | None = None
    make_schema_newer: Callable[..., Any] | None = None
    marks: tuple[Any, ...] = field(default_factory=tuple)

    @property
    def param(self) -> Any:
        """This configuration as a ``pytest.param`` (with its marks and id)."""
        return pytest.param(self, id=self.name, marks=self.marks)


def _memory(tmp_path: Path) -> StoreFactory:
    database = InMemoryDatabase()
    return lambda: InMemoryStore(database)


def _loop_bound(tmp_path: Path) -> StoreFactory:
    database = InMemoryDatabase()
    return lambda: Store(LoopBoundBackend(database))


def _sqlite_memory(tmp_path: Path) -> StoreFactory:
    return lambda: SQLiteStore(":memory:")


def _sqlite_file(tmp_path: Path) -> StoreFactory:
    return lambda: SQLiteStore(tmp_path / "sessions.db")


POSTGRES_HOST = os.environ.get("THREADLINE_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("THREADLINE_TEST_PG_PORT", "5432"))
POSTGRES_URL = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"
"""The test database (trust auth); each test store gets a schema of its own in it."""

POSTGRES_SCHEMAS: list[str] = []
"""Schemas made by tests and not dropped yet (tests/conftest.py drops them after each test)."""


def require_postgres() -> None:
    """Skip (or fail, with ``THREADLINE_REQUIRE_SERVICES=1``) without the test server."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)


def new_postgres_schema() -> str:
    """A fresh schema name, dropped after the test."""
    require_postgres()
    schema = f"tlt_{uuid.uuid4().hex[:16]}"
    POSTGRES_SCHEMAS.append(schema)
    return schema


def _postgres(tmp_path: Path) -> StoreFactory:
    from threadline.sessions.postgres import PostgresStore

    schema = new_postgres_schema()
    return lambda: PostgresStore(POSTGRES_URL, schema=schema, create=True, pool_size=4)


def _postgres_encrypted(tmp_path: Path) -> StoreFactory:
    from threadline.sessions.postgres import PostgresStore

    schema = new_postgres_schema()
    return lambda: PostgresStore(
        POSTGRES_URL, schema=schema, create=True, pool_size=4, codec=_encryption_codec()
    )


async def postgres_execute(store: Store, sql: str, *args: Any) -> None:
    """Run one statement on a PostgreSQL test store's database, bypassing the store."""
    pool = await store._backend.pools.pool()  # type: ignore[attr-defined]
    async with pool.acquire() as conn:
        await conn.execute(sql, *args)


async def _corrupt_postgres(store: Store, session_id: str, position: int) -> None:
    await postgres_execute(
        store,
        "UPDATE threadline_items SET data = 'not json' WHERE skey = $1 AND seq = $2",
        hashlib.sha256(session_id.encode("utf-8")).digest(),
        position,
    )


async def _newer_postgres(store: Store) -> None:
    await postgres_execute(
        store, "INSERT INTO threadline_migrations (version, description) VALUES (99, 'future')"
    )


TEST_KEY = bytes(range(32))
"""The master key of the encrypted configurations (tests only)."""


def _encryption_codec() -> Any:
    from threadline.sessions import EncryptionCodec

    return EncryptionCodec(TEST_KEY, key_id="test-1")


def _memory_encrypted(tmp_path: Path) -> StoreFactory:
    database = InMemoryDatabase()
    return lambda: InMemoryStore(database, codec=_encryption_codec())


def _sqlite_encrypted(tmp_path: Path) -> StoreFactory:
    return lambda: SQLiteStore(tmp_path / "encrypted.db", codec=_encryption_codec())


def _sqlite_scrambled(tmp_path: Path) -> StoreFactory:
    return lambda: SQLiteStore(tmp_path / "scrambled.db", codec=ScrambleCodec())


BACKENDS: list[Backend] = [
    Backend("memory", _memory, corrupt_item=_corrupt_memory),
    Backend("loop-bound", _loop_bound, loop_bound=True, corrupt_item=_corrupt_memory),
    Backend("sqlite-memory", _sqlite_memory, corrupt_item=_corrupt_sqlite),
    Backend(
        "sqlite-file", _sqlite_file, corrupt_item=_corrupt_sqlite, make_schema_newer=_newer_sqlite
    ),
    Backend(
        "sqlite-file-scrambled",
        _sqlite_scrambled,
        corrupt_item=_corrupt_sqlite,
        make_schema_newer=_newer_sqlite,
    ),
    Backend("memory-encrypted", _memory_encrypted, corrupt_item=_corrupt_memory),
    Backend(
        "sqlite-file-encrypted",
        _sqlite_encrypted,
        corrupt_item=_corrupt_sqlite,
        make_schema_newer=_newer_sqlite,
    ),
    Backend(
        "postgres",
        _postgres,
        corrupt_item=_corrupt_postgres,
        make_schema_newer=_newer_postgres,
        marks=(pytest.mark.postgres,),
    ),
    Backend(
        "postgres-encrypted",
        _postgres_encrypted,
        corrupt_item=_corrupt_postgres,
        make_schema_newer=_newer_postgres,
        marks=(pytest.mark.postgres,),
    ),
]
"""Every backend configuration; backend-parametrised tests use ``[b.param for b in BACKENDS]``."""

BACKEND_PARAMS = [backend.param for backend in BACKENDS]
