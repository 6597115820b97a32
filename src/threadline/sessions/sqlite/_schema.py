"""The SQLite schema and its migrations.

``MIGRATIONS`` is append-only: entry ``i`` takes a database from version ``i`` to ``i + 1``,
and the version lives in ``PRAGMA user_version``. Never edit a released entry; add a new one.

Layout (version 1):

* ``threadline_sessions`` — one row per session: a small integer ``sid`` standing for the
  session id (which may be any string and is only ever bound as data), the item count and
  timestamps (Unix seconds).
* ``threadline_items`` — one row per item, clustered by ``(sid, seq)`` (``WITHOUT ROWID``),
  so one session's history is one contiguous range of the B-tree. ``seq`` is assigned inside
  the write transaction; ``kind``, ``call_id`` and ``tokens`` let a window be chosen without
  decoding ``data`` (the item's compact JSON).
* ``threadline_leases`` — the cross-process writer lease: holder token and expiry per session.
"""

from __future__ import annotations

import sqlite3

from ...errors import SchemaVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE threadline_sessions (
            sid INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL UNIQUE,
            item_count INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE threadline_items (
            sid INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            call_id TEXT,
            tokens INTEGER NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (sid, seq)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE threadline_leases (
            session_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the database up to :data:`SCHEMA_VERSION` in one write transaction.

    Raises :class:`SchemaVersionError` when the database is newer than this code. The caller
    retries on ``database is locked``.
    """
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the session store {where} has schema version {version}, but this threadline "
                f"only knows up to version {SCHEMA_VERSION}: upgrade threadline to open it"
            )
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
