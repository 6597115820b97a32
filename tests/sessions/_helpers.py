"""Small helpers of the SQLite tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from threadline.items import user_message


def raw(db: Path) -> sqlite3.Connection:
    """A plain connection to the test database, outside threadline."""
    return sqlite3.connect(db, isolation_level=None)


def history(count: int) -> list[dict[str, Any]]:
    """``count`` distinct user messages."""
    return [user_message(f"m{number}") for number in range(count)]
