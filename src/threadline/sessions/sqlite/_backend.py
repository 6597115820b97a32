"""The SQLite backend: each backend method is one job on the engine's threads.

Writes go to the writer thread (group commit, one savepoint each), reads to the reader
threads; the SQL is in :mod:`._ops`. Lease bookkeeping commits without an fsync
(``durable=False``), a run's input commits without waiting for its fsync, which the writer
makes right after (``durable="soon"``), and the lease heartbeat runs on the writer thread, so
a busy event loop cannot starve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import UserError
from ...items import Item
from ..backend import (
    Fence,
    LeaseGrant,
    LeaseHolder,
    PairingSummary,
    Payload,
    ReadPlan,
    SearchHit,
    StartRead,
    StoreBackend,
    StoreStats,
    TailWindow,
)
from ..base import SessionInfo
from ..codec import EncodedItem, ItemCodec
from . import _ops as ops
from . import _search
from ._engine import Durability, SQLiteEngine

__all__ = ["SQLiteBackend"]


class SQLiteBackend(StoreBackend):
    """Rows and transactions of one SQLite database (see :class:`SQLiteEngine`)."""

    INDEX_BATCH = 1000
    """Items this process writes before it asks the writer thread to bring the search index
    up to date at its next quiet moment (a search always does, in its own transaction)."""

    INDEX_STEP = 500
    """Items one quiet-moment step of the search index catch-up indexes at most."""

    def __init__(self, engine: SQLiteEngine, codec: ItemCodec) -> None:
        super().__init__(codec)
        self.engine = engine
        self._unindexed = 0
        offered = {"window", "pop_turn", "replace", "fork", "lease", "records", "search"}
        if not engine.memory:
            offered.add("shared")  # a file: other stores and processes may open it too
        self.capabilities = frozenset(offered)

    @property
    def where(self) -> str:
        return self.engine.where

    async def setup(self) -> None:
        await self.engine.write(_noop)

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.close)

    # ------------------------------------------------------------------ one session's items

    async def append(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        await self._append(session_id, rows, fence, records, durable=True)

    async def append_input(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        # committed without waiting for its fsync, which the writer makes right after
        await self._append(session_id, rows, fence, records, durable="soon")

    async def append_and_release(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        # one job: the rows, the records and the release in one transaction, one commit
        await self.engine.write(
            functools.partial(
                ops.add_and_release, session_id=session_id, rows=rows, fence=fence, records=records
            )
        )

    async def _append(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None,
        durable: Durability,
    ) -> None:
        await self.engine.write(
            functools.partial(
                ops.add, session_id=session_id, rows=rows, fence=fence, records=records
            ),
            durable=durable,
        )
        if self.codec.searchable:
            self._unindexed += len(rows)
            if self._unindexed >= self.INDEX_BATCH:
                self._unindexed = 0
                self._index_when_idle()

    def _index_when_idle(self) -> None:
        """Bring the search index up to date in small steps at the writer's quiet moments
        (never in a burst of writes; one step is a few milliseconds of work)."""

        def step(conn: Any) -> None:
            if not _search.catch_up(conn, self.codec, budget=self.INDEX_STEP):
                self.engine.when_idle("search-index", step)

        self.engine.when_idle("search-index", step)

    async def read(self, session_id: str, limit: int | None) -> list[Item]:
        single = limit is not None and limit <= ops.SINGLE_STATEMENT_LIMIT and self.codec.plain_json
        found: list[Item] | None = await self.engine.read(
            functools.partial(
                ops.read_newest, codec=self.codec, session_id=session_id, limit=limit
            ),
            snapshot=not single,
        )
        if found is None:  # a fork whose newest items reach into the rows it shares
            found = await self.engine.read(
                functools.partial(
                    ops.read_newest,
                    codec=self.codec,
                    session_id=session_id,
                    limit=limit,
                    single=False,
                )
            )
            assert found is not None
        return found

    async def window(
        self, session_id: str, max_items: int | None, max_tokens: int | None
    ) -> list[Item]:
        return await self.engine.read(
            functools.partial(
                ops.window,
                codec=self.codec,
                session_id=session_id,
                max_items=max_items,
                max_tokens=max_tokens,
            )
        )

    async def window_since(
        self, session_id: str, start: int, max_items: int | None, max_tokens: int | None
    ) -> TailWindow:
        return await self.engine.read(
            functools.partial(
                ops.window_since,
                codec=self.codec,
                session_id=session_id,
                start=start,
                max_items=max_items,
                max_tokens=max_tokens,
            )
        )

    async def window_after_record(
        self,
        session_id: str,
        key: str,
        max_items: int | None,
        max_tokens: int | None,
        start_for: Callable[[Payload], tuple[int, int | None, int | None] | None],
    ) -> tuple[Payload | None, list[Item] | TailWindow]:
        return await self.engine.read(
            functools.partial(
                ops.window_after_record,
                codec=self.codec,
                session_id=session_id,
                key=key,
                max_items=max_items,
                max_tokens=max_tokens,
                start_for=start_for,
            )
        )

    async def records_and_window_after_record(
        self,
        session_id: str,
        keys: Sequence[str],
        key: str,
        budget: Callable[[Mapping[str, Payload]], tuple[int | None, int | None]],
        start_for: Callable[
            [Payload, int | None, int | None], tuple[int, int | None, int | None] | None
        ],
    ) -> tuple[dict[str, Payload], Payload | None, list[Item] | TailWindow, int]:
        return await self.engine.read(
            functools.partial(
                ops.records_and_window_after_record,
                codec=self.codec,
                session_id=session_id,
                keys=keys,
                key=key,
                budget=budget,
                start_for=start_for,
            )
        )

    async def pop(self, session_id: str, fence: Fence | None) -> Item | None:
        return await self.engine.write(
            functools.partial(ops.pop, codec=self.codec, session_id=session_id, fence=fence)
        )

    async def pop_turn(self, session_id: str, fence: Fence | None) -> list[Item]:
        return await self.engine.write(
            functools.partial(ops.pop_turn, codec=self.codec, session_id=session_id, fence=fence)
        )

    async def replace(
        self, session_id: str, rows: Sequence[EncodedItem], fence: Fence | None
    ) -> None:
        await self.engine.write(
            functools.partial(
                ops.replace, codec=self.codec, session_id=session_id, rows=rows, fence=fence
            )
        )

    async def clear(self, session_id: str, fence: Fence | None) -> None:
        await self.engine.write(
            functools.partial(ops.clear, codec=self.codec, session_id=session_id, fence=fence)
        )

    async def fork(self, session_id: str, new_session_id: str, at: int | None) -> None:
        await self.engine.write(
            functools.partial(
                ops.fork,
                session_id=session_id,
                new_session_id=new_session_id,
                at=at,
                share=self.codec.plain_json,  # (a sealed payload belongs to one session)
            )
        )

    async def fork_resealed(
        self,
        session_id: str,
        new_session_id: str,
        at: int | None,
        reseal: Callable[[Payload], Payload],
    ) -> int:
        copied: int = await self.engine.write(
            functools.partial(
                ops.fork_resealed,
                codec=self.codec,
                session_id=session_id,
                new_session_id=new_session_id,
                at=at,
                reseal=reseal,
            )
        )
        return copied

    # ------------------------------------------------------------------ session records

    async def get_record(self, session_id: str, key: str) -> Payload | None:
        found: Payload | None = await self.engine.read(
            functools.partial(ops.get_record, session_id=session_id, key=key), snapshot=False
        )
        return found

    async def list_records(self, session_id: str, prefix: str) -> list[tuple[str, Payload]]:
        found: list[tuple[str, Payload]] = await self.engine.read(
            functools.partial(ops.list_records, session_id=session_id, prefix=prefix)
        )
        return found

    async def put_records(
        self, session_id: str, records: Mapping[str, Payload | None], fence: Fence | None
    ) -> None:
        await self.engine.write(
            functools.partial(ops.put_records, session_id=session_id, records=records, fence=fence)
        )

    # ------------------------------------------------------------------ the store

    async def delete(self, session_id: str) -> bool:
        deleted: bool = await self.engine.write(
            functools.partial(ops.delete, codec=self.codec, session_id=session_id)
        )
        return deleted

    async def list_sessions(
        self, limit: int | None, after: str | None
    ) -> tuple[list[SessionInfo], str | None]:
        position = None if after is None else _parse_cursor(after)
        rows, cursor = await self.engine.read(
            functools.partial(ops.list_sessions, limit=limit, after=position)
        )
        infos = [SessionInfo.from_timestamps(*row) for row in rows]
        return infos, None if cursor is None else f"{cursor[0]!r}:{cursor[1]}"

    async def list_sessions_with_record(
        self,
        limit: int | None,
        after: str | None,
        key: str,
        select: Callable[[str, Payload | None], Any],
    ) -> tuple[list[tuple[SessionInfo, Any]], str | None]:
        position = None if after is None else _parse_cursor(after)
        rows, cursor = await self.engine.read(
            functools.partial(
                ops.list_sessions_with_record, limit=limit, after=position, key=key, select=select
            )
        )
        page = [(SessionInfo.from_timestamps(*row), selected) for row, selected in rows]
        return page, None if cursor is None else f"{cursor[0]!r}:{cursor[1]}"

    async def user_positions(self, session_id: str) -> list[int]:
        found: list[int] = await self.engine.read(
            functools.partial(ops.user_positions, session_id=session_id)
        )
        return found

    async def read_json(self, session_id: str) -> list[str]:
        texts: list[str] | None = await self.engine.read(
            functools.partial(ops.read_json, codec=self.codec, session_id=session_id)
        )
        if texts is None:
            return await super().read_json(session_id)
        return texts

    async def read_oldest(self, session_id: str, limit: int) -> list[Item]:
        found: list[Item] = await self.engine.read(
            functools.partial(ops.read_oldest, codec=self.codec, session_id=session_id, limit=limit)
        )
        return found

    async def session_info(self, session_id: str) -> SessionInfo | None:
        row = await self.engine.read(
            functools.partial(ops.session_info, session_id=session_id), snapshot=False
        )
        return None if row is None else SessionInfo.from_timestamps(*row)

    async def search(
        self, terms: Sequence[str], limit: int, session_id: str | None
    ) -> list[SearchHit]:
        hits = await self.engine.write(
            functools.partial(
                _search.search, codec=self.codec, terms=terms, limit=limit, session_id=session_id
            ),
            durable=False,
        )
        self._unindexed = 0
        return [SearchHit(*hit) for hit in hits]

    async def stats(self) -> StoreStats:
        sessions, items = await self.engine.read(ops.stats)
        details: dict[str, Any] = {"backend": "sqlite", "database": self.engine.path}
        if not self.engine.memory:
            details["bytes_on_disk"] = await asyncio.to_thread(_size_on_disk, self.engine.path)
        return StoreStats(sessions, items, details)

    # ------------------------------------------------------------------ lease primitives

    async def lease_acquire(self, session_id: str, owner: str, ttl: float) -> LeaseGrant:
        grant: LeaseGrant = await self.engine.write(
            functools.partial(ops.acquire_lease, session_id=session_id, owner=owner, ttl=ttl),
            durable=False,
        )
        return grant

    async def lease_acquire_existing(
        self, session_id: str, owner: str, ttl: float
    ) -> tuple[LeaseGrant, SessionInfo] | None:
        found = await self.engine.write(
            functools.partial(
                ops.acquire_lease_existing, session_id=session_id, owner=owner, ttl=ttl
            ),
            durable=False,
        )
        if found is None:
            return None
        grant, row = found
        return grant, SessionInfo.from_timestamps(*row)

    async def lease_acquire_and_read(
        self, session_id: str, owner: str, ttl: float, existing: bool, plan: ReadPlan
    ) -> tuple[LeaseGrant, SessionInfo | None, StartRead | None] | None:
        # one job: the lease, the session found (when asked) and the start read, one commit
        found = await self.engine.write(
            functools.partial(
                ops.acquire_lease_and_read,
                codec=self.codec,
                session_id=session_id,
                owner=owner,
                ttl=ttl,
                existing=existing,
                plan=plan,
            ),
            durable=False,
        )
        if found is None:
            return None
        grant, row, read = found
        return grant, None if row is None else SessionInfo.from_timestamps(*row), read

    async def pairing_summary(self, session_ids: Sequence[str]) -> dict[str, PairingSummary]:
        if not session_ids:
            return {}
        found = await self.engine.read(
            functools.partial(ops.pairing_summary, session_ids=list(session_ids))
        )
        return {summary.session_id: summary for summary in found}

    async def lease_holders(self, session_ids: Sequence[str]) -> dict[str, LeaseHolder]:
        if not session_ids:
            return {}
        found = await self.engine.read(
            functools.partial(ops.lease_holders, session_ids=list(session_ids))
        )
        return {holder.session_id: holder for holder in found}

    async def lease_renew(self, session_id: str, fence: Fence, ttl: float) -> bool:
        kept: bool = await self.engine.write(
            functools.partial(ops.renew_lease, session_id=session_id, fence=fence, ttl=ttl),
            durable=False,
        )
        return kept

    async def lease_release(self, session_id: str, fence: Fence) -> None:
        if self.engine.closed:
            return  # the lease expires after its ttl
        await self.engine.write(
            functools.partial(ops.release_lease, session_id=session_id, fence=fence),
            durable=False,
        )

    def lease_keepalive(
        self,
        session_id: str,
        fence: Fence,
        ttl: float,
        should_renew: Callable[[], bool],
        on_lost: Callable[[], None],
    ) -> Callable[[], None]:
        key = ("lease", session_id, fence.owner)

        def beat(conn: Any) -> bool:
            if not should_renew():
                return True
            return ops.renew_lease(conn, session_id=session_id, fence=fence, ttl=ttl)

        self.engine.add_heartbeat(key, ttl / 3, beat, on_lost)
        return functools.partial(self.engine.remove_heartbeat, key)


def _noop(conn: Any) -> None:
    return None


def _parse_cursor(after: str) -> tuple[float, int]:
    stamp, _, sid = after.rpartition(":")
    try:
        return float(stamp), int(sid)
    except ValueError:
        raise UserError(
            f"after={after!r} is not a cursor of this store: pass a page's next_cursor"
        ) from None


def _size_on_disk(path: str) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += os.stat(path + suffix).st_size
    return total
