"""SQLite-specific behaviour: the file, the schema, corrupt rows, stores and handles, scans."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from threadline.errors import (
    CorruptItemError,
    SchemaVersionError,
    SessionError,
    UserError,
)
from threadline.items import user_message
from threadline.sessions import SQLiteSession, SQLiteStore
from threadline.sessions.sqlite._schema import SCHEMA_VERSION

from ._helpers import history, raw

# ---------------------------------------------------------------------- the file


async def test_new_file_is_private_and_in_wal_mode(store: SQLiteStore, db: Path) -> None:
    await store.session("s").add_items(history(3))
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(f"{db}-wal").st_mode) == 0o600
    with raw(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.parametrize("mode, level", [("FULL", 2), ("normal", 1)])
async def test_synchronous_setting(db: Path, mode: str, level: int) -> None:
    store = SQLiteStore(db, synchronous=mode)
    try:
        got = await store._engine.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert got == level
    finally:
        store.close()


async def test_reopening_keeps_history_and_schema(db: Path) -> None:
    first = SQLiteStore(db)
    await first.session("s").add_items(history(4))
    first.close()
    second = SQLiteStore(db)
    try:
        assert await second.session("s").get_items() == history(4)
    finally:
        second.close()


async def test_newer_schema_is_refused(db: Path) -> None:
    with raw(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SQLiteStore(db)
    try:
        session = store.session("s")
        with pytest.raises(SchemaVersionError, match="upgrade threadline"):
            await session.add_items(history(1))
        with pytest.raises(SchemaVersionError):
            await session.get_items()
    finally:
        store.close()
    with raw(db) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


async def test_not_a_database_is_a_session_error(db: Path) -> None:
    with open(db, "wb") as file:  # noqa: ASYNC230
        file.write(b"this is not a database file at all" * 100)
    store = SQLiteStore(db)
    try:
        with pytest.raises(SessionError, match="failed"):
            await store.session("s").get_items()
    finally:
        store.close()


async def test_missing_directory_is_a_session_error(tmp_path: Path) -> None:
    session = SQLiteSession("s", tmp_path / "nowhere" / "x.db")
    try:
        with pytest.raises(SessionError, match="directory"):
            await session.add_items(history(1))
    finally:
        session.close()


# ---------------------------------------------------------------------- corrupt rows


@pytest.mark.parametrize(
    "data, reason",
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "not an object"),
        ('"text"', "not an object"),
        ("1,2", "invalid JSON"),
        ('{"a": 1},{"b": 2}', "invalid JSON"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
async def test_corrupt_row_is_reported_not_skipped(
    store: SQLiteStore, db: Path, data: object, reason: str
) -> None:
    session = store.session("victim")
    await session.add_items(history(5))
    with raw(db) as conn:
        conn.execute("UPDATE threadline_items SET data = ? WHERE seq = 1", (data,))
    for read in (
        session.get_items(),
        session.get_items(limit=4),
        session.get_window(max_items=4),
    ):
        with pytest.raises(CorruptItemError, match=reason) as caught:
            await read
        assert caught.value.session_id == "victim"
        assert caught.value.position == 1
    assert await session.get_items(limit=3) == history(5)[2:]


async def test_corrupt_row_in_a_long_history(store: SQLiteStore, db: Path) -> None:
    session = store.session("long")
    await session.add_items(history(2500))
    with raw(db) as conn:
        conn.execute("UPDATE threadline_items SET data = '{' WHERE seq = 1234")
    with pytest.raises(CorruptItemError, match=r"'long'.*position 1234"):
        await session.get_items()


async def test_pop_leaves_a_corrupt_row_in_place(store: SQLiteStore, db: Path) -> None:
    session = store.session("pop")
    await session.add_items(history(2))
    with raw(db) as conn:
        conn.execute("UPDATE threadline_items SET data = 'oops' WHERE seq = 1")
    with pytest.raises(CorruptItemError):
        await session.pop_item()
    with raw(db) as conn:
        assert conn.execute("SELECT count(*) FROM threadline_items").fetchone()[0] == 2


# ---------------------------------------------------------------------- stores and handles


async def test_handles_on_one_file_share_one_store(db: Path, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    first = SQLiteSession("a", db)
    second = SQLiteSession("b", "sessions.db")
    faster = SQLiteSession("c", db, synchronous="NORMAL")
    try:
        assert first.store is second.store
        assert faster.store is not first.store
        await first.add_items(history(1))
        assert await SQLiteSession("a", db, store=first.store).get_items() == history(1)
    finally:
        for session in (first, second, faster):
            session.close()
    assert first.store.closed
    again = SQLiteSession("a", db)
    try:
        assert again.store is not first.store
        assert await again.get_items() == history(1)
    finally:
        again.close()


async def test_memory_sessions_are_private() -> None:
    first, second = SQLiteSession("same"), SQLiteSession("same")
    try:
        await first.add_items(history(2))
        assert await second.get_items() == []
        assert first.db_path == ":memory:"
    finally:
        first.close()
        second.close()


async def test_closed_store_raises(db: Path) -> None:
    store = SQLiteStore(db)
    session = store.session("s")
    await session.add_items(history(1))
    await store.aclose()
    with pytest.raises(SessionError, match="closed"):
        await session.add_items(history(1))
    with pytest.raises(SessionError, match="closed"):
        await session.get_items()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"synchronous": "SOMETIMES"}, "synchronous"),
        ({"readers": 0}, "readers"),
        ({"busy_timeout": 0}, "busy_timeout"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"db_path": ""}, "db_path"),
    ],
)
def test_bad_store_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(UserError, match=field):
        SQLiteStore(**kwargs)


def test_bad_session_arguments(store: SQLiteStore, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not match"):
        SQLiteSession("s", tmp_path / "other.db", store=store)
    with pytest.raises(UserError, match="SQLiteStore"):
        SQLiteSession("s", store="nope")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="private"):
        SQLiteStore.shared(":memory:")


async def test_fork_into_a_non_empty_session_is_refused(store: SQLiteStore) -> None:
    source, target = store.session("source"), store.session("target")
    await source.add_items(history(3))
    await target.add_items(history(1))
    with pytest.raises(UserError, match="already holds 1 items"):
        await source.fork("target")
    assert await target.get_items() == history(1)
    await target.clear_session()
    child = await source.fork("target", at=2)
    assert child.store is store
    assert await target.get_items() == history(2)


# ---------------------------------------------------------------------- reads are range scans


def test_reads_are_primary_key_range_scans(db: Path) -> None:
    from threadline.sessions.sqlite import _ops as ops

    async def create() -> None:
        store = SQLiteStore(db)
        await store.setup()
        store.close()

    asyncio.run(create())
    plans = []
    with raw(db) as conn:
        for sql, params in [
            (ops._NEWEST_BY_ID, ("s", 20)),
            (ops._NEWEST_CHUNK, (1, 10, 0, 20)),
            (ops._METAS, (1, 0, 1 << 62)),
            (ops._OLDEST_CHUNK, (1, -1, 1 << 62, 20)),
        ]:
            plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            plans.append(plan)
    for plan in plans:
        assert "SEARCH threadline_items USING PRIMARY KEY (sid=?" in plan, plan
        assert "SCAN threadline_items" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan


# ---------------------------------------------------------------------- the search index


async def test_the_search_index_catches_up_in_batches(store: SQLiteStore, db: Path) -> None:
    session = store.session("many")
    for _ in range(12):
        await session.add_items(history(100))
    await asyncio.sleep(0.6)  # the catch-up runs in steps at the writer's quiet moments
    with raw(db) as conn:
        (indexed,) = conn.execute(
            "SELECT indexed FROM threadline_sessions WHERE session_id = 'many'"
        ).fetchone()
    assert indexed == 1200  # caught up in the background, with no search yet
    await store.session("other").add_items(history(3))
    await session.pop_item()
    hits = await store.search("m99", limit=50)  # a search indexes whatever is still behind
    assert sorted((h.session_id, h.position) for h in hits)[:2] == [("many", 99), ("many", 199)]
    assert ("many", 1199) not in {(h.session_id, h.position) for h in hits}  # popped
    m2 = await store.search("m2", limit=50)
    assert sorted(h.position for h in m2 if h.session_id == "many") == list(range(2, 1200, 100))
    with raw(db) as conn:
        behind = conn.execute(
            "SELECT count(*) FROM threadline_sessions WHERE indexed < item_count"
        ).fetchone()[0]
        assert behind == 0
        conn.execute("INSERT INTO threadline_fts (threadline_fts) VALUES ('integrity-check')")
        found = conn.execute("SELECT count(*) FROM threadline_fts WHERE threadline_fts MATCH 'm5'")
        assert found.fetchone()[0] == 12


async def test_a_damaged_indexed_row_is_never_a_hit(store: SQLiteStore, db: Path) -> None:
    session = store.session("damaged")
    await session.add_items([{"role": "user", "content": "alpha beta"}, *history(2)])
    assert len(await store.search("alpha")) == 1
    with raw(db) as conn:  # behind the store's back: the indexed text no longer matches
        conn.execute(
            "UPDATE threadline_items SET data = ? WHERE seq = 0",
            ('{"role": "user", "content": "gamma"}',),
        )
    assert await store.search("alpha") == []
    await session.clear_session()  # removing it cannot recompute the old text: still no hit
    await session.add_items([{"role": "user", "content": "delta"}])
    assert await store.search("alpha") == []
    assert [h.position for h in await store.search("delta")] == [0]


# ---------------------------------------------------------------------- another application's file


@pytest.mark.parametrize("version", [0, 1, SCHEMA_VERSION, 7])
async def test_another_applications_database_is_refused(db: Path, version: int) -> None:
    with raw(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
        conn.execute(f"PRAGMA user_version = {version}")
    store = SQLiteStore(db)
    try:
        with pytest.raises(SessionError, match=r"not a threadline database") as caught:
            await store.session("s").add_items(history(1))
        assert not isinstance(caught.value, SchemaVersionError)
        message = str(caught.value)
        assert str(db) in message and "'customers'" in message
        assert f"user_version {version}" in message
        with pytest.raises(SessionError, match="not a threadline database"):
            await store.session("s").get_items()
    finally:
        store.close()
    with raw(db) as conn:  # untouched
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["customers"]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        assert conn.execute("SELECT name FROM customers").fetchall() == [("Ada",)]


async def test_an_agents_sdk_database_is_still_opened(db: Path) -> None:
    with raw(db) as conn:  # the OpenAI Agents SDK's SQLiteSession schema
        conn.execute(
            "CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, created_at TIMESTAMP, "
            "updated_at TIMESTAMP)"
        )
        conn.execute(
            "CREATE TABLE agent_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT "
            "NOT NULL, message_data TEXT NOT NULL, created_at TIMESTAMP)"
        )
        conn.execute("CREATE INDEX idx_agent_messages_session_id ON agent_messages (session_id)")
    store = SQLiteStore(db)
    try:
        await store.session("s").add_items(history(2))
        assert await store.session("s").get_items() == history(2)
    finally:
        store.close()
    with raw(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"agent_sessions", "agent_messages", "threadline_items"} <= names


# ---------------------------------------------------------------------- WAL checkpoints


async def test_the_writer_checkpoints_the_wal_when_idle(tmp_path: Path) -> None:
    """A commit does not copy the log into the database file (below 64 MiB of log); once
    500 rows changed, a reader thread does it at the writer's next quiet moment, so the data
    reaches the main file soon."""
    path = tmp_path / "ck.db"
    store = SQLiteStore(path)
    await store.setup()
    empty = path.stat().st_size
    session = store.session("big")
    await session.add_items([user_message("x" * 1000) for _ in range(600)])  # ~600 kB
    for _ in range(100):
        if path.stat().st_size > empty + 500_000:
            break
        await asyncio.sleep(0.05)
    assert path.stat().st_size > empty + 500_000
    assert len(await session.get_items()) == 600
    await store.aclose()
