"""The SQL of every session operation, as functions of a connection.

Each function runs inside a transaction the engine opened (a write transaction for writers, a
read snapshot for readers) and never commits itself. Session ids and items are only ever bound
as parameters. Reads walk the ``(sid, seq)`` primary key backwards from the newest item, so
their cost follows what they return, not the length of the history. Writes made under a lease
check its fence first, in the same transaction (:func:`check_fence`).

Removals take their items out of the search index first (:mod:`._search`); appends leave
the index to catch up later, so a write pays nothing for search.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ...errors import CorruptItemError, LeaseLostError, SessionError, UserError
from ...items import Item
from .._window import check_fork_cut, window_size
from ..backend import Fence, LeaseGrant, Payload, TailWindow
from ..codec import (
    KIND_CALL,
    KIND_OUTPUT,
    KIND_USER,
    ROW_SEPARATOR,
    EncodedItem,
    EncodedRows,
    ItemCodec,
    decode_joined,
    decode_payload,
    gc_paused,
    share_common_values,
)
from . import _search

__all__ = [
    "SINGLE_STATEMENT_LIMIT",
    "acquire_lease",
    "add",
    "check_fence",
    "clear",
    "delete",
    "fork",
    "fork_resealed",
    "get_record",
    "list_records",
    "list_sessions",
    "list_sessions_with_record",
    "pop",
    "pop_turn",
    "put_records",
    "read_json",
    "read_newest",
    "read_oldest",
    "release_lease",
    "renew_lease",
    "replace",
    "session_info",
    "stats",
    "user_positions",
    "window",
    "window_after_record",
    "window_since",
]

_CHUNK = 1000
SINGLE_STATEMENT_LIMIT = _CHUNK
"""``read_newest`` with a limit up to this runs one statement (no snapshot transaction needed)."""
_GC_PAUSE_ABOVE = 2000
_SHARE_ABOVE = 20_000
"""Reads of more items share their repeated ``type``/``role`` strings (memory for big reads);
a per-turn window is smaller and skips the extra pass (it costs as much as a third of the
decoding)."""

# SQLite 3.44 added ORDER BY inside aggregates; older versions keep the subquery's order in
# practice, and the subquery's ORDER BY ... LIMIT is what picks the rows in both cases.
if sqlite3.sqlite_version_info >= (3, 44, 0):
    _CONCAT = f"group_concat(data, '{ROW_SEPARATOR}' ORDER BY seq DESC)"
else:
    _CONCAT = f"group_concat(data, '{ROW_SEPARATOR}')"

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
_SEQ_LIMIT = _search.SEQ_LIMIT  # seq must stay below this: rid = sid << 32 | seq


def check_fence(conn: sqlite3.Connection, session_id: str, fence: Fence | None) -> None:
    """Refuse (with :class:`LeaseLostError`) a write whose lease is no longer the session's."""
    if fence is None:
        return
    row = conn.execute(
        "SELECT owner, epoch FROM threadline_leases WHERE session_id = ?", (session_id,)
    ).fetchone()
    if row is None or row[0] != fence.owner or row[1] != fence.epoch:
        newer = "" if row is None else f"; the session's lease is now at epoch {row[1]}"
        raise LeaseLostError(session_id, f"this run held epoch {fence.epoch}{newer}")


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
    conn: sqlite3.Connection,
    codec: ItemCodec,
    sid: int,
    session_id: str,
    below: int,
    count: int,
) -> tuple[list[Item], int]:
    """Decode a chunk row by row (newest first), raising on the first corrupt row.

    Returns the items and the lowest ``seq`` read. Rows are read as bytes, so that text which
    is not valid UTF-8 is reported as corrupt like any other bad row.
    """
    items = []
    lowest = below
    for seq, data in conn.execute(_NEWEST_ROWS, (sid, below, count)).fetchall():
        item, problem = decode_payload(codec, session_id, data)
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
    conn: sqlite3.Connection,
    codec: ItemCodec,
    sid: int,
    session_id: str,
    limit: int | None,
    total: int,
) -> list[Item]:
    """The newest ``limit`` items of ``sid`` (all when ``None``), oldest first, in chunks."""
    wanted = total if limit is None else min(limit, total)
    items: list[Item] = []
    memo: dict[str, str] = {}
    below = _TOP
    plain = codec.plain_json
    share = wanted > _SHARE_ABOVE
    with gc_paused(wanted > _GC_PAUSE_ABOVE):
        while limit is None or len(items) < limit:
            size = _CHUNK if limit is None else min(_CHUNK, limit - len(items))
            if plain:
                count, lowest, joined = _fetch_chunk(conn, _NEWEST_CHUNK, (sid, below, size))
                if not count:
                    break
                values = _decode_chunk(count, joined)
            else:
                values = None
            if values is None:
                values, lowest = _decode_rows(conn, codec, sid, session_id, below, size)
                count = len(values)
                if not count:
                    break
            if share:
                share_common_values(values, memo)
            items.extend(values)
            below = lowest
            if count < size:
                break
    items.reverse()
    return items


def read_newest(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, limit: int | None
) -> list[Item]:
    """``get_items(limit)``: the newest ``limit`` items, oldest first."""
    if limit == 0:
        return []
    if limit is not None and limit <= _CHUNK and codec.plain_json:
        # One statement, so it needs no explicit transaction: the common per-turn read.
        count, _, joined = _fetch_chunk(conn, _NEWEST_BY_ID, (session_id, limit))
        if not count:
            return []
        values = _decode_chunk(count, joined)
        if values is None:
            found = _session(conn, session_id)
            if found is None:
                return []
            values, _ = _decode_rows(conn, codec, found[0], session_id, _TOP, limit)
        values.reverse()
        return values
    found = _session(conn, session_id)
    if found is None:
        return []
    return _read_newest(conn, codec, found[0], session_id, limit, found[1])


def window(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    max_items: int | None,
    max_tokens: int | None,
) -> list[Item]:
    """``get_window``: choose the window from the small columns, then decode only it."""
    found = _session(conn, session_id)
    if found is None:
        return []
    sid, total = found
    if max_items is None and max_tokens is None:
        return _read_newest(conn, codec, sid, session_id, None, total)
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
    return _read_newest(conn, codec, sid, session_id, size, total)


def window_since(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    start: int,
    max_items: int | None,
    max_tokens: int | None,
) -> TailWindow:
    """``window_since``: range reads from ``seq = start`` (a position) to the newest item."""
    found = _session(conn, session_id)
    if found is None:
        return TailWindow(0, None, [], 0)
    sid, total = found
    if start > total:
        return TailWindow(total, None, [], 0)
    (tail_tokens,) = conn.execute(
        "SELECT coalesce(sum(tokens), 0) FROM threadline_items WHERE sid = ? AND seq >= ?",
        (sid, start),
    ).fetchone()
    if max_items is None and max_tokens is None:
        size = total - start
    elif max_items == 0 or max_tokens == 0:
        size = 0
    else:
        sql = (
            "SELECT kind, call_id, tokens FROM threadline_items WHERE sid = ? AND seq >= ? "
            "ORDER BY seq DESC"
        )
        params: tuple[int, ...] = (sid, start)
        if max_items is not None:
            sql += " LIMIT ?"
            params = (sid, start, max_items + 1)
        cursor = conn.execute(sql, params)
        try:
            size = window_size(cursor, max_items, max_tokens)
        finally:
            cursor.close()
    anchor = None
    if start > 0:
        row = conn.execute(
            "SELECT CAST(data AS BLOB) FROM threadline_items WHERE sid = ? AND seq = ?",
            (sid, start - 1),
        ).fetchone()
        if row is not None:
            anchor, problem = decode_payload(codec, session_id, row[0])
            if anchor is None:
                raise CorruptItemError(session_id, start - 1, problem)
    items = _read_newest(conn, codec, sid, session_id, size, total) if size else []
    return TailWindow(total, anchor, items, int(tail_tokens))


def window_after_record(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    key: str,
    max_items: int | None,
    max_tokens: int | None,
    start_for: Callable[[Payload], tuple[int, int | None, int | None] | None],
) -> tuple[Payload | None, list[Item] | TailWindow]:
    """``window_after_record``: the record, then the window it asks for, in one snapshot."""
    payload = get_record(conn, session_id, key)
    plan = None if payload is None else start_for(payload)
    if plan is None:
        return payload, window(conn, codec, session_id, max_items, max_tokens)
    return payload, window_since(conn, codec, session_id, *plan)


def add(
    conn: sqlite3.Connection,
    session_id: str,
    rows: Sequence[EncodedItem],
    fence: Fence | None = None,
    records: Mapping[str, Payload | None] | None = None,
) -> None:
    """Append ``rows``, numbering them after the current newest item (and write
    ``records`` in the same transaction)."""
    check_fence(conn, session_id, fence)
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
    if seq + len(rows) > _SEQ_LIMIT:
        raise SessionError(
            f"session {session_id!r} would pass {_SEQ_LIMIT - 1} items, the most one SQLite "
            "session holds: fork the newest part into a new session"
        )
    if isinstance(rows, EncodedRows):  # a bulk import: zip the columns, no tuple per item
        count = len(rows)
        params: Iterable[tuple[object, ...]] = zip(
            itertools.repeat(sid, count),
            range(seq, seq + count),
            rows.kinds,
            rows.call_ids,
            rows.tokens,
            rows.data,
            strict=True,
        )
    else:
        params = [
            (sid, seq + i, row.kind, row.call_id, row.tokens, row.data)
            for i, row in enumerate(rows)
        ]
    conn.executemany(_INSERT, params)
    conn.execute(
        "UPDATE threadline_sessions SET item_count = item_count + ?, updated_at = ? WHERE sid = ?",
        (len(rows), now, sid),
    )
    if records:
        _write_records(conn, sid, records)


def _write_records(
    conn: sqlite3.Connection, sid: int, records: Mapping[str, Payload | None]
) -> None:
    gone = [(sid, key) for key, value in records.items() if value is None]
    kept = [(sid, key, value) for key, value in records.items() if value is not None]
    if gone:
        conn.executemany("DELETE FROM threadline_records WHERE sid = ? AND key = ?", gone)
    if kept:
        conn.executemany(
            "INSERT OR REPLACE INTO threadline_records (sid, key, data) VALUES (?, ?, ?)", kept
        )


def put_records(
    conn: sqlite3.Connection,
    session_id: str,
    records: Mapping[str, Payload | None],
    fence: Fence | None = None,
) -> None:
    """Write (or, for ``None``, delete) the session's records; creates the session when a
    record is written to a session that does not exist."""
    check_fence(conn, session_id, fence)
    found = _session(conn, session_id)
    if found is None:
        if all(value is None for value in records.values()):
            return
        sid = _create_session(conn, session_id, time.time())
    else:
        sid = found[0]
    _write_records(conn, sid, records)


def get_record(conn: sqlite3.Connection, session_id: str, key: str) -> Payload | None:
    """The payload of one record, or ``None``."""
    row = conn.execute(
        "SELECT r.data FROM threadline_records AS r JOIN threadline_sessions AS s "
        "ON r.sid = s.sid WHERE s.session_id = ? AND r.key = ?",
        (session_id, key),
    ).fetchone()
    return None if row is None else row[0]


def _past_prefix(prefix: str) -> str:
    """A string above every string that starts with ``prefix`` (or the largest one there is)."""
    for index in range(len(prefix) - 1, -1, -1):
        point = ord(prefix[index]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return prefix[:index] + chr(point)
    return "\U0010ffff" * (len(prefix) + 1)


def list_records(
    conn: sqlite3.Connection, session_id: str, prefix: str
) -> list[tuple[str, Payload]]:
    """The session's records whose key starts with ``prefix``, by key (a range scan)."""
    found = _session(conn, session_id)
    if found is None:
        return []
    if not prefix:
        rows = conn.execute(
            "SELECT key, data FROM threadline_records WHERE sid = ? ORDER BY key", (found[0],)
        )
    else:
        # A range scan from ``prefix`` to the first string past every key that starts with it
        # (SQLite compares text as UTF-8 bytes, which orders like code points).
        rows = conn.execute(
            "SELECT key, data FROM threadline_records WHERE sid = ? AND key >= ? AND key < ? "
            "AND substr(key, 1, ?) = ? ORDER BY key",
            (found[0], prefix, _past_prefix(prefix), len(prefix), prefix),
        )
    return [(key, data) for key, data in rows]


def _remove_from(
    conn: sqlite3.Connection, codec: ItemCodec, sid: int, seq: int, count: int
) -> None:
    _search.unindex_from(conn, codec, sid, seq)
    conn.execute("DELETE FROM threadline_items WHERE sid = ? AND seq >= ?", (sid, seq))
    conn.execute(
        "UPDATE threadline_sessions SET item_count = item_count - ?, updated_at = ? WHERE sid = ?",
        (count, time.time(), sid),
    )


def pop(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, fence: Fence | None
) -> Item | None:
    """Remove and return the newest item (a corrupt one is reported and left in place)."""
    check_fence(conn, session_id, fence)
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
    item, problem = decode_payload(codec, session_id, data)
    if item is None:
        raise CorruptItemError(session_id, _position(conn, sid, seq), problem)
    _remove_from(conn, codec, sid, seq, 1)
    return item


def pop_turn(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, fence: Fence | None
) -> list[Item]:
    """Remove and return the newest user message and everything after it."""
    check_fence(conn, session_id, fence)
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
    items = _read_newest(conn, codec, sid, session_id, count, total)
    _remove_from(conn, codec, sid, start, count)
    return items


def _remove_all(conn: sqlite3.Connection, codec: ItemCodec, sid: int) -> None:
    _search.unindex_from(conn, codec, sid, 0)
    conn.execute("DELETE FROM threadline_items WHERE sid = ?", (sid,))


def clear(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, fence: Fence | None = None
) -> None:
    """Remove the session's items; the session row stays (with its creation time)."""
    check_fence(conn, session_id, fence)
    found = _session(conn, session_id)
    if found is None:
        return
    _remove_all(conn, codec, found[0])
    conn.execute(
        "UPDATE threadline_sessions SET item_count = 0, updated_at = ? WHERE sid = ?",
        (time.time(), found[0]),
    )


def delete(conn: sqlite3.Connection, codec: ItemCodec, session_id: str) -> bool:
    """Remove the session, its items and a free lease row; ``False`` when there was none."""
    found = _session(conn, session_id)
    if found is None:
        return False
    _remove_all(conn, codec, found[0])
    conn.execute("DELETE FROM threadline_records WHERE sid = ?", (found[0],))
    conn.execute("DELETE FROM threadline_sessions WHERE sid = ?", (found[0],))
    conn.execute(
        "DELETE FROM threadline_leases WHERE session_id = ? AND (owner = '' OR expires_at < ?)",
        (session_id, time.time()),
    )
    return True


def replace(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    rows: Sequence[EncodedItem],
    fence: Fence | None = None,
) -> None:
    """Replace the whole history with ``rows`` in one step; the session row stays."""
    check_fence(conn, session_id, fence)
    clear(conn, codec, session_id)
    if rows:
        add(conn, session_id, rows)
    elif _session(conn, session_id) is None:
        _create_session(conn, session_id, time.time())


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
    if count < source[1]:
        pairs = conn.execute(
            "SELECT seq, kind, call_id FROM threadline_items "
            f"WHERE sid = ? AND kind IN ({KIND_CALL:d}, {KIND_OUTPUT:d}) ORDER BY seq",
            (source[0],),
        )
        try:
            check_fork_cut(session_id, count, pairs)
        finally:
            pairs.close()
    now = time.time()
    sid = target[0] if target is not None else _create_session(conn, new_session_id, now)
    conn.execute(
        "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) "
        "SELECT ?, seq, kind, call_id, tokens, data "
        "FROM threadline_items WHERE sid = ? AND seq < ? ORDER BY seq",
        (sid, source[0], count),
    )
    conn.execute(
        "UPDATE threadline_sessions SET item_count = ?, updated_at = ? WHERE sid = ?",
        (count, now, sid),
    )


def fork_resealed(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    new_session_id: str,
    at: int | None,
    reseal: Callable[[Payload], Payload],
) -> int:
    """:func:`fork` through ``reseal`` (each payload opened and sealed for the new session),
    in one transaction; returns how many items were copied."""
    fork(conn, session_id, new_session_id, 0)  # checks that the new session is empty
    source = _session(conn, session_id)
    count = 0 if source is None else source[1] if at is None else min(at, source[1])
    if source is None or count == 0:
        return 0
    if count < source[1]:
        pairs = conn.execute(
            "SELECT seq, kind, call_id FROM threadline_items "
            f"WHERE sid = ? AND kind IN ({KIND_CALL:d}, {KIND_OUTPUT:d}) ORDER BY seq",
            (source[0],),
        )
        try:
            check_fork_cut(session_id, count, pairs)
        finally:
            pairs.close()
    now = time.time()
    target = _session(conn, new_session_id)
    sid = target[0] if target is not None else _create_session(conn, new_session_id, now)
    rows = []
    for seq, kind, call_id, tokens, data in conn.execute(
        "SELECT seq, kind, call_id, tokens, data FROM threadline_items "
        "WHERE sid = ? AND seq < ? ORDER BY seq",
        (source[0], count),
    ):
        try:
            sealed = reseal(data)
        except ValueError as exc:
            raise CorruptItemError(
                session_id, seq, f"the {codec.name} codec cannot open it: {exc}"
            ) from None
        rows.append((sid, seq, kind, call_id, tokens, sealed))
    conn.executemany(_INSERT, rows)
    conn.execute(
        "UPDATE threadline_sessions SET item_count = ?, updated_at = ? WHERE sid = ?",
        (count, now, sid),
    )
    return count


def list_sessions(
    conn: sqlite3.Connection, limit: int | None, after: tuple[float, int] | None
) -> tuple[list[tuple[str, int, float, float]], tuple[float, int] | None]:
    """Sessions newest first from the ``(updated_at, sid)`` index, after a cursor.

    Returns ``(session_id, item_count, created_at, updated_at)`` rows and the cursor of the
    next page (``None`` when this was the last).
    """
    sql = "SELECT session_id, item_count, created_at, updated_at, sid FROM threadline_sessions"
    params: list[object] = []
    if after is not None:
        sql += " WHERE updated_at <= ? AND (updated_at < ? OR sid < ?)"
        params += [after[0], after[0], after[1]]
    sql += " ORDER BY updated_at DESC, sid DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit + 1)
    rows = conn.execute(sql, params).fetchall()
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    page = [(str(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]
    cursor = (float(rows[-1][3]), int(rows[-1][4])) if more and rows else None
    return page, cursor


def list_sessions_with_record(
    conn: sqlite3.Connection,
    limit: int | None,
    after: tuple[float, int] | None,
    key: str,
    select: Callable[[str, Payload | None], Any],
) -> tuple[list[tuple[tuple[str, int, float, float], Any]], tuple[float, int] | None]:
    """Sessions newest first with their record ``key``, those ``select`` keeps (one join
    along the listing index); returns ``(row, selected)`` pairs and the next cursor."""
    sql = (
        "SELECT s.session_id, s.item_count, s.created_at, s.updated_at, s.sid, r.data "
        "FROM threadline_sessions AS s LEFT JOIN threadline_records AS r "
        "ON r.sid = s.sid AND r.key = ?"
    )
    params: list[object] = [key]
    if after is not None:
        sql += " WHERE s.updated_at <= ? AND (s.updated_at < ? OR s.sid < ?)"
        params += [after[0], after[0], after[1]]
    sql += " ORDER BY s.updated_at DESC, s.sid DESC"
    cursor = conn.execute(sql, params)
    page: list[tuple[tuple[str, int, float, float], Any]] = []
    try:
        for session_id, count, created, updated, sid, data in cursor:
            selected = select(str(session_id), data)
            if selected is None:
                continue
            page.append(((str(session_id), int(count), float(created), float(updated)), selected))
            if limit is not None and len(page) >= limit:
                more = cursor.fetchone() is not None
                return page, ((float(updated), int(sid)) if more else None)
    finally:
        cursor.close()
    return page, None


def user_positions(conn: sqlite3.Connection, session_id: str) -> list[int]:
    """The positions of the session's user messages, oldest first (from the kind column)."""
    found = _session(conn, session_id)
    if found is None:
        return []
    return [
        seq
        for (seq,) in conn.execute(
            "SELECT seq FROM threadline_items WHERE sid = ? AND kind = ? ORDER BY seq",
            (found[0], KIND_USER),
        )
    ]


if sqlite3.sqlite_version_info >= (3, 44, 0):
    _CONCAT_UP = f"group_concat(data, '{ROW_SEPARATOR}' ORDER BY seq)"
else:
    _CONCAT_UP = f"group_concat(data, '{ROW_SEPARATOR}')"

_OLDEST_CHUNK = (
    f"SELECT count(*), max(seq), {_CONCAT_UP} FROM ("
    "SELECT seq, data FROM threadline_items WHERE sid = ? AND seq > ? ORDER BY seq LIMIT ?)"
)


def read_json(conn: sqlite3.Connection, codec: ItemCodec, session_id: str) -> list[str] | None:
    """Every item's stored JSON text, oldest first, each checked to be one JSON object; or
    ``None`` when the codec is not plain JSON or a row is not (the caller then reads the
    items, which names a corrupt row)."""
    if not codec.plain_json:
        return None
    found = _session(conn, session_id)
    if found is None:
        return []
    texts: list[str] = []
    above = -1
    with gc_paused(found[1] > _GC_PAUSE_ABOVE):
        while True:
            count, top, joined = _fetch_chunk(conn, _OLDEST_CHUNK, (found[0], above, _CHUNK * 5))
            if not count:
                return texts
            if joined is None or "\n" in joined or decode_joined(joined, count) is None:
                return None  # (compact JSON never holds a raw line feed)
            texts += joined.split(ROW_SEPARATOR)
            above = top
            if count < _CHUNK * 5:
                return texts


def read_oldest(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, limit: int
) -> list[Item]:
    """The oldest ``limit`` items, oldest first."""
    found = _session(conn, session_id)
    if found is None:
        return []
    items = []
    for seq, data in conn.execute(
        "SELECT seq, CAST(data AS BLOB) FROM threadline_items WHERE sid = ? ORDER BY seq LIMIT ?",
        (found[0], limit),
    ).fetchall():
        item, problem = decode_payload(codec, session_id, data)
        if item is None:
            raise CorruptItemError(session_id, seq, problem)
        items.append(item)
    return items


def session_info(conn: sqlite3.Connection, session_id: str) -> tuple[str, int, float, float] | None:
    """``(session_id, item_count, created_at, updated_at)`` of one session, or ``None``."""
    row = conn.execute(
        "SELECT session_id, item_count, created_at, updated_at FROM threadline_sessions "
        "WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]), float(row[2]), float(row[3]))


def stats(conn: sqlite3.Connection) -> tuple[int, int]:
    """``(sessions, items)`` in the database."""
    sessions, items = conn.execute(
        "SELECT count(*), coalesce(sum(item_count), 0) FROM threadline_sessions"
    ).fetchone()
    return int(sessions), int(items)


def acquire_lease(conn: sqlite3.Connection, session_id: str, owner: str, ttl: float) -> LeaseGrant:
    """Take the session's lease for ``owner`` unless a live holder has it; the epoch goes up."""
    now = time.time()
    row = conn.execute(
        "SELECT owner, expires_at, epoch FROM threadline_leases WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    if row is not None and row[0] and row[0] != owner and row[1] > now:
        return LeaseGrant(False, int(row[2]), str(row[0]), float(row[1]) - now)
    epoch = 1 if row is None else int(row[2]) + 1
    conn.execute(
        "INSERT OR REPLACE INTO threadline_leases (session_id, owner, expires_at, epoch) "
        "VALUES (?, ?, ?, ?)",
        (session_id, owner, now + ttl, epoch),
    )
    return LeaseGrant(True, epoch)


def renew_lease(conn: sqlite3.Connection, session_id: str, fence: Fence, ttl: float) -> bool:
    """Push the lease's expiry out; ``False`` when ``fence`` no longer holds it."""
    cursor = conn.execute(
        "UPDATE threadline_leases SET expires_at = ? "
        "WHERE session_id = ? AND owner = ? AND epoch = ?",
        (time.time() + ttl, session_id, fence.owner, fence.epoch),
    )
    return cursor.rowcount == 1


def release_lease(conn: sqlite3.Connection, session_id: str, fence: Fence) -> None:
    """Give the lease up (only if ``fence`` still holds it); the row keeps its epoch."""
    conn.execute(
        "UPDATE threadline_leases SET owner = '', expires_at = 0 "
        "WHERE session_id = ? AND owner = ? AND epoch = ?",
        (session_id, fence.owner, fence.epoch),
    )
