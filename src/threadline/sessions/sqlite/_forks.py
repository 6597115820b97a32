"""Forks that share their parent's rows (copy-on-write), and the item ranges of a session.

A fork made under a plain JSON codec copies no rows. Its session row names a *base* instead:
the session ``base_sid`` whose rows at positions below ``base_count`` are the fork's first
``base_count`` items; the fork's own rows start at ``seq = base_count``. So a fork of a
100,000-item session writes one row, and a read of a fork is at most two range reads of the
``(sid, seq)`` key (:func:`ranges`), one of its own rows and one of its base's.

The rules that keep every fork independent of its parent:

* **A base is never a fork itself.** Forking a fork shares the fork's own base (up to the
  cut) and copies the fork's own rows below the cut (:func:`share`).
* **A base's shared rows never change.** Items only leave a session from the end (pop, undo)
  or all at once (clear, replace, delete). Before a session loses its items from position
  ``start`` on, :func:`release` gives every fork that shares rows at or past ``start`` its own
  copy of them (in the same transaction), and from then on the fork shares only the rows
  below ``start``; the parent's removal then touches no fork. A fork that loses its own items
  below ``base_count`` just shares fewer (:func:`unshare_from`).
* **Search.** The index holds each stored row once, under the row's owner
  (``rid = sid << 32 | seq``); a hit on a shared row is a hit in every session that shares it
  (``_search.search``). A session's ``indexed`` count covers its own rows only: a fork starts
  with ``indexed = base_count``, and rows copied into a fork by :func:`release` below its
  ``indexed`` are indexed at once, so that every own row below ``indexed`` has exactly one
  index entry and none above.

Rows are shared only when the store's codec is plain JSON: a codec that seals each payload
for its session (encryption) gets a resealed copy instead (``fork_resealed``), so a payload
is only ever opened for the session it was sealed for.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from ..codec import ItemCodec, decode_payload, search_text
from . import _search

__all__ = ["TOP", "Span", "find", "ranges", "release", "share", "unshare_from"]

TOP = 1 << 62
"""Above any ``seq``."""


class Span(NamedTuple):
    """Where one session's ``total`` items are: its own rows (``sid``) and, for a fork that
    shares rows, the first ``base_count`` positions in the rows of session ``base``."""

    sid: int
    total: int
    base: int | None
    base_count: int


def find(conn: sqlite3.Connection, session_id: str) -> Span | None:
    """The session's :class:`Span`, or ``None`` when there is no such session."""
    row = conn.execute(
        "SELECT sid, item_count, base_sid, base_count FROM threadline_sessions "
        "WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    return None if row is None else Span(row[0], row[1], row[2], row[3])


def ranges(span: Span, low: int = 0, newest_first: bool = True) -> list[tuple[int, int, int]]:
    """The ``(sid, lo, hi)`` row ranges (``lo <= seq < hi``) holding the session's items at
    positions ``>= low``, newest range first (or oldest first)."""
    found = [(span.sid, max(low, span.base_count), TOP)]
    if span.base is not None and low < span.base_count:
        found.append((span.base, low, span.base_count))
    if not newest_first:
        found.reverse()
    return found


def share(conn: sqlite3.Connection, source: Span, sid: int, count: int) -> None:
    """Make the empty session ``sid`` a fork of the first ``count`` items of ``source``
    (``0 < count <= source.total``) that shares rows instead of copying them."""
    if source.base is None:
        base, shared = source.sid, count
    else:  # a fork of a fork shares the same base, and copies the rows of its own
        base, shared = source.base, min(count, source.base_count)
        if count > shared:
            conn.execute(
                "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) "
                "SELECT ?, seq, kind, call_id, tokens, data FROM threadline_items "
                "WHERE sid = ? AND seq >= ? AND seq < ? ORDER BY seq",
                (sid, source.sid, shared, count),
            )
    conn.execute(
        "UPDATE threadline_sessions SET base_sid = ?, base_count = ?, indexed = ? WHERE sid = ?",
        (base, shared, shared, sid),
    )


def release(conn: sqlite3.Connection, codec: ItemCodec, sid: int, start: int) -> None:
    """Before session ``sid`` loses its rows from ``start`` on: give every fork that shares
    any of them a copy of its own (indexed for search below the fork's ``indexed``), and
    let it share only the rows below ``start``."""
    forks = conn.execute(
        "SELECT sid, session_id, base_count, indexed FROM threadline_sessions "
        "WHERE base_sid = ? AND base_count > ?",
        (sid, start),
    ).fetchall()
    for fork_sid, fork_id, shared, indexed in forks:
        conn.execute(
            "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) "
            "SELECT ?, seq, kind, call_id, tokens, data FROM threadline_items "
            "WHERE sid = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (fork_sid, sid, start, shared),
        )
        if codec.searchable and indexed > start:
            _index_copied(conn, codec, fork_sid, fork_id, start, min(shared, indexed))
        _set_shared(conn, fork_sid, start)


def unshare_from(conn: sqlite3.Connection, span: Span, start: int) -> None:
    """Before a fork loses its items from ``start`` on: share only the rows below it."""
    if span.base is not None and start < span.base_count:
        _set_shared(conn, span.sid, start)


def _set_shared(conn: sqlite3.Connection, sid: int, shared: int) -> None:
    conn.execute(
        "UPDATE threadline_sessions SET base_count = ?, "
        "base_sid = CASE WHEN ? > 0 THEN base_sid END WHERE sid = ?",
        (shared, shared, sid),
    )


def _index_copied(
    conn: sqlite3.Connection, codec: ItemCodec, sid: int, session_id: str, low: int, high: int
) -> None:
    entries = []
    for seq, data in conn.execute(_search.ITEMS_FROM, (sid, low, high)):
        item, _ = decode_payload(codec, session_id, data)
        text = None if item is None else search_text(item)
        if text is not None:
            entries.append((_search.rid(sid, seq), text))
    if entries:
        conn.executemany("INSERT INTO threadline_fts (rowid, body) VALUES (?, ?)", entries)
