"""The SQLite schema and its migrations.

``MIGRATIONS`` is append-only: entry ``i`` takes a database from version ``i`` to ``i + 1``,
and the version lives in ``PRAGMA user_version``. Never edit a released entry; add a new one.

Layout (version 4):

* ``threadline_sessions`` — one row per session: a small integer ``sid`` standing for the
  session id (which may be any string and is only ever bound as data), the item count and
  timestamps (Unix seconds). A fork that shares its parent's rows names them: its first
  ``base_count`` items are the rows of session ``base_sid`` below that position (see
  ``_forks.py``; the partial index ``threadline_sessions_base`` finds a session's forks).
* ``threadline_items`` — one row per item, clustered by ``(sid, seq)`` (``WITHOUT ROWID``),
  so one session's history is one contiguous range of the B-tree. ``seq`` is assigned inside
  the write transaction; ``kind``, ``call_id`` and ``tokens`` let a window be chosen without
  decoding ``data`` (the item's compact JSON).
* ``threadline_leases`` — the cross-process writer lease: holder token, expiry and the
  fencing ``epoch`` per session (a released lease keeps its row, so epochs only go up).
* ``threadline_fts`` — the contentless FTS5 search index, keyed ``rid = sid << 32 | seq``;
  ``threadline_sessions.indexed`` counts each session's indexed items and the partial index
  ``threadline_sessions_unindexed`` finds the sessions behind (see ``_search.py``).
  ``threadline_meta`` records the version of the search-text rules.
* ``threadline_sessions_recent`` — the index ``list_sessions`` pages through, newest first.
* ``threadline_records`` — a session's named records (small JSON documents, sealed by the
  codec like items), clustered by ``(sid, key)``.

Version 2 added the lease epoch, the listing index and search (indexing existing items);
version 3 the records table; version 4 forks that share rows (``base_sid``, ``base_count``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ...errors import SchemaVersionError, SessionError
from ..codec import JsonCodec

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

Step = str | Callable[[sqlite3.Connection], None]


def _index_existing_items(conn: sqlite3.Connection) -> None:
    """Index the items written before version 2 (rows that are not JSON objects stay out of
    the index; reading them still reports them as corrupt)."""
    from ._search import catch_up

    catch_up(conn, JsonCodec())


MIGRATIONS: list[tuple[Step, ...]] = [
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
    (
        "ALTER TABLE threadline_leases ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE threadline_sessions ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX threadline_sessions_recent ON threadline_sessions (updated_at, sid)",
        """
        CREATE INDEX threadline_sessions_unindexed ON threadline_sessions (sid)
        WHERE indexed < item_count
        """,
        """
        CREATE VIRTUAL TABLE threadline_fts USING fts5(
            body,
            content = '',
            tokenize = 'unicode61 remove_diacritics 2'
        )
        """,
        """
        CREATE TABLE threadline_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        _index_existing_items,
    ),
    (
        """
        CREATE TABLE threadline_records (
            sid INTEGER NOT NULL,
            key TEXT NOT NULL,
            data NOT NULL,
            PRIMARY KEY (sid, key)
        ) WITHOUT ROWID
        """,
    ),
    (
        "ALTER TABLE threadline_sessions ADD COLUMN base_sid INTEGER",
        "ALTER TABLE threadline_sessions ADD COLUMN base_count INTEGER NOT NULL DEFAULT 0",
        """
        CREATE INDEX threadline_sessions_base ON threadline_sessions (base_sid, base_count)
        WHERE base_sid IS NOT NULL
        """,
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(
    conn: sqlite3.Connection,
    where: str,
    on_create: Callable[[sqlite3.Connection], None] | None = None,
    sdk_tables: frozenset[str] | None = None,
) -> None:
    """Bring the database up to :data:`SCHEMA_VERSION` in one write transaction.

    ``on_create`` runs in that transaction when the schema is created from nothing (the
    adoption of an OpenAI Agents SDK database). Raises :class:`SchemaVersionError` when the
    database is newer than this code, and :class:`SessionError` when this SQLite lacks FTS5.
    The caller retries on ``database is locked``. A database that is not threadline's is
    refused (:func:`_check_ours`); ``sdk_tables`` names the OpenAI Agents SDK tables it may
    hold (:data:`SDK_TABLES` when ``None``).
    """
    allowed = SDK_TABLES if sdk_tables is None else sdk_tables
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION and _check_ours(conn, where, version, allowed):
        return
    _require_fts5(conn, where)
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        _check_ours(conn, where, version, allowed)
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the session store {where} has schema version {version}, but this threadline "
                f"only knows up to version {SCHEMA_VERSION}: upgrade threadline to open it"
            )
        created = version == 0
        for steps in MIGRATIONS[version:]:
            for step in steps:
                if callable(step):
                    step(conn)
                else:
                    conn.execute(step)
        if created and on_create is not None:
            on_create(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


SDK_TABLES = frozenset({"agent_sessions", "agent_messages"})
"""The OpenAI Agents SDK's own ``SQLiteSession`` tables: a file holding only these (and
threadline's) is opened as before, with threadline's tables beside them."""


def _check_ours(
    conn: sqlite3.Connection, where: str, version: int, sdk_tables: frozenset[str] = SDK_TABLES
) -> bool:
    """Refuse (with :class:`SessionError`) a database that is not threadline's.

    A database is threadline's when it has ``threadline_items`` and a ``user_version`` above
    0 (or no tables at all and a newer ``user_version``), or when it has ``user_version`` 0 and no tables but threadline's and the SDK's
    (``sdk_tables``, by default :data:`SDK_TABLES`). Anything else belongs to another application: adding tables to it
    or reading its ``user_version`` as ours would damage it or mislead. Returns ``True``.
    """
    names = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]
    if version > 0:
        if "threadline_items" in names or (not names and version > SCHEMA_VERSION):
            return True  # (an empty file marked newer is refused as newer, by the caller)
        found = "no threadline tables" if not names else "tables " + _names(names)
    else:
        foreign = [n for n in names if not n.startswith("threadline_") and n not in sdk_tables]
        if not foreign:
            return True
        found = "another application's tables " + _names(foreign)
    raise SessionError(
        f"the session store {where} is not a threadline database: it has user_version "
        f"{version} and {found}; threadline leaves other applications' databases alone: "
        f"give it a file of its own"
    )


def _names(names: list[str], shown: int = 5) -> str:
    listed = ", ".join(repr(name) for name in names[:shown])
    more = len(names) - shown
    return listed + (f" and {more} more" if more > 0 else "")


def _require_fts5(conn: sqlite3.Connection, where: str) -> None:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.threadline_fts_probe USING fts5(x)")
    except sqlite3.OperationalError as exc:
        raise SessionError(
            f"the session store {where} needs SQLite's FTS5 extension, which this Python's "
            f"sqlite3 module lacks ({exc}); use a Python built with a standard SQLite"
        ) from None
    conn.execute("DROP TABLE temp.threadline_fts_probe")
