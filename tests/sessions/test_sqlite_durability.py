"""Durable writes commit at the configured level; lease bookkeeping skips the fsync; a
"soon" write (a run's input) commits without waiting for one and the writer fsyncs the log
right after."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

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


class _Syncs:
    """Records, in order, the jobs the writer runs and the files it fsyncs itself."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[str] = []
        real = getattr(os, "fdatasync", os.fsync)

        def recorded(fd: int) -> None:
            self.events.append("sync " + os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
            real(fd)

        monkeypatch.setattr(os, "fdatasync", recorded, raising=False)
        monkeypatch.setattr(os, "fsync", recorded)

    def job(self, name: str) -> Any:
        def run(conn: sqlite3.Connection) -> int:
            self.events.append(name)
            return _level(conn)

        return run


@contextlib.asynccontextmanager
async def _opened(path: Path, **options: Any) -> AsyncIterator[Any]:
    """The engine of a SQLite store at ``path``, its file open (first write made); closed after."""
    store = SQLiteStore(path, **options)
    engine = store.session("s")._engine
    try:
        await engine.write(_level)
        yield engine
    finally:
        store.close()


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="reads fsync'd paths from /proc/self/fd (Linux)"
)


@needs_proc
async def test_a_soon_write_commits_without_fsync_then_the_writer_syncs_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "d.db")
    engine = store.session("s")._engine
    try:
        await engine.write(_level)  # open the file first
        syncs = _Syncs(monkeypatch)
        assert await engine.write(syncs.job("input"), durable="soon") == NORMAL
        assert await engine.write(syncs.job("lease"), durable=False) == NORMAL
        # the log is on disk before the writer takes its next write, whatever that is
        assert syncs.events == ["input", "sync d.db-wal", "lease"]
        assert await engine.write(syncs.job("reply")) == FULL
        assert syncs.events[-1] == "reply"  # SQLite's own fsync, not the writer's
    finally:
        store.close()


@needs_proc
async def test_a_soon_write_grouped_with_a_durable_one_needs_no_extra_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _opened(tmp_path / "d.db") as engine:
        syncs = _Syncs(monkeypatch)
        gate = threading.Event()
        blocker = engine.submit_write(lambda conn: gate.wait(10), durable=False)
        await asyncio.sleep(0.05)  # the writer is inside the blocker's group now
        soon = engine.submit_write(syncs.job("input"), durable="soon")
        durable = engine.submit_write(syncs.job("reply"))
        gate.set()
        await asyncio.wrap_future(blocker)
        assert await asyncio.wrap_future(soon) == FULL  # one group: the durable job's level
        assert await asyncio.wrap_future(durable) == FULL
        await engine.write(syncs.job("after"), durable=False)
        assert syncs.events == ["input", "reply", "after"]


@needs_proc
async def test_soon_writes_on_a_normal_store_are_never_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _opened(tmp_path / "d.db", synchronous="NORMAL") as engine:
        syncs = _Syncs(monkeypatch)
        assert await engine.write(syncs.job("input"), durable="soon") == NORMAL
        await engine.write(syncs.job("next"), durable=False)
        assert syncs.events == ["input", "next"]


@needs_proc
async def test_closing_the_store_after_a_soon_write_syncs_it_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "d.db")
    engine = store.session("s")._engine
    await engine.write(_level)
    syncs = _Syncs(monkeypatch)
    await engine.write(syncs.job("input"), durable="soon")
    store.close()
    assert syncs.events[:2] == ["input", "sync d.db-wal"]


async def test_a_failing_log_sync_is_logged_and_the_next_durable_commit_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with _opened(tmp_path / "d.db") as engine:

        def broken(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fdatasync", broken, raising=False)
        monkeypatch.setattr(os, "fsync", broken)
        with caplog.at_level(logging.WARNING, logger="threadline.sessions"):
            assert await engine.write(_level, durable="soon") == NORMAL
            await engine.write(_level, durable=False)
        assert "flushing the log of" in caplog.text and "Input/output error" in caplog.text
        monkeypatch.undo()
        assert await engine.write(_level) == FULL


async def test_a_run_input_is_committed_before_the_model_is_called_and_on_disk_after(
    tmp_path: Path,
) -> None:
    from threadline import Agent, Runner
    from threadline.testing import ScriptedModel

    path = tmp_path / "d.db"
    store = SQLiteStore(path)
    seen: list[list[str]] = []

    def reply(request: Any) -> str:
        # another connection (another process would see the same) finds the input stored
        with sqlite3.connect(path) as other:
            seen.append([row[0] for row in other.execute("SELECT data FROM threadline_items")])
        return "Noted."

    try:
        await Runner.run(
            Agent(name="A", model=ScriptedModel([reply])), "remember 42", session=store.session("s")
        )
    finally:
        store.close()
    assert len(seen) == 1 and len(seen[0]) == 1 and "remember 42" in seen[0][0]
