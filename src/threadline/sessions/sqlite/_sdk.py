"""Adopting a database written by the OpenAI Agents SDK's ``SQLiteSession``.

The SDK keeps sessions in two tables (by default ``agent_sessions`` and ``agent_messages``:
one row per session, one JSON text per item in ``message_data``, ordered by ``id``). The first
time threadline opens such a file it copies every session into its own schema, in the same
transaction that creates that schema, and leaves the SDK's tables as they are;
:func:`import_sdk_sessions` does the same on demand (``threadline db import-sdk``).

Nothing is dropped silently: an SDK item that threadline cannot store stops the adoption with a
:class:`~threadline.errors.SessionError` naming the session and the row, and nothing is copied.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from datetime import datetime, timezone

from ...errors import SessionError, UserError
from ..codec import ItemCodec, encode_items
from . import _ops as ops

__all__ = ["DEFAULT_TABLES", "find_sdk_tables", "import_sdk_sessions"]

logger = logging.getLogger("threadline.sessions")

DEFAULT_TABLES = ("agent_sessions", "agent_messages")
"""The OpenAI Agents SDK's default ``sessions_table`` and ``messages_table``."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_table_name(name: object, what: str) -> str:
    """``name`` if it is a plain SQL identifier (letters, digits, ``_``), else a UserError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"{what} must be a plain table name (letters, digits, _), got {name!r}")
    return name


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def find_sdk_tables(
    conn: sqlite3.Connection, tables: tuple[str, str] = DEFAULT_TABLES
) -> tuple[str, str] | None:
    """The SDK's ``(sessions_table, messages_table)`` if this database holds them."""
    sessions, messages = tables
    if {"session_id"} <= _columns(conn, sessions) and {
        "id",
        "session_id",
        "message_data",
    } <= _columns(conn, messages):
        return sessions, messages
    return None


def _timestamp(value: object, default: float) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:  # SQLite's CURRENT_TIMESTAMP: "YYYY-MM-DD HH:MM:SS", UTC
            parsed = datetime.fromisoformat(value.replace(" ", "T"))
        except ValueError:
            return default
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return default


def import_sdk_sessions(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    tables: tuple[str, str],
    where: str,
    *,
    skip_existing: bool = True,
) -> tuple[int, int, list[str]]:
    """Copy the SDK's sessions into threadline's tables, inside the caller's transaction.

    Returns ``(sessions copied, items copied, ids skipped because threadline already holds a
    session by that id)``. An item that cannot be stored raises :class:`SessionError`.
    """
    sessions_table, messages_table = tables
    now = datetime.now(timezone.utc).timestamp()
    known = {
        str(row[0]): (row[1], row[2])
        for row in conn.execute(f"SELECT session_id, created_at, updated_at FROM {sessions_table}")
    }
    ordered = [
        str(row[0])
        for row in conn.execute(
            f"SELECT DISTINCT session_id FROM {messages_table} ORDER BY session_id"
        )
    ]
    copied = items = 0
    skipped: list[str] = []
    for session_id in sorted(set(known) | set(ordered)):
        if conn.execute(
            "SELECT 1 FROM threadline_sessions WHERE session_id = ?", (session_id,)
        ).fetchone():
            if not skip_existing:
                raise SessionError(f"session {session_id!r} already exists in {where}")
            skipped.append(session_id)
            continue
        batch = []
        for row_id, data in conn.execute(
            f"SELECT id, message_data FROM {messages_table} WHERE session_id = ? ORDER BY id",
            (session_id,),
        ):
            try:
                batch.append(json.loads(data))
            except (TypeError, ValueError) as exc:
                raise SessionError(
                    f"the OpenAI Agents SDK table {messages_table} in {where} holds a row that "
                    f"is not JSON (session {session_id!r}, id {row_id}): {exc}; nothing was "
                    "copied"
                ) from None
        try:
            rows = encode_items(batch, codec, session_id)
        except UserError as exc:
            raise SessionError(
                f"session {session_id!r} of the OpenAI Agents SDK table {messages_table} in "
                f"{where} holds an item threadline cannot store ({exc}); nothing was copied"
            ) from None
        created, updated = known.get(session_id, (None, None))
        started = _timestamp(created, now)
        if rows:
            ops.add(conn, session_id, rows)
        elif (
            conn.execute(
                "SELECT 1 FROM threadline_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            is None
        ):
            conn.execute(
                "INSERT INTO threadline_sessions (session_id, item_count, created_at, updated_at) "
                "VALUES (?, 0, ?, ?)",
                (session_id, started, started),
            )
        conn.execute(
            "UPDATE threadline_sessions SET created_at = ?, updated_at = ? WHERE session_id = ?",
            (started, _timestamp(updated, started), session_id),
        )
        copied += 1
        items += len(rows)
    if copied:
        logger.warning(
            "threadline: adopted %d sessions (%d items) from the OpenAI Agents SDK tables %s / %s "
            "in %s; those tables are left untouched",
            copied,
            items,
            sessions_table,
            messages_table,
            where,
        )
    return copied, items, skipped
