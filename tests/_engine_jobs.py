"""Log every job a SQLite store's engine runs, for the tests that pin a turn's store jobs."""

from __future__ import annotations

from typing import Any

import pytest

from threadline.sessions.sqlite._engine import SQLiteEngine


def _name(fn: Any) -> str:
    return str(getattr(getattr(fn, "func", fn), "__name__", repr(fn)))


def log_engine_jobs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Patch :class:`SQLiteEngine` so each read and write appends ``(kind, job name)`` to the
    returned list: kind is ``read``, or the write's ``durable`` (``True``: waits for its
    fsync; ``"soon"``: fsynced right after; ``False``: bookkeeping)."""
    log: list[tuple[str, str]] = []
    read, write = SQLiteEngine.read, SQLiteEngine.write

    async def logged_read(self: SQLiteEngine, fn: Any, **options: Any) -> Any:
        log.append(("read", _name(fn)))
        return await read(self, fn, **options)

    async def logged_write(self: SQLiteEngine, fn: Any, *, durable: Any = True) -> Any:
        log.append((str(durable), _name(fn)))
        return await write(self, fn, durable=durable)

    monkeypatch.setattr(SQLiteEngine, "read", logged_read)
    monkeypatch.setattr(SQLiteEngine, "write", logged_write)
    return log
