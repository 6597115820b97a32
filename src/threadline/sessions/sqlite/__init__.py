"""The embedded default backend: :class:`SQLiteStore` and :class:`SQLiteSession`."""

from __future__ import annotations

from .store import SQLiteSession, SQLiteStore

__all__ = ["SQLiteSession", "SQLiteStore"]
