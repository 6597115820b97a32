"""The SQL of every session operation, as functions of a connection.

Each function runs inside a transaction the engine opened (a write transaction for writers, a
read snapshot for readers) and never commits itself. Session ids and items are only ever bound
as parameters. Reads walk the ``(sid, seq)`` primary key backwards from the newest item, so
their cost follows what they return, not the length of the history.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from ...errors import CorruptItemError, UserError
from ...items import Item
from .._window import window_size
from ..codec import (
    KIND_USER,
    EncodedItem,
    decode_joined,
    decode_problem,
    gc_paused,
    share_common_values,
)

__all__ = [
    "SINGLE_STATEMENT_LIMIT",
    "acquire_lease",
    "add",
    "clear",
    "fork",
    "list_sessions",
    "pop",
    "pop_turn",
    "read_newest",
    "release_lease",
    "renew_lease",
    "replace",
    "window",
]

_CHUNK = 1000
SINGLE_STATEMENT_LIMIT = _CHUNK
"""``read_newest`` with a limit up to this runs one statement (no snapshot transaction needed)."""
_GC_PAUSE_ABOVE = 2000

# SQLite 3.44 added ORDER BY inside aggregates; older versions keep the subquery's order in
# practice, and the subquery's ORDER BY ... LIMIT is what picks the rows in both cases.
if sqlite3.sqlite_version_info >= (3, 44, 0):
    _CONCAT = "group_concat(data, ',' ORDER BY seq DESC)"
else:
    _CONCAT = "group_concat(data, ',')"

_NEWEST_CHUNK = (
    f"SELECT count(*), min(seq), {_CONCAT} FROM ("
    "SELECT seq, data FROM threadline_items WHERE sid = ? AND seq < ? "
    "ORDER BY seq DESC LIMIT ?)"
)
_NEWEST_BY_ID = (
    f"SELECT count(*), min(seq), {_CONCAT} FROM ("
    "SELECT seq, data FROM threadline_items WHERE sid = "
    "(SELECT sid FROM threadline_sessions WHERE session_id = ?) "
    "ORDER BY seq DESC LIMIT ?)"
)
_NEWEST_ROWS = (
    "SELECT seq, CAST(data AS BLOB) FROM threadline_items "
    "WHERE sid = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
)
_INSERT = (
    "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) VALUES (?, ?, ?, ?, ?, ?)"
)
_TOP = 1 << 62  # above any seq


def _session(conn: sqlite3.Connection, session_id: str) -> tuple[int, int] | None:
    row = conn.execute(
        "SELECT sid, item_count FROM threadline_sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def _create_session(conn: sqlite3.Connection, session_id: str, now: float) -> int:
    cursor = conn.execute(
        "INSERT INTO threadline_sessions (session_id, item_count, created_at, updated_at) "
        "VALUES (?, 0, ?, ?)",
        (session_id, now, now),
    )
    sid = cursor.lastrowid
    assert sid is not None
    return sid


def _position(conn: sqlite3.Connection, sid: int, seq: int) -> int:
    (count,) = conn.execute(
        "SELECT count(*) FROM threadline_items WHERE sid = ? AND seq < ?", (sid, seq)
    ).fetchone()
    return int(count)


def _decode_rows(
    conn: sqlite3.Connection, sid: int, session_id: str, below: int, count: int
) -> tuple[list[Item], int]:
    """Decode a chunk row by row (newest first), raising on the first corrupt row.

    Returns the items and the lowest ``seq`` read. Rows are read as bytes, so that text which
    is not valid UTF-8 is reported as corrupt like any other bad row.
    """
    items = []
    lowest = below
    for seq, data in conn.execute(_NEWEST_ROWS, (sid, below, count)).fetchall():
        item, problem = decode_problem(data)
        if item is None:
            raise CorruptItemError(session_id, _position(conn, sid, seq), problem)
        items.append(item)
        lowest = seq
    return items, lowest


def _fetch_chunk(
    conn: sqlite3.Connection, sql: str, params: tuple[object, ...]
) -> tuple[int, int, str | None]:
    """Run a chunk query; ``count`` is -1 when the chunk holds text that is not UTF-8."""
    try:
        count, lowest, joined = conn.execute(sql, params).fetchone()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
        return -1, 0, None
    return count, lowest, joined


def _decode_chunk(count: int, joined: str | None) -> list[Item] | None:
    if count < 0 or joined is None:
        return None
    return decode_joined(joined, count)


def _read_newest(
    conn: sqlite3.Connection, sid: int, session_id: str, limit: int | None, total: int
) -> list[Item]:
    """The newest ``limit`` items of ``sid`` (all when ``None``), oldest first, in chunks."""
    wanted = total if limit is None else min(limit, total)
    items: list[Item] = []
    memo: dict[str, str] = {}
    below = _TOP
    with gc_paused(wanted > _GC_PAUSE_ABOVE):
        while limit is None or len(items) < limit:
            size = _CHUNK if limit is None else min(_CHUNK, limit - len(items))
            count, lowest, joined = _fetch_chunk(conn, _NEWEST_CHUNK, (sid, below, size))
            if not count:
                break
            values = _decode_chunk(count, joined)
            if values is None:
                values, lowest = _decode_rows(conn, sid, session_id, below, size)
                count = len(values)
            share_common_values(values, memo)
            items.extend(values)
            below = lowest
            if count < size:
                break
    items.reverse()
    return items


def read_newest(conn: sqlite3.Connection, session_id: str, limit: int | None) -> list[Item]:
    """``get_items(limit)``: the newest ``limit`` items, oldest first."""
    if limit == 0:
        return []
    if limit is not None and limit <= _CHUNK:
        # One statement, so it needs no explicit transaction: the common per-turn read.
        count, _, joined = _fetch_chunk(conn, _NEWEST_BY_ID, (session_id, limit))
        if not count:
            return []
        values = _decode_chunk(count, joined)
        if values is None:
            found = _session(conn, session_id)
            if found is None:
                return []
            values, _ = _decode_rows(conn, found[0], session_id, _TOP, limit)
        values.reverse()
        return values
    found = _session(conn, session_id)
    if found is None:
        return []
    return _read_newest(conn, found[0], session_id, limit, found[1])


def window(
    conn: sqlite3.Connection, session_id: str, max_items: int | None, max_tokens: int | None
) -> list[Item]:
    """``get_window``: choose the window from the small columns, then decode only it."""
    found = _session(conn, session_id)
    if found is None:
        return []
    sid, total = found
    if max_items is None and max_tokens is None:
        return _read_newest(conn, sid, session_id, None, total)
    sql = "SELECT kind, call_id, tokens FROM threadline_items WHERE sid = ? ORDER BY seq DESC"
    params: tuple[int, ...] = (sid,)
    if max_items is not None:
        sql += " LIMIT ?"
        params = (sid, max_items + 1)
    cursor = conn.execute(sql, params)
    try:
        size = window_size(cursor, max_items, max_tokens)
    finally:
        cursor.close()
    if size == 0:
        return []
    return _read_newest(conn, sid, session_id, size, total)


def add(conn: sqlite3.Connection, session_id: str, rows: Sequence[EncodedItem]) -> None:
    """Append ``rows``, numbering them after the current newest item."""
    now = time.time()
    found = conn.execute(
        "SELECT sid, (SELECT max(seq) FROM threadline_items AS i WHERE i.sid = s.sid) "
        "FROM threadline_sessions AS s WHERE s.session_id = ?",
        (session_id,),
    ).fetchone()
    if found is None:
        sid, seq = _create_session(conn, session_id, now), 0
    else:
        sid, top = found
        seq = 0 if top is None else top + 1
    conn.executemany(
        _INSERT,
        [(sid, seq + i, row.kind, row.call_id, row.tokens, row.data) for i, row in enumerate(rows)],
    )
    conn.execute(
        "UPDATE threadline_sessions SET item_count = item_count + ?, updated_at = ? WHERE sid = ?",
        (len(rows), now, sid),
    )


def _remove_from(conn: sqlite3.Connection, sid: int, seq: int, count: int) -> None:
    conn.execute("DELETE FROM threadline_items WHERE sid = ? AND seq >= ?", (sid, seq))
    conn.execute(
        "UPDATE threadline_sessions SET item_count = item_count - ?, updated_at = ? WHERE sid = ?",
        (count, time.time(), sid),
    )


def pop(conn: sqlite3.Connection, session_id: str) -> Item | None:
    """Remove and return the newest item (a corrupt one is reported and left in place)."""
    found = _session(conn, session_id)
    if found is None:
        return None
    sid = found[0]
    row = conn.execute(
        "SELECT seq, CAST(data AS BLOB) FROM threadline_items WHERE sid = ? "
        "ORDER BY seq DESC LIMIT 1",
        (sid,),
    ).fetchone()
    if row is None:
        return None
    seq, data = row
    item, problem = decode_problem(data)
    if item is None:
        raise CorruptItemError(session_id, _position(conn, sid, seq), problem)
    _remove_from(conn, sid, seq, 1)
    return item


def pop_turn(conn: sqlite3.Connection, session_id: str) -> list[Item]:
    """Remove and return the newest user message and everything after it."""
    found = _session(conn, session_id)
    if found is None:
        return []
    sid, total = found
    row = conn.execute(
        "SELECT seq FROM threadline_items WHERE sid = ? AND kind = ? ORDER BY seq DESC LIMIT 1",
        (sid, KIND_USER),
    ).fetchone()
    if row is None:
        return []
    (start,) = row
    (count,) = conn.execute(
        "SELECT count(*) FROM threadline_items WHERE sid = ? AND seq >= ?", (sid, start)
    ).fetchone()
    items = _read_newest(conn, sid, session_id, count, total)
    _remove_from(conn, sid, start, count)
    return items


def clear(conn: sqlite3.Connection, session_id: str) -> bool:
    """Remove the session's items and its row; ``False`` when there was no such session."""
    found = _session(conn, session_id)
    if found is None:
        return False
    conn.execute("DELETE FROM threadline_items WHERE sid = ?", (found[0],))
    conn.execute("DELETE FROM threadline_sessions WHERE sid = ?", (found[0],))
    return True


def replace(conn: sqlite3.Connection, session_id: str, rows: Sequence[EncodedItem]) -> None:
    """Replace the whole history with ``rows`` in one step."""
    clear(conn, session_id)
    if rows:
        add(conn, session_id, rows)


def fork(conn: sqlite3.Connection, session_id: str, new_session_id: str, at: int | None) -> None:
    """Copy the first ``at`` items (all when ``None``) into the empty session ``new_session_id``."""
    target = _session(conn, new_session_id)
    if target is not None and target[1] > 0:
        raise UserError(
            f"cannot fork session {session_id!r} into {new_session_id!r}: that session already "
            f"holds {target[1]} items; clear it first or pick a new id"
        )
    source = _session(conn, session_id)
    count = 0 if source is None else source[1] if at is None else min(at, source[1])
    if source is None or count == 0:
        return
    now = time.time()
    sid = target[0] if target is not None else _create_session(conn, new_session_id, now)
    conn.execute(
        "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) "
        "SELECT ?, row_number() OVER (ORDER BY seq) - 1, kind, call_id, tokens, data "
        "FROM threadline_items WHERE sid = ? ORDER BY seq LIMIT ?",
        (sid, source[0], count),
    )
    conn.execute(
        "UPDATE threadline_sessions SET item_count = ?, updated_at = ? WHERE sid = ?",
        (count, now, sid),
    )


def list_sessions(conn: sqlite3.Connection) -> list[tuple[str, int, float, float]]:
    """Every session: ``(session_id, item_count, created_at, updated_at)``, newest first."""
    return [
        (str(row[0]), int(row[1]), float(row[2]), float(row[3]))
        for row in conn.execute(
            "SELECT session_id, item_count, created_at, updated_at FROM threadline_sessions "
            "ORDER BY updated_at DESC, session_id"
        )
    ]


def acquire_lease(conn: sqlite3.Connection, session_id: str, owner: str, ttl: float) -> bool:
    """Take the session's lease for ``owner`` unless a live holder has it."""
    now = time.time()
    row = conn.execute(
        "SELECT owner, expires_at FROM threadline_leases WHERE session_id = ?", (session_id,)
    ).fetchone()
    if row is not None and row[0] != owner and row[1] > now:
        return False
    conn.execute(
        "INSERT OR REPLACE INTO threadline_leases (session_id, owner, expires_at) VALUES (?, ?, ?)",
        (session_id, owner, now + ttl),
    )
    return True


def renew_lease(conn: sqlite3.Connection, session_id: str, owner: str, ttl: float) -> bool:
    """Push the lease's expiry out; ``False`` when ``owner`` no longer holds it."""
    cursor = conn.execute(
        "UPDATE threadline_leases SET expires_at = ? WHERE session_id = ? AND owner = ?",
        (time.time() + ttl, session_id, owner),
    )
    return cursor.rowcount == 1


def release_lease(conn: sqlite3.Connection, session_id: str, owner: str) -> None:
    """Give the lease up (only if ``owner`` still holds it)."""
    conn.execute(
        "DELETE FROM threadline_leases WHERE session_id = ? AND owner = ?", (session_id, owner)
    )
