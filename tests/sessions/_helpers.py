"""Small helpers of the SQLite tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from threadline.items import user_message


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the test database, outside threadline, closed on exit."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def history(count: int) -> list[dict[str, Any]]:
    """``count`` distinct user messages."""
    return [user_message(f"m{number}") for number in range(count)]
