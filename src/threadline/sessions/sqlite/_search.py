"""The SQLite search index: a contentless FTS5 table that catches up in batches.

``threadline_fts`` holds each item's search text (see
:func:`~threadline.sessions.codec.search_text`) under ``rid = sid << 32 | seq``, so one
session's entries are one ``rid`` range. The text itself is not stored a second time: the
index is *contentless*, and the items are the source.

* **Writes pay nothing for it.** Each session row records how many of its leading items are
  indexed (``indexed``); a partial index finds the sessions with more items than that.
  :func:`catch_up` indexes what is missing in one batch: at the writer thread's next quiet
  moment after a process wrote a thousand or so items (so a burst of writes never waits for
  it), and inside every search's own transaction, so a search sees every committed write.
* **Removals** (pop, undo, clear, replace, delete) take their indexed items out of the index
  in their own transaction (:func:`unindex_from`), recomputing the text from the item.
* **Shared rows** (a fork's prefix, see ``_forks.py``) are indexed once, under the session
  that stores them; a hit on one is reported for every session that holds it.
* **Hits are verified** against the item before they are returned, so an index entry that
  could not be removed (a row damaged behind the store's back) never shows as a hit.
* The text rules have a version (:data:`SEARCH_TEXT_VERSION`); when it changes the index is
  rebuilt from the items on the next catch-up.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Sequence

from ...errors import CorruptItemError
from ...items import Item
from .._search import make_snippet, matches
from ..codec import ItemCodec, decode_payload, search_text

__all__ = ["ITEMS_FROM", "SEARCH_TEXT_VERSION", "catch_up", "rid", "search", "unindex_from"]

SEARCH_TEXT_VERSION = 1
"""Bump when :func:`~threadline.sessions.codec.search_text` or the word rules change."""

SEQ_BITS = 32
SEQ_LIMIT = 1 << SEQ_BITS
ITEMS_FROM = (
    "SELECT seq, CAST(data AS BLOB) FROM threadline_items "
    "WHERE sid = ? AND seq >= ? AND seq < ? ORDER BY seq"
)


def rid(sid: int, seq: int) -> int:
    """The index row id of item ``seq`` of session ``sid``."""
    return (sid << SEQ_BITS) | seq


def _text(codec: ItemCodec, session_id: str, data: object) -> str | None:
    item, _ = decode_payload(codec, session_id, data)
    return None if item is None else search_text(item)


def _check_version(conn: sqlite3.Connection) -> None:
    row = conn.execute(
        "SELECT value FROM threadline_meta WHERE key = 'search_text_version'"
    ).fetchone()
    if row is not None and row[0] == str(SEARCH_TEXT_VERSION):
        return
    conn.execute("INSERT INTO threadline_fts (threadline_fts) VALUES ('delete-all')")
    conn.execute("UPDATE threadline_sessions SET indexed = 0 WHERE indexed > 0")
    conn.execute(
        "INSERT OR REPLACE INTO threadline_meta (key, value) VALUES ('search_text_version', ?)",
        (str(SEARCH_TEXT_VERSION),),
    )


def catch_up(conn: sqlite3.Connection, codec: ItemCodec, budget: int | None = None) -> bool:
    """Index items not indexed yet, at most ``budget`` of them (``None``: all).

    Returns whether the index is now up to date.
    """
    if not codec.searchable:
        return True
    _check_version(conn)
    pending = conn.execute(
        "SELECT sid, session_id, indexed, item_count FROM threadline_sessions "
        "WHERE indexed < item_count"
    ).fetchall()
    entries: list[tuple[int, str]] = []
    left = budget
    done = True
    for sid, session_id, low, high in pending:
        if left is not None and left <= 0:
            done = False
            break
        upto = high if left is None else min(high, low + left)
        for seq, data in conn.execute(ITEMS_FROM, (sid, low, upto)):
            text = _text(codec, session_id, data)
            if text is not None:
                entries.append((rid(sid, seq), text))
        conn.execute("UPDATE threadline_sessions SET indexed = ? WHERE sid = ?", (upto, sid))
        if left is not None:
            left -= upto - low
            done = done and upto == high
    if entries:
        conn.executemany("INSERT INTO threadline_fts (rowid, body) VALUES (?, ?)", entries)
    return done


def unindex_from(conn: sqlite3.Connection, codec: ItemCodec, sid: int, seq: int) -> None:
    """Before items ``seq..`` of ``sid`` are removed: take the indexed ones out of the index."""
    row = conn.execute(
        "SELECT indexed, session_id FROM threadline_sessions WHERE sid = ?", (sid,)
    ).fetchone()
    if row is None or row[0] <= seq:
        return
    indexed, session_id = row
    removals = []
    for position, data in conn.execute(ITEMS_FROM, (sid, seq, indexed)):
        text = _text(codec, session_id, data)
        if text is not None:
            removals.append((rid(sid, position), text))
    if removals:
        conn.executemany(
            "INSERT INTO threadline_fts (threadline_fts, rowid, body) VALUES ('delete', ?, ?)",
            removals,
        )
    conn.execute("UPDATE threadline_sessions SET indexed = ? WHERE sid = ?", (seq, sid))


def search(
    conn: sqlite3.Connection,
    codec: ItemCodec,
    terms: Sequence[str],
    limit: int,
    session_id: str | None,
) -> list[tuple[str, int, str, Item]]:
    """``(session_id, position, snippet, item)`` of the best ``limit`` hits, by BM25.

    Runs in a write transaction: the index first catches up with every committed write. A
    row a fork shares with its parent is indexed once, under the parent; a hit on it is a
    hit in each session that holds it (the parent first, then its forks).
    """
    catch_up(conn, codec)
    query = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
    sql = "SELECT rowid FROM threadline_fts WHERE threadline_fts MATCH ?"
    params: list[object] = [query]
    if session_id is not None:
        found = conn.execute(
            "SELECT sid, base_sid, base_count FROM threadline_sessions WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        if found is None:
            return []
        sid, base, shared = found
        if base is None:
            sql += " AND rowid BETWEEN ? AND ?"
            params += [rid(sid, 0), rid(sid, SEQ_LIMIT - 1)]
        else:
            sql += " AND (rowid BETWEEN ? AND ? OR rowid BETWEEN ? AND ?)"
            params += [rid(sid, 0), rid(sid, SEQ_LIMIT - 1), rid(base, 0), rid(base, shared - 1)]
    sql += " ORDER BY rank LIMIT ? OFFSET ?"
    batch = limit + 16
    hits: list[tuple[str, int, str, Item]] = []
    offset = 0
    while len(hits) < limit:
        rows = conn.execute(sql, [*params, batch, offset]).fetchall()
        for (row_id,) in rows:
            hit = _verified(conn, codec, row_id, terms)
            if hit is None:
                continue
            if session_id is not None:
                hits.append((session_id, *hit[1:]))
            else:
                hits.append(hit)
                _, position, snippet, item = hit
                for sharer in _sharers(conn, row_id):
                    hits.append((sharer, position, snippet, copy.deepcopy(item)))
            if len(hits) >= limit:
                break
        if len(rows) < batch:
            break
        offset += batch
    return hits[:limit]


def _sharers(conn: sqlite3.Connection, row_id: int) -> list[str]:
    """The ids of the forks that share the row ``row_id`` with its owner."""
    return [
        str(session_id)
        for (session_id,) in conn.execute(
            "SELECT session_id FROM threadline_sessions WHERE base_sid = ? AND base_count > ? "
            "ORDER BY sid",
            (row_id >> SEQ_BITS, row_id & (SEQ_LIMIT - 1)),
        )
    ]


def _verified(
    conn: sqlite3.Connection, codec: ItemCodec, row_id: int, terms: Sequence[str]
) -> tuple[str, int, str, Item] | None:
    sid, seq = row_id >> SEQ_BITS, row_id & (SEQ_LIMIT - 1)
    row = conn.execute(
        "SELECT s.session_id, CAST(i.data AS BLOB) FROM threadline_items AS i "
        "JOIN threadline_sessions AS s ON s.sid = i.sid WHERE i.sid = ? AND i.seq = ?",
        (sid, seq),
    ).fetchone()
    if row is None:
        return None
    session_id = str(row[0])
    item, problem = decode_payload(codec, session_id, row[1])
    if item is None:
        raise CorruptItemError(session_id, seq, problem)
    text = search_text(item)
    if text is None or not matches(text, terms):
        return None
    return session_id, seq, make_snippet(text, terms), item
