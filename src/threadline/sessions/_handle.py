"""The one session handle: the whole session contract over a store's backend.

Every threadline store hands out :class:`StoreSession` handles (or a subclass that only adds
a constructor, such as ``SQLiteSession``). The handle checks arguments, encodes items with the
store's codec before any transaction, finds the fence of the lease the current task holds,
and calls the backend; it holds no connection of its own, so it is cheap to make.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import SessionClosedError, UserError
from ..items import Item
from ._lineage import ORIGIN_KEY, LineageMixin, fork_point, origin_record
from ._metadata import MetadataMixin
from ._retention import RetentionMixin
from ._summary import (
    forget_summary,
    forget_summary_if_cut,
    start_read_plan,
    summary_window,
    summary_window_and_records,
)
from ._usage import USAGE_KEY, TurnUsage, UsageMixin
from .base import SessionSettings
from .codec import (
    check_count,
    check_record_key,
    check_session_id,
    decode_record,
    encode_items,
    encode_record,
)
from .lease import Lease, check_fence, check_ttl, fenced_lease, held_lease
from .pending import PENDING_RUN_RECORD, PendingRun, read_pending_run

if TYPE_CHECKING:
    from ._base_store import Store
    from .backend import LeaseHolder, ReadPlan

__all__ = ["StoreSession"]

H = TypeVar("H", bound="StoreSession")


class StoreSession(MetadataMixin, LineageMixin, RetentionMixin, UsageMixin):
    """A conversation history in a store: ``store.session(session_id)``.

    Implements the whole :class:`~threadline.sessions.ThreadlineSession` contract:
    ``get_items`` / ``add_items`` / ``pop_item`` / ``clear_session``, ``get_window``,
    ``pop_turn``, ``replace_items``, ``fork`` and the fenced writer ``lease``. Handles on one
    store share its connections; any number of them may exist for one session id.
    """

    store: Store
    session_id: str
    session_settings: SessionSettings

    def __init__(
        self, store: Store, session_id: str, *, session_settings: SessionSettings | None = None
    ) -> None:
        self._attach(store, session_id, session_settings)

    def _attach(
        self, store: Store, session_id: str, session_settings: SessionSettings | None
    ) -> None:
        self.session_id = check_session_id(session_id)
        # A dict (or the SDK's SessionSettings) is coerced; an unknown key is a SettingsError.
        self.session_settings = SessionSettings.coerce(session_settings)
        self.store = store
        self._handle_closed = False

    @classmethod
    def _bind(
        cls: type[H], store: Store, session_id: str, session_settings: SessionSettings | None
    ) -> H:
        """A handle of this class on ``store`` without running a subclass's constructor."""
        handle = cls.__new__(cls)
        StoreSession._attach(handle, store, session_id, session_settings)
        handle._bound()
        return handle

    def _bound(self) -> None:
        """Hook for subclasses: set up attributes of a handle made by :meth:`_bind`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.session_id!r}, store={self.store!r})"

    @property
    def capabilities(self) -> frozenset[str]:
        """The optional capabilities this handle's store declares."""
        return self.store.capabilities

    def _usable(self) -> Store:
        """The store, or :class:`SessionClosedError` when this handle or its store is closed."""
        store = self.store
        if self._handle_closed or store.closed:
            raise SessionClosedError(
                f"session {self.session_id!r} is closed: open a new handle "
                "(store.session(...), or a new SQLiteSession)"
            )
        return store

    def _fence(self) -> Any:
        return check_fence(held_lease(self.store, self.session_id))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called on this handle (or its store was closed)."""
        return self._handle_closed or self.store.closed

    def close(self) -> None:
        """Close this handle: every later call raises
        :class:`~threadline.errors.SessionClosedError` (the store stays open for others)."""
        self._handle_closed = True

    # ------------------------------------------------------------------ the Session contract

    async def get_items(self, limit: int | None = None) -> list[Item]:
        """The newest ``limit`` items, oldest first.

        Without ``limit``, ``session_settings.limit`` applies (all items when it is unset), as
        in the OpenAI Agents SDK; an explicit ``limit`` wins.
        """
        store = self._usable()
        if limit is None:
            limit = self.session_settings.limit
        limit = check_count(limit, "limit")
        if limit == 0:
            return []
        return await store._backend.read(self.session_id, limit)

    async def add_items(
        self, items: list[Item], *, records: Mapping[str, Any] | None = None
    ) -> None:
        """Append ``items`` atomically, keeping their order (nothing is written if one is bad).

        ``records`` (a threadline extension; see :meth:`put_records`) are written in the same
        transaction as the items: both land, or neither.
        """
        await self._append(items, records, run_input=False)

    _last_write_ends_lease = False
    """Whether a run's last write (see :meth:`_add_run_items`) also releases the lease held
    on the session, in the same transaction. The library's runs keep their lease until they
    end (their hooks run under it); the server's request handles (which write nothing after
    the run) set it."""

    async def _add_run_items(
        self,
        items: list[Item],
        *,
        records: Mapping[str, Any] | None,
        run_input: bool = False,
        last: bool = False,
    ) -> None:
        """:meth:`add_items` for a run's own writes. ``run_input``: its new input, just
        before the model is called (the store may let it reach the disk while the model
        works; see :meth:`~threadline.sessions.backend.StoreBackend.append_input`). ``last``:
        the step that ends the run; with :attr:`_last_write_ends_lease` it also ends the
        lease held on the session (see
        :meth:`~threadline.sessions.backend.StoreBackend.append_and_release`)."""
        await self._append(items, records, run_input=run_input, last=last)

    async def _append(
        self,
        items: list[Item],
        records: Mapping[str, Any] | None,
        *,
        run_input: bool,
        last: bool = False,
    ) -> None:
        store = self._usable()
        rows = encode_items(items, store.codec, self.session_id)
        payloads = None if records is None else self._encode_records(store, records)
        held = held_lease(self.store, self.session_id)
        fence = check_fence(held)
        backend = store._backend
        if rows and last and self._last_write_ends_lease and held is not None:
            assert fence is not None
            await backend.append_and_release(self.session_id, rows, fence, payloads or None)
            held._end_by_write()
            return
        if rows:
            append = backend.append_input if run_input else backend.append
            if payloads:
                await append(self.session_id, rows, fence, payloads)
            else:
                await append(self.session_id, rows, fence)
        elif payloads:
            await backend.put_records(self.session_id, payloads, fence)

    async def pop_item(self) -> Item | None:
        """Remove and return the newest item, or ``None`` when the session is empty."""
        store = self._usable()
        fence = self._fence()
        popped = await store._backend.pop(self.session_id, fence)
        if popped is not None:
            await forget_summary_if_cut(store, self.session_id, fence)
        return popped

    async def clear_session(self) -> None:
        """Remove every item; the session itself stays (``delete_session`` removes it)."""
        store = self._usable()
        fence = self._fence()
        await forget_summary(store, self.session_id, fence)  # first: never a stale summary
        await store._backend.clear(self.session_id, fence)

    # ------------------------------------------------------------------ threadline extensions

    async def get_window(
        self, max_items: int | None = None, max_tokens: int | None = None
    ) -> list[Item]:
        """The newest items within the budget, oldest first, cut at a turn boundary.

        When a compaction summary covers the older part of the history (see
        ``docs/context.md``), the window is that summary (one system message, counted in the
        budget) followed by the newest whole turns after the range it covers.
        """
        self._usable()
        max_items = check_count(max_items, "max_items")
        max_tokens = check_count(max_tokens, "max_tokens")
        if max_items == 0 or max_tokens == 0:
            return []
        return await summary_window(self, max_items, max_tokens)

    async def _window_and_records(
        self,
        keys: Sequence[str],
        budget: Callable[[Mapping[str, Any]], tuple[int | None, int | None]],
    ) -> tuple[list[Item], dict[str, Any], int]:
        """:meth:`get_window`, the values of the records ``keys`` and the item count in one
        read of the store (a run's start: its usage and pending-run records, the summary, the
        window, and the count that stamps the run's usage record with its start).

        ``budget`` turns the values found into ``(max_items, max_tokens)``; it may run on a
        reader thread (see :func:`~threadline.sessions._summary.summary_window_and_records`).
        The store must keep records.
        """
        return await summary_window_and_records(self, *self._start_args(keys, budget))

    def _start_args(
        self,
        keys: Sequence[str],
        budget: Callable[[Mapping[str, Any]], tuple[int | None, int | None]],
    ) -> tuple[list[str], Callable[[Mapping[str, Any]], tuple[int | None, int | None]]]:
        self._records_store()
        checked_keys = [check_record_key(key) for key in keys]

        def checked(values: Mapping[str, Any]) -> tuple[int | None, int | None]:
            max_items, max_tokens = budget(values)
            return check_count(max_items, "max_items"), check_count(max_tokens, "max_tokens")

        return checked_keys, checked

    @asynccontextmanager
    async def _lease_and_start(
        self,
        wait: bool,
        timeout: float | None,
        ttl: float | None,
        keys: Sequence[str],
        budget: Callable[[Mapping[str, Any]], tuple[int | None, int | None]],
    ) -> AsyncIterator[tuple[Lease | None, tuple[list[Item], dict[str, Any], int]]]:
        """A run's lease and its start (:meth:`_window_and_records`) as one store operation
        where the backend can (:meth:`~threadline.sessions.backend.StoreBackend.lease_acquire_and_read`):
        the lease is held for the block, which gets it and the start read under it."""
        wait, timeout, existing = self._run_lease(wait, timeout)
        plan, finish = start_read_plan(self, *self._start_args(keys, budget))
        async with self._fenced_lease(wait, timeout, ttl, existing=existing, read=plan) as held:
            assert held.start is not None
            yield held, await finish(held.start)

    def _run_lease(self, wait: bool, timeout: float | None) -> tuple[bool, float | None, bool]:
        """How a run takes its lease with its start read: ``(wait, timeout, existing)``; a
        subclass may put its own terms in (the server: the request's wait, and only on a
        conversation that exists)."""
        return wait, timeout, False

    async def pop_turn(self) -> list[Item]:
        """Remove and return the newest user message and everything after it."""
        store = self._usable()
        fence = self._fence()
        popped = await store._backend.pop_turn(self.session_id, fence)
        if popped:
            await forget_summary_if_cut(store, self.session_id, fence)
        return popped

    async def replace_items(self, items: list[Item]) -> None:
        """Replace the whole history with ``items`` atomically."""
        store = self._usable()
        rows = encode_items(items, store.codec, self.session_id)
        fence = self._fence()
        await forget_summary(store, self.session_id, fence)  # first: never a stale summary
        await store._backend.replace(self.session_id, rows, fence)

    async def fork(
        self: H, new_session_id: str, at: int | None = None, *, at_turn: int | None = None
    ) -> H:
        """A new session of this store holding a copy of the first ``at`` items (all when
        ``None``), or of the first ``at_turn`` turns (negative: counted from the end);
        ``new_session_id`` must hold no items yet. With records, the fork gets an
        ``origin`` record (see :meth:`origin`)."""
        store = self._usable()
        new_session_id = check_session_id(new_session_id)
        at = check_count(at, "at")
        if new_session_id == self.session_id:
            raise UserError(f"cannot fork session {self.session_id!r} into itself: pick a new id")
        at = await fork_point(store._backend, self.session_id, at, at_turn)
        if store.codec.plain_json:
            await store._backend.fork(self.session_id, new_session_id, at)
            copied = None
        else:
            copied = await self._fork_resealed(new_session_id, at)
        forked = type(self)._bind(store, new_session_id, self.session_settings)
        if "records" in store.capabilities:
            if copied is None:
                info = await store._backend.session_info(new_session_id)
                copied = 0 if info is None else info.item_count
            await forked.put_records({ORIGIN_KEY: origin_record(self.session_id, copied, at_turn)})
        return forked

    async def _fork_resealed(self, new_session_id: str, at: int | None) -> int:
        """Fork through the codec: a sealed payload may be bound to its session (encryption
        at rest binds it), so each copied payload is opened and sealed again for
        ``new_session_id`` (see :meth:`StoreBackend.fork_resealed`)."""
        codec, old_id = self.store.codec, self.session_id

        def reseal(payload: str | bytes) -> str | bytes:
            return codec.seal(new_session_id, codec.open(old_id, payload))

        return await self.store._backend.fork_resealed(old_id, new_session_id, at, reseal)

    # ------------------------------------------------------------------ session records

    def _records_store(self) -> Store:
        store = self._usable()
        if "records" not in store.capabilities:
            raise UserError(
                f"the session store {store._backend.where} keeps no session records "
                "(metadata, usage, pending runs): use a store that offers 'records'"
            )
        return store

    def _encode_records(
        self, store: Store, records: Mapping[str, Any]
    ) -> dict[str, str | bytes | None]:
        if not isinstance(records, Mapping):
            raise UserError(f"records must be a mapping of key to value, got {records!r}")
        if records and "records" not in store.capabilities:
            self._records_store()
        return {
            check_record_key(key): None
            if value is None
            else encode_record(store.codec, self.session_id, key, value)
            for key, value in records.items()
        }

    async def get_record(self, key: str) -> Any:
        """The value of the session record ``key``, or ``None`` when there is none.

        Records are small named JSON documents kept with a session (metadata, usage, a pending
        run): sealed by the store's codec like items, removed with the session, kept by
        ``clear_session``, ``replace_items`` and ``pop_turn``, not copied by :meth:`fork`.
        """
        store = self._records_store()
        key = check_record_key(key)
        payload = await store._backend.get_record(self.session_id, key)
        return (
            None if payload is None else decode_record(store.codec, self.session_id, key, payload)
        )

    async def list_records(self, prefix: str = "") -> dict[str, Any]:
        """The session's records whose key starts with ``prefix`` (all when ``""``), by key."""
        store = self._records_store()
        if not isinstance(prefix, str):
            raise UserError(f"prefix must be a string, got {type(prefix).__name__}")
        found = await store._backend.list_records(self.session_id, prefix)
        return {
            key: decode_record(store.codec, self.session_id, key, payload) for key, payload in found
        }

    async def put_records(self, records: Mapping[str, Any]) -> None:
        """Write the session records ``records`` atomically (a ``None`` value deletes its key).

        Values must be JSON (at most :data:`~threadline.sessions.codec.RECORD_SIZE_LIMIT`
        bytes each); under a lease the write carries its fence, like an item write.
        """
        store = self._records_store()
        payloads = self._encode_records(store, records)
        fence = self._fence()
        if payloads:
            await store._backend.put_records(self.session_id, payloads, fence)

    # ------------------------------------------------------------------ a pending run

    async def pending_run(self) -> PendingRun | None:
        """The run of this session that waits for tool-call approvals, or ``None``.

        A :class:`~threadline.sessions.PendingRun` names the calls waiting and their agent;
        ``RunState.from_session(agent, session)`` rebuilds the run itself to approve, reject
        and resume (see ``docs/approvals.md``).
        """
        value = await self.get_record(PENDING_RUN_RECORD)
        return read_pending_run(self.session_id, value)

    async def discard_pending_run(self) -> bool:
        """Drop the pending run (its waiting calls are never carried out); ``False`` if none.

        The history stays as it was before the interrupted step (that step was never stored),
        so the session takes new runs again. Takes the session's writer lease unless the
        current task holds it; a ``RunState`` of the discarded run can no longer be resumed.
        """
        self._records_store()
        if held_lease(self.store, self.session_id) is not None:
            return await self._drop_pending_run()
        async with self.lease():
            return await self._drop_pending_run()

    async def _drop_pending_run(self) -> bool:
        if await self.get_record(PENDING_RUN_RECORD) is None:
            return False
        await self.put_records({PENDING_RUN_RECORD: None})
        return True

    async def _usage_start(self) -> tuple[Any, int]:
        """The ``usage`` record and the session's item count, read side by side when a run
        opens its usage ledger: the count is where the run's first stored item lands (the
        ``start`` its per-run usage record is stamped with)."""
        return await asyncio.gather(self.get_record(USAGE_KEY), self._item_count())

    async def _item_count(self) -> int:
        """How many items the session holds (0 for one never written)."""
        info = await self._usable()._backend.session_info(self.session_id)
        return 0 if info is None else info.item_count

    async def turn_usage(self) -> dict[int, list[TurnUsage]]:
        """The runs' usage by turn: the position of each turn's user message (where the turn
        begins) to the runs whose ``start`` falls inside that turn, oldest first (a turn
        resumed after approvals has several). Runs recorded without a ``start`` (by a
        threadline before it stamped one) are left out: see :meth:`usage` for them."""
        store = self._usable()
        usage, starts = await asyncio.gather(
            self.usage(), store._backend.user_positions(self.session_id)
        )
        found: dict[int, list[TurnUsage]] = {}
        for run in usage.per_turn:
            if run.start is None:
                continue
            at = bisect.bisect_right(starts, run.start) - 1
            found.setdefault(starts[at] if at >= 0 else 0, []).append(run)
        return found

    async def lease_holder(self) -> LeaseHolder | None:
        """Who holds this session's writer lease as the store records it (any process or
        host), or ``None`` when it is free, released or expired. See
        :meth:`Store.lease_holders <threadline.sessions.Store.lease_holders>`."""
        holders = await self._usable().lease_holders([self.session_id])
        return holders.get(self.session_id)

    @asynccontextmanager
    async def lease(
        self, *, wait: bool = True, timeout: float | None = None, ttl: float | None = None
    ) -> AsyncIterator[Lease]:
        """Hold this session's fenced writer lease (see :func:`~threadline.sessions.writer_lease`).

        ``ttl`` defaults to ``session_settings.lease_ttl``, else 30 s. Yields the
        :class:`~threadline.sessions.Lease`; while it is held, writes through any handle of
        this store on this session carry its fence.
        """
        async with self._fenced_lease(wait, timeout, ttl, existing=False) as held:
            yield held

    @asynccontextmanager
    async def _fenced_lease(
        self,
        wait: bool,
        timeout: float | None,
        ttl: float | None,
        *,
        existing: bool,
        read: ReadPlan | None = None,
    ) -> AsyncIterator[Lease]:
        """:meth:`lease` (``existing``: only on a session that exists; ``read``: made as the
        lease is granted; see :func:`~threadline.sessions.lease.fenced_lease`)."""
        store = self._usable()
        if ttl is None:
            ttl = self.session_settings.effective_ttl
        ttl = check_ttl(ttl)
        async with fenced_lease(
            store._backend,
            store,
            self.session_id,
            wait=wait,
            timeout=timeout,
            ttl=ttl,
            existing=existing,
            read=read,
        ) as held:
            yield held
