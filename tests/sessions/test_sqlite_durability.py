"""Durable writes commit at the configured level; lease bookkeeping skips the fsync."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from threadline.sessions import SQLiteStore

FULL, NORMAL = 2, 1


def _level(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def test_only_non_durable_groups_commit_without_fsync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.db")
    engine = store.session("s")._engine
    try:
        assert await engine.write(_level) == FULL
        non_durable = engine.submit_write(_level, durable=False)
        assert await asyncio.wrap_future(non_durable) == NORMAL
        assert await engine.write(_level) == FULL  # back to the configured level
    finally:
        store.close()


async def test_a_lease_is_bookkeeping_and_items_stay_durable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.db")
    session = store.session("s")
    engine = session._engine
    try:
        async with session.lease():
            assert engine._current_synchronous == "NORMAL"
            await session.add_items([{"role": "user", "content": "hi"}])
            assert engine._current_synchronous == "FULL"
    finally:
        store.close()


async def test_normal_store_never_raises_the_level(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.db", synchronous="NORMAL")
    engine = store.session("s")._engine
    try:
        assert await engine.write(_level) == NORMAL
    finally:
        store.close()
