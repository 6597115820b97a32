"""The PostgreSQL backend: each backend method is one transaction on a pooled connection.

* **Appends** are one round trip: ``threadline_append`` (see :mod:`._schema`) checks the
  fence, bumps the session row (which numbers the rows inside the transaction and serialises
  the session's writers) and inserts the rows. Each append carries a batch id; a retry after
  a dropped connection asks the function to do nothing if that batch is already stored.
* **Reads** walk the ``(skey, seq)`` primary key backwards from the newest item, so a window
  or ``get_items(limit)`` is an index range scan whose cost follows what it returns (one
  statement; a read of more than one chunk runs in a repeatable-read snapshot).
* **Tail reads** after a compaction summary (``window_since``) are one statement: range
  scans of the primary key from ``seq = start`` for the counts and the window, fetching only
  the window's payloads; ``window_after_record`` reads the record (and, in the same
  statement when there is none, the plain window: one round trip), then the tail together
  with the record again (planned again if a writer changed it in between), so the pair is
  one consistent state in two round trips. ``read_oldest``, ``user_positions``, ``read_json``
  and ``list_sessions_with_record`` (a join along the listing index) read only what they
  return; ``fork_resealed`` copies rows in one transaction.
* **Other writes** (pop, pop turn, replace, clear, fork, delete) are short transactions that
  check the fence first (``threadline_check_fence``), then lock the session row.
* **Leases** are a row per session, changed by one function call each (committed without
  waiting for the WAL flush); expiry is judged by the server's clock, so app hosts whose
  clocks differ agree on it.
* **Search** matches the items' word vectors (``tsvector`` built from the same word rules as
  every backend, GIN index), then verifies each hit against the item.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import CorruptItemError, LeaseLostError, StoreUnavailableError, UserError
from ...items import Item
from .._search import make_snippet, matches, word_set
from .._window import check_fork_cut, window_size
from ..backend import (
    Fence,
    LeaseGrant,
    LeaseHolder,
    PairingSummary,
    Payload,
    SearchHit,
    StoreBackend,
    StoreStats,
    TailWindow,
    pairing_of,
)
from ..base import SessionInfo
from ..codec import (
    KIND_CALL,
    KIND_OUTPUT,
    KIND_USER,
    ROW_SEPARATOR,
    EncodedItem,
    ItemCodec,
    decode_joined,
    decode_payload,
    decode_problem,
    gc_paused,
    search_text,
)
from ._pool import Pools
from ._schema import FENCE_SQLSTATE

__all__ = ["PostgresBackend", "session_key"]

_SEPARATOR = ROW_SEPARATOR.encode("utf-8")
_CHUNK = 2000
_WINDOW_CHUNK = 128
_GC_PAUSE_ABOVE = 2000
_MAX_LEXEME = 2046  # bytes: PostgreSQL refuses longer words in a tsvector
_MAX_VECTOR = 900_000  # bytes of words per item: a tsvector holds at most 1 MB
_DUPLICATE_SQLSTATE = "TL002"

_NEWEST = (
    "SELECT seq, kind, call_id, tokens, data FROM threadline_items "
    "WHERE skey = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
)
_OLDEST = (
    "SELECT seq, data FROM threadline_items WHERE skey = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)
_TOP = 1 << 62
_REPLANS = 3  # optimistic tail reads before window_after_record takes a snapshot
_RECORD = "SELECT data FROM threadline_records WHERE skey = $1 AND key = $2"
# The record $4 (a first row whose seq is NULL) and, when there is no such record, the newest $3
# items below seq $2 (as _NEWEST): a window without a compaction summary in one statement.
_RECORD_OR_NEWEST = """
SELECT NULL::bigint AS seq, NULL::smallint AS kind, NULL::bytea AS call_id,
    NULL::integer AS tokens, r.data FROM threadline_records AS r WHERE r.skey = $1 AND r.key = $4
UNION ALL (
    SELECT seq, kind, call_id, tokens, data FROM threadline_items
    WHERE skey = $1 AND seq < $2
        AND NOT EXISTS (SELECT 1 FROM threadline_records WHERE skey = $1 AND key = $4)
    ORDER BY seq DESC LIMIT $3
)
ORDER BY seq DESC NULLS FIRST
"""
# One tail read (window_since): the session's count, the tail's tokens, the anchor item, the
# window's candidate rows newest first (those within max_items + 1 rows and whose running
# token sum before them is within max_tokens: what ``window_size`` may look at), and the
# record $5 as of the same snapshot. Every part is a range scan of the primary key from
# seq = start; only the candidates' payloads are fetched.
_SINCE = """
SELECT s.item_count,
    (SELECT coalesce(sum(i.tokens), 0) FROM threadline_items AS i
        WHERE i.skey = $1 AND i.seq >= $2) AS tail_tokens,
    (SELECT i.data FROM threadline_items AS i WHERE i.skey = $1 AND i.seq = $2 - 1) AS anchor,
    (SELECT r.data FROM threadline_records AS r WHERE r.skey = $1 AND r.key = $5) AS record,
    w.seqs, w.kinds, w.call_ids, w.tokens, w.datas
FROM threadline_sessions AS s CROSS JOIN LATERAL (
    SELECT array_agg(c.seq ORDER BY c.seq DESC) AS seqs,
        array_agg(c.kind ORDER BY c.seq DESC) AS kinds,
        array_agg(c.call_id ORDER BY c.seq DESC) AS call_ids,
        array_agg(c.tokens ORDER BY c.seq DESC) AS tokens,
        array_agg(d.data ORDER BY c.seq DESC) AS datas
    FROM (
        SELECT seq, kind, call_id, tokens,
            sum(tokens) OVER (ORDER BY seq DESC ROWS UNBOUNDED PRECEDING) AS run
        FROM threadline_items WHERE skey = $1 AND seq >= $2 ORDER BY seq DESC LIMIT $3
    ) AS c JOIN threadline_items AS d ON d.skey = $1 AND d.seq = c.seq
    WHERE $4::bigint IS NULL OR c.run - c.tokens <= $4
) AS w
WHERE s.skey = $1
"""
_APPEND = "SELECT threadline_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
_FENCE = "SELECT threadline_check_fence($1, $2, $3)"
_TOUCH = "updated_at = threadline_now(), tick = nextval('threadline_tick')"


def session_key(session_id: str) -> bytes:
    """The key of ``session_id`` in every table: SHA-256 of its UTF-8 bytes (in SQL,
    ``sha256(convert_to(session_id, 'UTF8'))``)."""
    return hashlib.sha256(session_id.encode("utf-8")).digest()


def _vector(codec: ItemCodec, session_id: str, row: EncodedItem) -> str | None:
    """The ``tsvector`` literal of one item's words (``None`` when it has none)."""
    data = row.data if codec.plain_json else codec.open(session_id, row.data)
    item, _ = decode_problem(data)
    if item is None:
        return None
    text = search_text(item)
    if text is None:
        return None
    size = 0
    kept = []
    for word in sorted(word_set(text)):
        length = len(word.encode("utf-8"))
        if length > _MAX_LEXEME:
            continue
        size += length + 8
        if size > _MAX_VECTOR:
            break
        kept.append("'" + word + "'")  # words are letters and digits: nothing to escape
    return " ".join(kept) or None


def _status_count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 1``."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


def _fence_error(exc: BaseException, session_id: str) -> LeaseLostError | None:
    if getattr(exc, "sqlstate", None) == FENCE_SQLSTATE:
        return LeaseLostError(session_id, str(getattr(exc, "message", "") or exc))
    return None


class PostgresBackend(StoreBackend):
    """Rows and transactions of one PostgreSQL schema (see the module docstring)."""

    capabilities = frozenset(
        {"window", "pop_turn", "replace", "fork", "lease", "records", "search", "shared"}
    )

    def __init__(self, pools: Pools, codec: ItemCodec) -> None:
        super().__init__(codec)
        self.pools = pools

    @property
    def where(self) -> str:
        return self.pools.settings.where

    async def setup(self) -> None:
        await self.pools.pool(migrate=True)

    async def close(self) -> None:
        await self.pools.close()

    # ------------------------------------------------------------------ helpers

    async def _fenced(self, conn: Any, skey: bytes, session_id: str, fence: Fence | None) -> None:
        if fence is None:
            return
        import asyncpg

        try:
            await conn.execute(_FENCE, skey, fence.owner, fence.epoch)
        except asyncpg.PostgresError as exc:
            lost = _fence_error(exc, session_id)
            if lost is None:
                raise
            raise lost from None

    def _decode(self, session_id: str, rows: Sequence[Any]) -> list[Item]:
        """Items of ``rows`` (``(seq, data)`` pairs, oldest first); a corrupt one raises."""
        if not rows:
            return []
        codec = self.codec
        with gc_paused(len(rows) > _GC_PAUSE_ABOVE):
            if codec.plain_json:
                try:
                    text = _SEPARATOR.join([row[-1] for row in rows]).decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                if text is not None:
                    values = decode_joined(text, len(rows))
                    if values is not None:
                        return values
            items = []
            for row in rows:
                item, problem = decode_payload(codec, session_id, row[-1])
                if item is None:
                    raise CorruptItemError(session_id, int(row[0]), problem)
                items.append(item)
            return items

    def _append_args(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        batch: uuid.UUID,
        records: Mapping[str, Payload | None] | None = None,
    ) -> tuple[Any, ...]:
        codec = self.codec
        searchable = codec.searchable
        keys, payloads = _record_args(records)
        return (
            session_key(session_id),
            session_id.encode("utf-8"),
            None if fence is None else fence.owner,
            None if fence is None else fence.epoch,
            batch,
            False,
            [row.kind for row in rows],
            [None if row.call_id is None else row.call_id.encode("utf-8") for row in rows],
            [row.tokens for row in rows],
            [row.data.encode("utf-8") if isinstance(row.data, str) else row.data for row in rows],
            [_vector(codec, session_id, row) if searchable else None for row in rows],
            keys,
            payloads,
        )

    # ------------------------------------------------------------------ one session's items

    async def append(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        import asyncpg

        args = self._append_args(session_id, rows, fence, uuid.uuid4(), records)

        async def run(conn: Any, attempt: int) -> None:
            try:
                await conn.execute(_APPEND, *args[:5], attempt > 0, *args[6:])
            except asyncpg.PostgresError as exc:
                if getattr(exc, "sqlstate", None) == _DUPLICATE_SQLSTATE:
                    return  # the first attempt was stored before its connection dropped
                lost = _fence_error(exc, session_id)
                if lost is None:
                    raise
                raise lost from None

        await self.pools.run(run, retry=True, what=f"appending to session {session_id!r}")

    async def read(self, session_id: str, limit: int | None) -> list[Item]:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> list[Item]:
            if limit is not None and limit <= _CHUNK:
                rows = await conn.fetch(_NEWEST, skey, _TOP, limit)
                rows.reverse()
                return self._decode(session_id, rows)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await self._read_chunks(conn, skey, session_id, limit)

        return await self.pools.run(run, retry=True, what=f"reading session {session_id!r}")

    async def _read_chunks(
        self, conn: Any, skey: bytes, session_id: str, limit: int | None
    ) -> list[Item]:
        chunks: list[list[Any]] = []
        below = _TOP
        got = 0
        while limit is None or got < limit:
            size = _CHUNK if limit is None else min(_CHUNK, limit - got)
            rows = await conn.fetch(_NEWEST, skey, below, size)
            if rows:
                chunks.append(rows)
                got += len(rows)
                below = rows[-1][0]
            if len(rows) < size:
                break
        ordered = [row for chunk in reversed(chunks) for row in reversed(chunk)]
        return self._decode(session_id, ordered)

    async def window(
        self, session_id: str, max_items: int | None, max_tokens: int | None
    ) -> list[Item]:
        if max_items is None and max_tokens is None:
            return await self.read(session_id, None)
        skey = session_key(session_id)

        def choose(rows: list[Any]) -> list[Item]:
            return self._choose(session_id, rows, max_items, max_tokens)

        def spent(rows: list[Any]) -> bool:
            return _spent(rows, max_tokens)

        async def run(conn: Any, attempt: int) -> list[Item]:
            asked = max_items + 1 if max_items is not None else _WINDOW_CHUNK
            rows = await conn.fetch(_NEWEST, skey, _TOP, asked)
            if max_items is not None or len(rows) < asked or spent(rows):
                return choose(rows)
            # A token budget wider than one chunk: read on, newest first, in one snapshot.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                rows = []
                below = _TOP
                while True:
                    chunk = await conn.fetch(_NEWEST, skey, below, asked)
                    rows.extend(chunk)
                    if len(chunk) < asked or spent(rows):
                        return choose(rows)
                    below = chunk[-1][0]
                    asked = min(asked * 4, _CHUNK)

        return await self.pools.run(run, retry=True, what=f"reading session {session_id!r}")

    async def window_since(
        self, session_id: str, start: int, max_items: int | None, max_tokens: int | None
    ) -> TailWindow:
        """The items from position ``start`` on in one statement (one round trip, one
        snapshot): index range scans from ``seq = start``, decoding only the window."""
        skey = session_key(session_id)
        args = _since_args(skey, start, max_items, max_tokens)

        async def run(conn: Any, attempt: int) -> TailWindow:
            row = await conn.fetchrow(_SINCE, *args, None)
            return self._tail_window(session_id, start, max_items, max_tokens, row)

        return await self.pools.run(run, retry=True, what=f"reading session {session_id!r}")

    async def window_after_record(
        self,
        session_id: str,
        key: str,
        max_items: int | None,
        max_tokens: int | None,
        start_for: Callable[[Payload], tuple[int, int | None, int | None] | None],
    ) -> tuple[Payload | None, list[Item] | TailWindow]:
        """The record, then the tail window it asks for; the tail read also returns the
        record as of its own snapshot and is planned again if the record changed in
        between, so the pair is always one consistent state (two round trips). Without the
        record, the first statement also read the plain window (one round trip; a token
        budget wider than what it read reads on through :meth:`window`)."""
        skey = session_key(session_id)
        asked = max_items + 1 if max_items is not None else _WINDOW_CHUNK
        plain: list[list[Item]] = []  # the plain window, when the first statement was it

        async def run(conn: Any, attempt: int) -> tuple[Payload | None, TailWindow | None]:
            # (payload, None): no plan, the plain window follows (as the default reads it)
            plain.clear()
            rows = await conn.fetch(_RECORD_OR_NEWEST, skey, _TOP, asked, key)
            if not rows or rows[0][0] is not None:  # no record: rows is the newest window
                rows = list(rows)
                if max_items is not None or len(rows) < asked or _spent(rows, max_tokens):
                    plain.append(self._choose(session_id, rows, max_items, max_tokens))
                return None, None
            found = rows[0][4]
            for _ in range(_REPLANS):
                payload = None if found is None else bytes(found)
                plan = None if payload is None else start_for(payload)
                if plan is None:
                    return payload, None
                row = await conn.fetchrow(_SINCE, *_since_args(skey, *plan), key)
                now = None if row is None else row["record"]
                if row is None or (now is not None and bytes(now) == payload):
                    return payload, self._tail_window(session_id, *plan, row)
                found = now  # a writer changed the record between the two reads
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                found = await conn.fetchval(_RECORD, skey, key)
                payload = None if found is None else bytes(found)
                plan = None if payload is None else start_for(payload)
                if plan is None:
                    return payload, None
                row = await conn.fetchrow(_SINCE, *_since_args(skey, *plan), key)
                return payload, self._tail_window(session_id, *plan, row)

        payload, tail = await self.pools.run(
            run, retry=True, what=f"reading session {session_id!r}"
        )
        if tail is not None:
            return payload, tail
        if plain:
            return payload, plain[0]
        return payload, await self.window(session_id, max_items, max_tokens)

    def _choose(
        self, session_id: str, rows: list[Any], max_items: int | None, max_tokens: int | None
    ) -> list[Item]:
        """The window of ``rows`` (``(seq, kind, call_id, tokens, data)``, newest first)."""
        size = window_size(((r[1], r[2], r[3]) for r in rows), max_items, max_tokens)
        taken = rows[:size]
        taken.reverse()
        return self._decode(session_id, [(r[0], r[4]) for r in taken])

    def _tail_window(
        self,
        session_id: str,
        start: int,
        max_items: int | None,
        max_tokens: int | None,
        row: Any,
    ) -> TailWindow:
        """The :class:`TailWindow` of one :data:`_SINCE` row (``None``: no such session)."""
        if row is None:
            return TailWindow(0, None, [], 0)
        count = int(row["item_count"])
        if start > count:
            return TailWindow(count, None, [], 0)
        seqs = row["seqs"] or []
        if max_items is None and max_tokens is None:
            size = len(seqs)
        elif max_items == 0 or max_tokens == 0:
            size = 0
        else:
            metas = (
                zip(row["kinds"], row["call_ids"], row["tokens"], strict=True) if seqs else iter(())
            )
            size = window_size(metas, max_items, max_tokens)
        anchor = None
        if row["anchor"] is not None:
            anchor = self._decode(session_id, [(start - 1, row["anchor"])])[0]
        taken = [(seqs[i], row["datas"][i]) for i in range(size - 1, -1, -1)]
        return TailWindow(count, anchor, self._decode(session_id, taken), int(row["tail_tokens"]))

    async def pop(self, session_id: str, fence: Fence | None) -> Item | None:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> Item | None:
            async with conn.transaction():
                await self._fenced(conn, skey, session_id, fence)
                count = await conn.fetchval(
                    "SELECT item_count FROM threadline_sessions WHERE skey = $1 FOR UPDATE", skey
                )
                if not count:
                    return None
                row = await conn.fetchrow(
                    "SELECT seq, data FROM threadline_items WHERE skey = $1 "
                    "ORDER BY seq DESC LIMIT 1",
                    skey,
                )
                if row is None:
                    return None
                item = self._decode(session_id, [row])[0]
                await conn.execute(
                    "DELETE FROM threadline_items WHERE skey = $1 AND seq = $2", skey, row[0]
                )
                await conn.execute(
                    f"UPDATE threadline_sessions SET item_count = $2, {_TOUCH} WHERE skey = $1",
                    skey,
                    row[0],
                )
                return item

        return await self.pools.run(run, retry=False, what=f"popping from session {session_id!r}")

    async def pop_turn(self, session_id: str, fence: Fence | None) -> list[Item]:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> list[Item]:
            async with conn.transaction():
                await self._fenced(conn, skey, session_id, fence)
                count = await conn.fetchval(
                    "SELECT item_count FROM threadline_sessions WHERE skey = $1 FOR UPDATE", skey
                )
                if not count:
                    return []
                start = await conn.fetchval(
                    "SELECT seq FROM threadline_items WHERE skey = $1 AND kind = $2 "
                    "ORDER BY seq DESC LIMIT 1",
                    skey,
                    KIND_USER,
                )
                if start is None:
                    return []
                rows = await conn.fetch(
                    "SELECT seq, data FROM threadline_items WHERE skey = $1 AND seq >= $2 "
                    "ORDER BY seq",
                    skey,
                    start,
                )
                items = self._decode(session_id, rows)
                await conn.execute(
                    "DELETE FROM threadline_items WHERE skey = $1 AND seq >= $2", skey, start
                )
                await conn.execute(
                    f"UPDATE threadline_sessions SET item_count = $2, {_TOUCH} WHERE skey = $1",
                    skey,
                    start,
                )
                return items

        return await self.pools.run(
            run, retry=False, what=f"popping the last turn of session {session_id!r}"
        )

    async def replace(
        self, session_id: str, rows: Sequence[EncodedItem], fence: Fence | None
    ) -> None:
        skey = session_key(session_id)
        args = self._append_args(session_id, rows, None, uuid.uuid4()) if rows else None

        async def run(conn: Any, attempt: int) -> None:
            async with conn.transaction():
                await self._fenced(conn, skey, session_id, fence)
                await conn.execute(
                    "INSERT INTO threadline_sessions AS s "
                    "(skey, session_id, item_count, created_at, updated_at, tick) "
                    "VALUES ($1, $2, 0, threadline_now(), threadline_now(), "
                    "nextval('threadline_tick')) "
                    f"ON CONFLICT (skey) DO UPDATE SET item_count = 0, {_TOUCH}",
                    skey,
                    session_id.encode("utf-8"),
                )
                await conn.execute("DELETE FROM threadline_items WHERE skey = $1", skey)
                if args is not None:
                    await conn.execute(_APPEND, *args)

        await self.pools.run(run, retry=True, what=f"replacing session {session_id!r}")

    async def clear(self, session_id: str, fence: Fence | None) -> None:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> None:
            async with conn.transaction():
                await self._fenced(conn, skey, session_id, fence)
                status = await conn.execute(
                    f"UPDATE threadline_sessions SET item_count = 0, {_TOUCH} WHERE skey = $1",
                    skey,
                )
                if _status_count(status):
                    await conn.execute("DELETE FROM threadline_items WHERE skey = $1", skey)

        await self.pools.run(run, retry=True, what=f"clearing session {session_id!r}")

    async def fork(self, session_id: str, new_session_id: str, at: int | None) -> None:
        source, target = session_key(session_id), session_key(new_session_id)

        async def run(conn: Any, attempt: int) -> None:
            async with conn.transaction():
                count = await self._fork_count(conn, session_id, new_session_id, at)
                if count == 0:
                    return
                await conn.execute(
                    "INSERT INTO threadline_items "
                    "(skey, seq, kind, call_id, tokens, data, batch, search) "
                    "SELECT $1, seq, kind, call_id, tokens, data, NULL, search "
                    "FROM threadline_items WHERE skey = $2 AND seq < $3",
                    target,
                    source,
                    count,
                )

        await self.pools.run(run, retry=False, what=f"forking session {session_id!r}")

    async def fork_resealed(
        self,
        session_id: str,
        new_session_id: str,
        at: int | None,
        reseal: Callable[[Payload], Payload],
    ) -> int:
        """:meth:`fork` in one transaction with each payload passed through ``reseal``; the
        rows keep their kind, call id, token count and words."""
        source, target = session_key(session_id), session_key(new_session_id)
        codec = self.codec

        async def run(conn: Any, attempt: int) -> int:
            async with conn.transaction():
                count = await self._fork_count(conn, session_id, new_session_id, at)
                if count == 0:
                    return 0
                rows = await conn.fetch(
                    "SELECT seq, data FROM threadline_items WHERE skey = $1 AND seq < $2 "
                    "ORDER BY seq",
                    source,
                    count,
                )
                sealed = []
                for seq, data in rows:
                    try:
                        payload = reseal(bytes(data))
                    except ValueError as exc:
                        raise CorruptItemError(
                            session_id, int(seq), f"the {codec.name} codec cannot open it: {exc}"
                        ) from None
                    sealed.append(payload.encode("utf-8") if isinstance(payload, str) else payload)
                await conn.execute(
                    "INSERT INTO threadline_items "
                    "(skey, seq, kind, call_id, tokens, data, batch, search) "
                    "SELECT $1, i.seq, i.kind, i.call_id, i.tokens, t.data, NULL, i.search "
                    "FROM unnest($3::bigint[], $4::bytea[]) AS t(seq, data) "
                    "JOIN threadline_items AS i ON i.skey = $2 AND i.seq = t.seq",
                    target,
                    source,
                    [row[0] for row in rows],
                    sealed,
                )
                return count

        return await self.pools.run(run, retry=False, what=f"forking session {session_id!r}")

    async def _fork_count(
        self, conn: Any, session_id: str, new_session_id: str, at: int | None
    ) -> int:
        """Inside a fork's transaction: check the target is empty and the cut is allowed,
        create (or reset) the target with the copied count; returns that count."""
        source, target = session_key(session_id), session_key(new_session_id)

        def occupied(count: int) -> UserError:
            return UserError(
                f"cannot fork session {session_id!r} into {new_session_id!r}: that session "
                f"already holds {count} items; clear it first or pick a new id"
            )

        held = await conn.fetchval(
            "SELECT item_count FROM threadline_sessions WHERE skey = $1 FOR UPDATE", target
        )
        if held:
            raise occupied(held)
        total = await conn.fetchval(
            "SELECT item_count FROM threadline_sessions WHERE skey = $1 FOR SHARE", source
        )
        count = 0 if not total else total if at is None else min(at, total)
        if count == 0:
            return 0
        if count < total:
            pairs = await conn.fetch(
                "SELECT seq, kind, call_id FROM threadline_items WHERE skey = $1 "
                "AND kind = ANY($2::smallint[]) ORDER BY seq",
                source,
                [KIND_CALL, KIND_OUTPUT],
            )
            check_fork_cut(session_id, count, ((p[0], p[1], _text(p[2])) for p in pairs))
        made = await conn.fetchval(
            "INSERT INTO threadline_sessions AS s "
            "(skey, session_id, item_count, created_at, updated_at, tick) "
            "VALUES ($1, $2, $3, threadline_now(), threadline_now(), "
            "nextval('threadline_tick')) "
            f"ON CONFLICT (skey) DO UPDATE SET item_count = $3, {_TOUCH} "
            "WHERE s.item_count = 0 RETURNING 1",
            target,
            new_session_id.encode("utf-8"),
            count,
        )
        if made is None:
            raise occupied(
                await conn.fetchval(
                    "SELECT item_count FROM threadline_sessions WHERE skey = $1", target
                )
            )
        return int(count)

    # ------------------------------------------------------------------ session records

    async def get_record(self, session_id: str, key: str) -> Payload | None:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> Payload | None:
            found = await conn.fetchval(
                "SELECT data FROM threadline_records WHERE skey = $1 AND key = $2", skey, key
            )
            return None if found is None else bytes(found)

        return await self.pools.run(run, retry=True, what=f"reading a record of {session_id!r}")

    async def list_records(self, session_id: str, prefix: str) -> list[tuple[str, Payload]]:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> list[tuple[str, Payload]]:
            rows = await conn.fetch(
                "SELECT key, data FROM threadline_records WHERE skey = $1 AND key >= $2 "
                "AND starts_with(key, $2) ORDER BY key",
                skey,
                prefix,
            )
            return [(str(row[0]), bytes(row[1])) for row in rows]

        return await self.pools.run(run, retry=True, what=f"listing the records of {session_id!r}")

    async def put_records(
        self, session_id: str, records: Mapping[str, Payload | None], fence: Fence | None
    ) -> None:
        skey = session_key(session_id)
        keys, payloads = _record_args(records)
        writes = any(value is not None for value in records.values())

        async def run(conn: Any, attempt: int) -> None:
            async with conn.transaction():
                await self._fenced(conn, skey, session_id, fence)
                if writes:
                    await conn.execute(
                        "INSERT INTO threadline_sessions "
                        "(skey, session_id, item_count, created_at, updated_at, tick) "
                        "VALUES ($1, $2, 0, threadline_now(), threadline_now(), "
                        "nextval('threadline_tick')) ON CONFLICT (skey) DO NOTHING",
                        skey,
                        session_id.encode("utf-8"),
                    )
                await conn.execute(
                    "SELECT threadline_put_records($1, $2, $3)", skey, keys, payloads
                )

        await self.pools.run(run, retry=True, what=f"writing records of {session_id!r}")

    # ------------------------------------------------------------------ the store

    async def delete(self, session_id: str) -> bool:
        skey = session_key(session_id)
        sent: list[tuple[int, bool]] = []  # (transaction id, found) of a try that got that far

        async def run(conn: Any, attempt: int) -> bool:
            if sent:
                # An earlier try's connection dropped after its delete ran: the server says
                # whether that transaction committed (the answer to COMMIT may be what was
                # lost). If it did, its answer is the answer, and nothing is deleted again (a
                # session made since then stays).
                committed = await _transaction_committed(conn, sent[-1][0], self.where)
                if committed:
                    return sent[-1][1]
            async with conn.transaction():
                found, xid = await conn.fetchrow(
                    "WITH gone AS (DELETE FROM threadline_sessions WHERE skey = $1 RETURNING 1) "
                    "SELECT EXISTS (SELECT 1 FROM gone), txid_current()",
                    skey,
                )
                sent.append((xid, found))
                await conn.execute("DELETE FROM threadline_items WHERE skey = $1", skey)
                await conn.execute("DELETE FROM threadline_records WHERE skey = $1", skey)
                await conn.execute(
                    "DELETE FROM threadline_leases WHERE skey = $1 "
                    "AND (owner = '' OR expires_at < threadline_now())",
                    skey,
                )
                return bool(found)

        return await self.pools.run(run, retry=True, what=f"deleting session {session_id!r}")

    async def list_sessions(
        self, limit: int | None, after: str | None
    ) -> tuple[list[SessionInfo], str | None]:
        below = _tick_cursor(after)

        async def run(conn: Any, attempt: int) -> list[Any]:
            sql = (
                "SELECT session_id, item_count, created_at, updated_at, tick "
                "FROM threadline_sessions WHERE tick < $1 ORDER BY tick DESC"
            )
            if limit is None:
                return list(await conn.fetch(sql, below))
            return list(await conn.fetch(sql + " LIMIT $2", below, limit + 1))

        rows = await self.pools.run(run, retry=True, what="listing sessions")
        more = limit is not None and len(rows) > limit
        page = rows[:limit] if limit is not None else rows
        infos = [SessionInfo.from_timestamps(_text(r[0]), int(r[1]), r[2], r[3]) for r in page]
        return infos, (f"t{page[-1][4]}" if more and page else None)

    async def list_sessions_with_record(
        self,
        limit: int | None,
        after: str | None,
        key: str,
        select: Callable[[str, Payload | None], Any],
    ) -> tuple[list[tuple[SessionInfo, Any]], str | None]:
        """The listing joined with each session's record ``key``, read along the listing
        index in pages of one snapshot until ``limit`` sessions were selected."""
        below = _tick_cursor(after)
        if limit == 0:
            return [], None
        sql = (
            "SELECT s.session_id, s.item_count, s.created_at, s.updated_at, s.tick, r.data "
            "FROM threadline_sessions AS s LEFT JOIN threadline_records AS r "
            "ON r.skey = s.skey AND r.key = $2 WHERE s.tick < $1 ORDER BY s.tick DESC"
        )
        prefetch = _CHUNK if limit is None else max(1, min(limit + 1, _CHUNK))

        async def run(conn: Any, attempt: int) -> tuple[list[tuple[SessionInfo, Any]], str | None]:
            found: list[tuple[SessionInfo, Any]] = []
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                rows = conn.cursor(sql, below, key, prefetch=prefetch)
                async for raw_id, count, created, updated, tick, data in rows:
                    session_id = _text(raw_id)
                    selected = select(session_id, None if data is None else bytes(data))
                    if selected is None:
                        continue
                    info = SessionInfo.from_timestamps(session_id, int(count), created, updated)
                    found.append((info, selected))
                    if limit is not None and len(found) >= limit:
                        more = await conn.fetchval(
                            "SELECT 1 FROM threadline_sessions WHERE tick < $1 LIMIT 1", tick
                        )
                        return found, (f"t{tick}" if more else None)
            return found, None

        return await self.pools.run(run, retry=True, what="listing sessions")

    async def user_positions(self, session_id: str) -> list[int]:
        """The user messages' positions from the ``kind`` column (no payload is read)."""
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> list[int]:
            rows = await conn.fetch(
                "SELECT seq FROM threadline_items WHERE skey = $1 AND kind = $2 ORDER BY seq",
                skey,
                KIND_USER,
            )
            return [int(row[0]) for row in rows]

        return await self.pools.run(run, retry=True, what=f"reading session {session_id!r}")

    async def read_oldest(self, session_id: str, limit: int) -> list[Item]:
        """The oldest ``limit`` items: a forward range scan of the primary key."""
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> list[Item]:
            if limit <= _CHUNK:
                rows = await conn.fetch(_OLDEST, skey, -1, limit)
                return self._decode(session_id, rows)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                rows = await self._oldest_rows(conn, skey, limit)
            return self._decode(session_id, rows)

        return await self.pools.run(run, retry=True, what=f"reading session {session_id!r}")

    async def read_json(self, session_id: str) -> list[str]:
        """The stored JSON texts as they are, when the codec is plain JSON and every row is
        one JSON object on one line; otherwise (or for another codec) the generic way, which
        names a corrupt row."""
        if not self.codec.plain_json:
            return await super().read_json(session_id)
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> list[str] | None:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                rows = await self._oldest_rows(conn, skey, None)
            if not rows:
                return []
            with gc_paused(len(rows) > _GC_PAUSE_ABOVE):
                try:
                    text = _SEPARATOR.join([row[-1] for row in rows]).decode("utf-8")
                except UnicodeDecodeError:
                    return None
                if "\n" in text or decode_joined(text, len(rows)) is None:
                    return None  # (compact JSON never holds a raw line feed)
                return text.split(ROW_SEPARATOR)

        texts = await self.pools.run(run, retry=True, what=f"reading session {session_id!r}")
        return await super().read_json(session_id) if texts is None else texts

    async def _oldest_rows(self, conn: Any, skey: bytes, limit: int | None) -> list[Any]:
        """``(seq, data)`` rows oldest first, in chunks (call inside a snapshot)."""
        rows: list[Any] = []
        above = -1
        while limit is None or len(rows) < limit:
            size = _CHUNK if limit is None else min(_CHUNK, limit - len(rows))
            chunk = await conn.fetch(_OLDEST, skey, above, size)
            rows.extend(chunk)
            if len(chunk) < size:
                break
            above = chunk[-1][0]
        return rows

    async def session_info(self, session_id: str) -> SessionInfo | None:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> Any:
            return await conn.fetchrow(
                "SELECT session_id, item_count, created_at, updated_at FROM threadline_sessions "
                "WHERE skey = $1",
                skey,
            )

        row = await self.pools.run(run, retry=True, what=f"reading session {session_id!r}")
        if row is None:
            return None
        return SessionInfo.from_timestamps(_text(row[0]), int(row[1]), row[2], row[3])

    async def search(
        self, terms: Sequence[str], limit: int, session_id: str | None
    ) -> list[SearchHit]:
        for term in terms:
            if len(term.encode("utf-8")) > _MAX_LEXEME:
                raise UserError(
                    f"a search word of {len(term.encode('utf-8'))} bytes is longer than the "
                    f"{_MAX_LEXEME} bytes a PostgreSQL store indexes: search for shorter words"
                )
        query = " & ".join("'" + term + "'" for term in terms)
        sql = (
            "SELECT s.session_id, i.seq, i.data FROM threadline_items AS i "
            "JOIN threadline_sessions AS s ON s.skey = i.skey "
            "WHERE i.search @@ $1::tsquery"
        )
        params: list[Any] = [query]
        if session_id is not None:
            sql += " AND i.skey = $2"
            params.append(session_key(session_id))
        n = len(params)
        sql += (
            f" ORDER BY ts_rank(i.search, $1::tsquery) DESC, s.tick DESC, i.seq DESC "
            f"LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        batch = limit + 16

        async def run(conn: Any, attempt: int) -> list[SearchHit]:
            hits: list[SearchHit] = []
            offset = 0
            while len(hits) < limit:
                rows = await conn.fetch(sql, *params, batch, offset)
                for raw_id, seq, data in rows:
                    sid = _text(raw_id)
                    item, problem = decode_payload(self.codec, sid, data)
                    if item is None:
                        raise CorruptItemError(sid, int(seq), problem)
                    text = search_text(item)
                    if text is None or not matches(text, terms):
                        continue
                    hits.append(SearchHit(sid, int(seq), make_snippet(text, terms), item))
                    if len(hits) == limit:
                        break
                if len(rows) < batch:
                    break
                offset += batch
            return hits

        return await self.pools.run(run, retry=True, what="searching")

    async def stats(self) -> StoreStats:
        async def run(conn: Any, attempt: int) -> Any:
            return await conn.fetchrow(
                "SELECT count(*), coalesce(sum(item_count), 0) FROM threadline_sessions"
            )

        row = await self.pools.run(run, retry=True, what="counting sessions")
        settings = self.pools.settings
        details = {"backend": "postgresql", "server": settings.where, "schema": settings.schema}
        return StoreStats(int(row[0]), int(row[1]), details)

    # ------------------------------------------------------------------ lease primitives

    async def lease_acquire(self, session_id: str, owner: str, ttl: float) -> LeaseGrant:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> LeaseGrant:
            while True:
                row = await conn.fetchrow(
                    "SELECT * FROM threadline_lease_acquire($1, $2, $3)", skey, owner, ttl
                )
                if row is None:  # the row was deleted between the two steps: try again
                    continue
                if row[0]:
                    return LeaseGrant(True, int(row[1]))
                return LeaseGrant(False, int(row[1]), str(row[2]), max(0.0, float(row[3])))

        return await self.pools.run(
            run, retry=True, what=f"taking the lease of session {session_id!r}"
        )

    async def pairing_summary(self, session_ids: Sequence[str]) -> dict[str, PairingSummary]:
        if not session_ids:
            return {}
        by_key = {session_key(session_id): session_id for session_id in session_ids}
        keys = list(by_key)

        async def run(conn: Any, attempt: int) -> tuple[list[Any], list[Any]]:
            present = await conn.fetch(
                "SELECT skey FROM threadline_sessions WHERE skey = ANY($1::bytea[])", keys
            )
            odd = await conn.fetch(
                "SELECT i.skey, i.seq, i.kind, i.call_id FROM threadline_items AS i JOIN ("
                "  SELECT skey, call_id FROM threadline_items"
                "  WHERE skey = ANY($1::bytea[]) AND kind IN ($2, $3)"
                "  GROUP BY skey, call_id"
                "  HAVING count(*) FILTER (WHERE kind = $2) <> count(*) FILTER (WHERE kind = $3)"
                "  OR min(seq) FILTER (WHERE kind = $3) < min(seq) FILTER (WHERE kind = $2)"
                ") AS o ON i.skey = o.skey AND i.call_id IS NOT DISTINCT FROM o.call_id"
                " WHERE i.kind IN ($2, $3) ORDER BY i.skey, i.seq",
                keys,
                KIND_CALL,
                KIND_OUTPUT,
            )
            return list(present), list(odd)

        present, odd = await self.pools.run(run, retry=True, what="reading call pairings")
        walked: dict[bytes, list[tuple[int, Any]]] = {bytes(row[0]): [] for row in present}
        for row in odd:
            walked.setdefault(bytes(row[0]), []).append((int(row[2]), row[3]))
        return {
            by_key[skey]: pairing_of(by_key[skey], rows)
            for skey, rows in walked.items()
            if skey in by_key
        }

    async def lease_holders(self, session_ids: Sequence[str]) -> dict[str, LeaseHolder]:
        if not session_ids:
            return {}
        by_key = {session_key(session_id): session_id for session_id in session_ids}

        async def run(conn: Any, attempt: int) -> list[Any]:
            return list(
                await conn.fetch(
                    "SELECT skey, owner, epoch, expires_at FROM threadline_leases "
                    "WHERE skey = ANY($1::bytea[]) AND owner <> '' "
                    "AND expires_at > threadline_now()",
                    list(by_key),
                )
            )

        rows = await self.pools.run(run, retry=True, what="reading lease holders")
        found: dict[str, LeaseHolder] = {}
        for row in rows:
            session_id = by_key.get(bytes(row[0]))
            if session_id is not None:
                found[session_id] = LeaseHolder(session_id, str(row[1]), int(row[2]), float(row[3]))
        return found

    async def lease_renew(self, session_id: str, fence: Fence, ttl: float) -> bool:
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> bool:
            kept = await conn.fetchval(
                "SELECT threadline_lease_renew($1, $2, $3, $4)", skey, fence.owner, fence.epoch, ttl
            )
            return bool(kept)

        return await self.pools.run(
            run, retry=True, what=f"renewing the lease of session {session_id!r}"
        )

    async def lease_release(self, session_id: str, fence: Fence) -> None:
        if self.pools.closed:
            return  # the lease expires after its ttl
        skey = session_key(session_id)

        async def run(conn: Any, attempt: int) -> None:
            await conn.execute(
                "SELECT threadline_lease_release($1, $2, $3)", skey, fence.owner, fence.epoch
            )

        await self.pools.run(run, retry=True, what=f"releasing the lease of session {session_id!r}")


def _spent(rows: Sequence[Any], max_tokens: int | None) -> bool:
    """Whether ``rows`` (newest first) hold more tokens than the budget."""
    return max_tokens is not None and sum(r[3] for r in rows) > max_tokens


def _record_args(
    records: Mapping[str, Payload | None] | None,
) -> tuple[list[str] | None, list[bytes | None] | None]:
    """The keys and payloads (``None``: delete) of a records write, as SQL arrays."""
    if not records:
        return None, None
    keys = list(records)
    payloads = [
        None if value is None else value.encode("utf-8") if isinstance(value, str) else value
        for value in records.values()
    ]
    return keys, payloads


def _since_args(
    skey: bytes, start: int, max_items: int | None, max_tokens: int | None
) -> tuple[Any, ...]:
    """The first four parameters of :data:`_SINCE` for these budgets."""
    if max_items == 0 or max_tokens == 0:
        return skey, start, 0, None
    return skey, start, None if max_items is None else max_items + 1, max_tokens


def _text(value: bytes | None) -> Any:
    """A stored UTF-8 column (session id, call id) as text."""
    return None if value is None else bytes(value).decode("utf-8")


def _tick_cursor(after: str | None) -> int:
    if after is None:
        return _TOP
    if not after.startswith("t") or not after[1:].isdigit():
        raise UserError(f"after={after!r} is not a cursor of this store: pass a page's next_cursor")
    return int(after[1:])


async def _transaction_committed(conn: Any, xid: int, where: str) -> bool:
    """Whether the transaction ``xid`` committed; waits while it is still in progress (a
    server that has not yet noticed its client's connection drop ends it soon)."""
    import asyncio

    for _ in range(200):
        status = await conn.fetchval("SELECT txid_status($1)", xid)
        if status != "in progress":
            return bool(status == "committed")
        await asyncio.sleep(0.05)
    raise StoreUnavailableError(
        f"an earlier attempt of a delete (transaction {xid}) is still running on the PostgreSQL "
        f"server {where} 10 s after its connection dropped: list the sessions to see whether it "
        "was deleted, then delete it again",
        server=where,
    )
