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

import contextlib
import itertools
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

from ...errors import CorruptItemError, LeaseLostError, SessionError, UserError
from ...items import Item
from .._window import check_fork_cut, window_size
from ..backend import (
    Fence,
    LeaseGrant,
    LeaseHolder,
    PairingSummary,
    Payload,
    ReadPlan,
    StartRead,
    TailWindow,
    pairing_of,
)
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
from . import _forks, _search
from ._forks import Span

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
    "SELECT seq, data FROM threadline_items WHERE sid = ? AND seq < ? AND seq >= ? "
    "ORDER BY seq DESC LIMIT ?)"
)
_NEWEST_BY_ID = (
    f"SELECT count(*), min(seq), {_CONCAT}, "
    "(SELECT base_sid FROM threadline_sessions WHERE session_id = ?1) FROM ("
    "SELECT seq, data FROM threadline_items WHERE "
    "sid = (SELECT sid FROM threadline_sessions WHERE session_id = ?1) AND "
    "seq >= (SELECT base_count FROM threadline_sessions WHERE session_id = ?1) "
    "ORDER BY seq DESC LIMIT ?2)"
)
"""The newest items of a session's own rows, and whether it shares older ones (a fork)."""
_NEWEST_ROWS = (
    "SELECT seq, CAST(data AS BLOB) FROM threadline_items "
    "WHERE sid = ? AND seq < ? AND seq >= ? ORDER BY seq DESC LIMIT ?"
)
_METAS = (
    "SELECT kind, call_id, tokens FROM threadline_items WHERE sid = ? AND seq >= ? AND seq < ? "
    "ORDER BY seq DESC"
)
_INSERT = (
    "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) VALUES (?, ?, ?, ?, ?, ?)"
)
_TOP = _forks.TOP  # above any seq
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


def _session(conn: sqlite3.Connection, session_id: str) -> Span | None:
    return _forks.find(conn, session_id)


def _create_session(conn: sqlite3.Connection, session_id: str, now: float) -> int:
    cursor = conn.execute(
        "INSERT INTO threadline_sessions (session_id, item_count, created_at, updated_at) "
        "VALUES (?, 0, ?, ?)",
        (session_id, now, now),
    )
    sid = cursor.lastrowid
    assert sid is not None
    return sid


def _decode_rows(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    sid: int,
    session_id: str,
    below: int,
    low: int,
    count: int,
) -> tuple[list[Item], int]:
    """Decode a chunk row by row (newest first, ``low <= seq < below``), raising on the first
    corrupt row (an item's ``seq`` is its position).

    Returns the items and the lowest ``seq`` read. Rows are read as bytes, so that text which
    is not valid UTF-8 is reported as corrupt like any other bad row.
    """
    items = []
    lowest = below
    for seq, data in conn.execute(_NEWEST_ROWS, (sid, below, low, count)).fetchall():
        item, problem = decode_payload(codec, session_id, data)
        if item is None:
            raise CorruptItemError(session_id, seq, problem)
        items.append(item)
        lowest = seq
    return items, lowest


def _fetch_chunk(
    conn: sqlite3.Connection, sql: str, params: tuple[object, ...]
) -> tuple[int, int, str | None]:
    """Run a chunk query; ``count`` is -1 when the chunk holds text that is not UTF-8."""
    count, lowest, joined, _ = _fetch_chunk_shared(conn, sql, params)
    return count, lowest, joined


def _fetch_chunk_shared(
    conn: sqlite3.Connection, sql: str, params: tuple[object, ...]
) -> tuple[int, int, str | None, int | None]:
    """:func:`_fetch_chunk` of a query with a fourth column (``_NEWEST_BY_ID``'s base)."""
    try:
        row = conn.execute(sql, params).fetchone()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
        return -1, 0, None, None
    return row[0], row[1], row[2], row[3] if len(row) > 3 else None


def _decode_chunk(count: int, joined: str | None) -> list[Item] | None:
    if count < 0 or joined is None:
        return None
    return decode_joined(joined, count)


def _read_newest(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    span: Span,
    session_id: str,
    limit: int | None,
) -> list[Item]:
    """The newest ``limit`` items of a session (all when ``None``), oldest first, in chunks
    (its own rows, then those it shares)."""
    wanted = span.total if limit is None else min(limit, span.total)
    items: list[Item] = []
    memo: dict[str, str] = {}
    plain = codec.plain_json
    share = wanted > _SHARE_ABOVE
    with gc_paused(wanted > _GC_PAUSE_ABOVE):
        for sid, low, below in _forks.ranges(span):
            while limit is None or len(items) < limit:
                size = _CHUNK if limit is None else min(_CHUNK, limit - len(items))
                if plain:
                    count, lowest, joined = _fetch_chunk(
                        conn, _NEWEST_CHUNK, (sid, below, low, size)
                    )
                    if not count:
                        break
                    values = _decode_chunk(count, joined)
                else:
                    values = None
                if values is None:
                    values, lowest = _decode_rows(conn, codec, sid, session_id, below, low, size)
                    count = len(values)
                    if not count:
                        break
                if share:
                    share_common_values(values, memo)
                items.extend(values)
                below = lowest
                if count < size:
                    break
            if limit is not None and len(items) >= limit:
                break
    items.reverse()
    return items


def read_newest(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    limit: int | None,
    single: bool = True,
) -> list[Item] | None:
    """``get_items(limit)``: the newest ``limit`` items, oldest first.

    With ``single`` a small plain read is one statement, so it needs no explicit
    transaction: the common per-turn read. It returns ``None`` when that statement shows the
    read reaches into rows the session shares (a fork): the caller then reads again in a
    snapshot with ``single=False``.
    """
    if limit == 0:
        return []
    if single and limit is not None and limit <= _CHUNK and codec.plain_json:
        count, _, joined, shared = _fetch_chunk_shared(conn, _NEWEST_BY_ID, (session_id, limit))
        if shared is not None and 0 <= count < limit:
            return None
        if not count:
            return []
        values = _decode_chunk(count, joined)
        if values is not None:
            values.reverse()
            return values
    found = _session(conn, session_id)
    if found is None:
        return []
    return _read_newest(conn, codec, found, session_id, limit)


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
    if max_items is None and max_tokens is None:
        return _read_newest(conn, codec, found, session_id, None)
    limit = None if max_items is None else max_items + 1
    with contextlib.closing(_metas(conn, found, 0, limit)) as rows:
        size = window_size(rows, max_items, max_tokens)
    if size == 0:
        return []
    return _read_newest(conn, codec, found, session_id, size)


def _metas(
    conn: sqlite3.Connection, span: Span, low: int, limit: int | None
) -> Generator[tuple[int, str | None, int], None, None]:
    """``(kind, call_id, tokens)`` of the items at positions ``>= low``, newest first (at
    most ``limit`` from each range)."""
    sql = _METAS
    if limit is not None:
        sql += f" LIMIT {limit:d}"
    for sid, lo, hi in _forks.ranges(span, low):
        cursor = conn.execute(sql, (sid, lo, hi))
        try:
            yield from cursor
        finally:
            cursor.close()


def _owner(span: Span, position: int) -> int:
    """The sid whose rows hold the item at ``position``."""
    if span.base is not None and position < span.base_count:
        return span.base
    return span.sid


def _count_from(conn: sqlite3.Connection, span: Span, low: int, column: str = "count(*)") -> int:
    """``count(*)`` (or another aggregate) over the items at positions ``>= low``."""
    total = 0
    for sid, lo, hi in _forks.ranges(span, low):
        (value,) = conn.execute(
            f"SELECT coalesce({column}, 0) FROM threadline_items "
            "WHERE sid = ? AND seq >= ? AND seq < ?",
            (sid, lo, hi),
        ).fetchone()
        total += int(value)
    return total


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
    total = found.total
    if start > total:
        return TailWindow(total, None, [], 0)
    tail_tokens = _count_from(conn, found, start, "sum(tokens)")
    if max_items is None and max_tokens is None:
        size = total - start
    elif max_items == 0 or max_tokens == 0:
        size = 0
    else:
        limit = None if max_items is None else max_items + 1
        with contextlib.closing(_metas(conn, found, start, limit)) as rows:
            size = window_size(rows, max_items, max_tokens)
    anchor = None
    if start > 0:
        row = conn.execute(
            "SELECT CAST(data AS BLOB) FROM threadline_items WHERE sid = ? AND seq = ?",
            (_owner(found, start - 1), start - 1),
        ).fetchone()
        if row is not None:
            anchor, problem = decode_payload(codec, session_id, row[0])
            if anchor is None:
                raise CorruptItemError(session_id, start - 1, problem)
    items = _read_newest(conn, codec, found, session_id, size) if size else []
    return TailWindow(total, anchor, items, tail_tokens)


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


def records_and_window_after_record(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    keys: Sequence[str],
    key: str,
    budget: Callable[[Mapping[str, Payload]], tuple[int | None, int | None]],
    start_for: Callable[
        [Payload, int | None, int | None], tuple[int, int | None, int | None] | None
    ],
) -> tuple[dict[str, Payload], Payload | None, list[Item] | TailWindow, int]:
    """``records_and_window_after_record``: every record asked for in one statement, the
    item count, then the window they ask for, in one snapshot."""
    wanted = [*keys, key]
    rows = conn.execute(
        "SELECT r.key, r.data FROM threadline_records AS r JOIN threadline_sessions AS s "
        f"ON r.sid = s.sid WHERE s.session_id = ? AND r.key IN ({', '.join('?' * len(wanted))})",
        (session_id, *wanted),
    ).fetchall()
    found = dict(rows)
    payload = found.pop(key, None)
    records = {name: found[name] for name in keys if name in found}
    max_items, max_tokens = budget(records)
    counted = conn.execute(
        "SELECT item_count FROM threadline_sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    count = 0 if counted is None else int(counted[0])
    plan = None if payload is None else start_for(payload, max_items, max_tokens)
    if plan is None:
        return records, payload, window(conn, codec, session_id, max_items, max_tokens), count
    return records, payload, window_since(conn, codec, session_id, *plan), count


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
        "SELECT sid, base_count, "
        "(SELECT max(seq) FROM threadline_items AS i WHERE i.sid = s.sid) "
        "FROM threadline_sessions AS s WHERE s.session_id = ?",
        (session_id,),
    ).fetchone()
    if found is None:
        sid, seq = _create_session(conn, session_id, now), 0
    else:  # a fork's own rows follow the rows it shares
        sid, shared, top = found
        seq = shared if top is None else top + 1
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
    conn: sqlite3.Connection, codec: ItemCodec, span: Span, seq: int, count: int
) -> None:
    """Remove the items at positions ``>= seq``: forks that share them get copies first."""
    _forks.release(conn, codec, span.sid, seq)
    _forks.unshare_from(conn, span, seq)
    _search.unindex_from(conn, codec, span.sid, seq)
    conn.execute("DELETE FROM threadline_items WHERE sid = ? AND seq >= ?", (span.sid, seq))
    conn.execute(
        "UPDATE threadline_sessions SET item_count = item_count - ?, updated_at = ? WHERE sid = ?",
        (count, time.time(), span.sid),
    )


def pop(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, fence: Fence | None
) -> Item | None:
    """Remove and return the newest item (a corrupt one is reported and left in place)."""
    check_fence(conn, session_id, fence)
    found = _session(conn, session_id)
    if found is None:
        return None
    for sid, low, high in _forks.ranges(found):
        row = conn.execute(
            "SELECT seq, CAST(data AS BLOB) FROM threadline_items WHERE sid = ? AND seq >= ? "
            "AND seq < ? ORDER BY seq DESC LIMIT 1",
            (sid, low, high),
        ).fetchone()
        if row is not None:
            break
    else:
        return None
    seq, data = row
    item, problem = decode_payload(codec, session_id, data)
    if item is None:
        raise CorruptItemError(session_id, seq, problem)
    _remove_from(conn, codec, found, seq, 1)
    return item


def pop_turn(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, fence: Fence | None
) -> list[Item]:
    """Remove and return the newest user message and everything after it."""
    check_fence(conn, session_id, fence)
    found = _session(conn, session_id)
    if found is None:
        return []
    for sid, low, high in _forks.ranges(found):
        row = conn.execute(
            "SELECT seq FROM threadline_items WHERE sid = ? AND seq >= ? AND seq < ? "
            "AND kind = ? ORDER BY seq DESC LIMIT 1",
            (sid, low, high, KIND_USER),
        ).fetchone()
        if row is not None:
            break
    else:
        return []
    (start,) = row
    count = _count_from(conn, found, start)
    items = _read_newest(conn, codec, found, session_id, count)
    _remove_from(conn, codec, found, start, count)
    return items


def _remove_all(conn: sqlite3.Connection, codec: ItemCodec, span: Span) -> None:
    _forks.release(conn, codec, span.sid, 0)
    _search.unindex_from(conn, codec, span.sid, 0)
    conn.execute("DELETE FROM threadline_items WHERE sid = ?", (span.sid,))


def clear(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, fence: Fence | None = None
) -> None:
    """Remove the session's items; the session row stays (with its creation time)."""
    check_fence(conn, session_id, fence)
    found = _session(conn, session_id)
    if found is None:
        return
    _remove_all(conn, codec, found)
    conn.execute(
        "UPDATE threadline_sessions SET item_count = 0, updated_at = ?, base_sid = NULL, "
        "base_count = 0 WHERE sid = ?",
        (time.time(), found.sid),
    )


def delete(conn: sqlite3.Connection, codec: ItemCodec, session_id: str) -> bool:
    """Remove the session, its items and a free lease row; ``False`` when there was none."""
    found = _session(conn, session_id)
    if found is None:
        return False
    _remove_all(conn, codec, found)
    conn.execute("DELETE FROM threadline_records WHERE sid = ?", (found.sid,))
    conn.execute("DELETE FROM threadline_sessions WHERE sid = ?", (found.sid,))
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


def fork(
    conn: sqlite3.Connection,
    session_id: str,
    new_session_id: str,
    at: int | None,
    share: bool = True,
) -> None:
    """Give the empty session ``new_session_id`` the first ``at`` items (all when ``None``):
    shared with the source (``share``, see :mod:`._forks`), or copied."""
    target = _session(conn, new_session_id)
    if target is not None and target.total > 0:
        raise UserError(
            f"cannot fork session {session_id!r} into {new_session_id!r}: that session already "
            f"holds {target.total} items; clear it first or pick a new id"
        )
    source = _session(conn, session_id)
    count = 0 if source is None else source.total if at is None else min(at, source.total)
    if source is None or count == 0:
        return
    if count < source.total:
        _check_cut(conn, session_id, source, count)
    now = time.time()
    sid = target.sid if target is not None else _create_session(conn, new_session_id, now)
    if share:
        _forks.share(conn, source, sid, count)
    else:
        for owner, low, high in _forks.ranges(source, newest_first=False):
            conn.execute(
                "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) "
                "SELECT ?, seq, kind, call_id, tokens, data FROM threadline_items "
                "WHERE sid = ? AND seq >= ? AND seq < ? ORDER BY seq",
                (sid, owner, low, min(high, count)),
            )
    conn.execute(
        "UPDATE threadline_sessions SET item_count = ?, updated_at = ? WHERE sid = ?",
        (count, now, sid),
    )


def _check_cut(conn: sqlite3.Connection, session_id: str, span: Span, count: int) -> None:
    """Refuse a fork at ``count`` that would cut a function call from its output."""
    pairs = [
        row
        for sid, low, high in _forks.ranges(span, newest_first=False)
        for row in conn.execute(
            "SELECT seq, kind, call_id FROM threadline_items WHERE sid = ? AND seq >= ? "
            f"AND seq < ? AND kind IN ({KIND_CALL:d}, {KIND_OUTPUT:d}) ORDER BY seq",
            (sid, low, high),
        )
    ]
    check_fork_cut(session_id, count, pairs)


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
    count = 0 if source is None else source.total if at is None else min(at, source.total)
    if source is None or count == 0:
        return 0
    if count < source.total:
        _check_cut(conn, session_id, source, count)
    now = time.time()
    target = _session(conn, new_session_id)
    sid = target.sid if target is not None else _create_session(conn, new_session_id, now)
    rows = []
    for owner, low, high in _forks.ranges(source, newest_first=False):
        for seq, kind, call_id, tokens, data in conn.execute(
            "SELECT seq, kind, call_id, tokens, data FROM threadline_items "
            "WHERE sid = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (owner, low, min(high, count)),
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
        for sid, low, high in _forks.ranges(found, newest_first=False)
        for (seq,) in conn.execute(
            "SELECT seq FROM threadline_items WHERE sid = ? AND seq >= ? AND seq < ? "
            "AND kind = ? ORDER BY seq",
            (sid, low, high, KIND_USER),
        )
    ]


if sqlite3.sqlite_version_info >= (3, 44, 0):
    _CONCAT_UP = f"group_concat(data, '{ROW_SEPARATOR}' ORDER BY seq)"
else:
    _CONCAT_UP = f"group_concat(data, '{ROW_SEPARATOR}')"

_OLDEST_CHUNK = (
    f"SELECT count(*), max(seq), {_CONCAT_UP} FROM ("
    "SELECT seq, data FROM threadline_items WHERE sid = ? AND seq > ? AND seq < ? "
    "ORDER BY seq LIMIT ?)"
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
    size = _CHUNK * 5
    with gc_paused(found.total > _GC_PAUSE_ABOVE):
        for sid, low, high in _forks.ranges(found, newest_first=False):
            above = low - 1
            while True:
                count, top, joined = _fetch_chunk(conn, _OLDEST_CHUNK, (sid, above, high, size))
                if not count:
                    break
                if joined is None or "\n" in joined or decode_joined(joined, count) is None:
                    return None  # (compact JSON never holds a raw line feed)
                texts += joined.split(ROW_SEPARATOR)
                above = top
                if count < size:
                    break
    return texts


def read_oldest(
    conn: sqlite3.Connection, codec: ItemCodec, session_id: str, limit: int
) -> list[Item]:
    """The oldest ``limit`` items, oldest first."""
    found = _session(conn, session_id)
    if found is None:
        return []
    items: list[Item] = []
    for sid, low, high in _forks.ranges(found, newest_first=False):
        for seq, data in conn.execute(
            "SELECT seq, CAST(data AS BLOB) FROM threadline_items WHERE sid = ? AND seq >= ? "
            "AND seq < ? ORDER BY seq LIMIT ?",
            (sid, low, high, limit - len(items)),
        ).fetchall():
            item, problem = decode_payload(codec, session_id, data)
            if item is None:
                raise CorruptItemError(session_id, seq, problem)
            items.append(item)
        if len(items) >= limit:
            break
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


def acquire_lease_existing(
    conn: sqlite3.Connection, session_id: str, owner: str, ttl: float
) -> tuple[LeaseGrant, tuple[str, int, float, float]] | None:
    """:func:`acquire_lease` and :func:`session_info` in one transaction, for a session that
    exists; ``None`` (nothing written) when it does not."""
    info = session_info(conn, session_id)
    if info is None:
        return None
    return acquire_lease(conn, session_id, owner, ttl), info


def acquire_lease_and_read(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    session_id: str,
    owner: str,
    ttl: float,
    existing: bool,
    plan: ReadPlan,
) -> tuple[LeaseGrant, tuple[str, int, float, float] | None, StartRead | None] | None:
    """``lease_acquire_and_read``: the lease (on an existing session only when ``existing``:
    ``None``, nothing written, for a missing one) and, once granted, the read ``plan``, in
    one transaction."""
    info = None
    if existing:
        info = session_info(conn, session_id)
        if info is None:
            return None
    grant = acquire_lease(conn, session_id, owner, ttl)
    if not grant.acquired:
        return grant, info, None
    read = records_and_window_after_record(
        conn, codec, session_id, plan.keys, plan.key, plan.budget, plan.start_for
    )
    return grant, info, read


def pairing_summary(conn: sqlite3.Connection, session_ids: Sequence[str]) -> list[PairingSummary]:
    """How each session's function calls pair with their outputs (see
    :class:`~threadline.sessions.backend.PairingSummary`): one aggregate over the kind and
    call-id columns per session finds the call ids whose calls and outputs do not balance or
    whose first output comes before its first call; only those ids' rows are then walked in
    order (none, for a healthy session)."""
    found: list[PairingSummary] = []
    for session_id in dict.fromkeys(session_ids):
        span = _session(conn, session_id)
        if span is None:
            continue
        parts, args = [], []
        for sid, low, high in _forks.ranges(span, newest_first=False):
            parts.append(
                "SELECT seq, kind, call_id FROM threadline_items "
                "WHERE sid = ? AND seq >= ? AND seq < ? AND kind IN (?, ?)"
            )
            args += [sid, low, high, KIND_CALL, KIND_OUTPUT]
        rows = " UNION ALL ".join(parts)
        odd = [
            call_id
            for (call_id,) in conn.execute(
                f"SELECT call_id FROM ({rows}) GROUP BY call_id "
                "HAVING sum(kind = ?) != sum(kind = ?) "
                "OR min(CASE WHEN kind = ? THEN seq END) < min(CASE WHEN kind = ? THEN seq END)",
                (*args, KIND_CALL, KIND_OUTPUT, KIND_OUTPUT, KIND_CALL),
            )
        ]
        walked: list[tuple[int, int, str | None]] = []
        for start in range(0, len(odd), 400):
            chunk = odd[start : start + 400]
            marks = ", ".join("?" * len(chunk))
            walked += conn.execute(
                f"SELECT seq, kind, call_id FROM ({rows}) WHERE call_id IN ({marks})",
                (*args, *chunk),
            ).fetchall()
        walked.sort()
        found.append(pairing_of(session_id, [(kind, call_id) for _, kind, call_id in walked]))
    return found


def lease_holders(conn: sqlite3.Connection, session_ids: Sequence[str]) -> list[LeaseHolder]:
    """The live holders of the listed sessions' leases (one query per 500 ids)."""
    now = time.time()
    found: list[LeaseHolder] = []
    unique = list(dict.fromkeys(session_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT session_id, owner, epoch, expires_at FROM threadline_leases "
            f"WHERE session_id IN ({marks}) AND owner != '' AND expires_at > ?",
            (*chunk, now),
        ).fetchall()
        found += [LeaseHolder(str(r[0]), str(r[1]), int(r[2]), float(r[3])) for r in rows]
    return found


def renew_lease(conn: sqlite3.Connection, session_id: str, fence: Fence, ttl: float) -> bool:
    """Push the lease's expiry out; ``False`` when ``fence`` no longer holds it."""
    cursor = conn.execute(
        "UPDATE threadline_leases SET expires_at = ? "
        "WHERE session_id = ? AND owner = ? AND epoch = ?",
        (time.time() + ttl, session_id, fence.owner, fence.epoch),
    )
    return cursor.rowcount == 1


def add_and_release(
    conn: sqlite3.Connection,
    session_id: str,
    rows: Sequence[EncodedItem],
    fence: Fence,
    records: Mapping[str, Payload | None] | None = None,
) -> None:
    """:func:`add` fenced by ``fence``, then :func:`release_lease` of it, in one transaction
    (a refused add raises before anything is released)."""
    add(conn, session_id, rows, fence, records)
    release_lease(conn, session_id, fence)


def release_lease(conn: sqlite3.Connection, session_id: str, fence: Fence) -> None:
    """Give the lease up (only if ``fence`` still holds it); the row keeps its epoch."""
    conn.execute(
        "UPDATE threadline_leases SET owner = '', expires_at = 0 "
        "WHERE session_id = ? AND owner = ? AND epoch = ?",
        (session_id, fence.owner, fence.epoch),
    )
