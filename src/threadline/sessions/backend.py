"""The backend interface: what a store implements so that one session handle serves it.

A backend supplies rows and transactions, nothing else. The session handle
(:class:`~threadline.sessions.StoreSession`) validates arguments, encodes items with the
store's codec and finds the fencing token of the lease the caller holds; the lease driver
(:mod:`threadline.sessions.lease`) does the waiting, back-off, cancellation safety and
heartbeat. A backend only has to make each method below one atomic step on its storage.

Every write that changes a session's items takes ``fence``: ``None`` for a write made outside
a lease, or the :class:`Fence` of the lease the caller holds. With a fence the backend must,
*inside the same transaction as the write*, check that the fence is still the session's
current lease (same owner and epoch) and otherwise raise
:class:`~threadline.errors.LeaseLostError` and write nothing.

Positions: a session's items are numbered 0, 1, 2, ... in write order; items only ever leave
from the end (``pop``, ``pop_turn``) or all at once (``clear``, ``replace``, ``delete``), so an
item's sequence number is its position.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._aio import gather_or_cancel
from ..items import Item
from ._window import window_size
from .base import SessionInfo
from .codec import EncodedItem, ItemCodec, encode_items

__all__ = [
    "Fence",
    "LeaseGrant",
    "LeaseHolder",
    "PairingSummary",
    "Payload",
    "ReadPlan",
    "SearchHit",
    "SessionPage",
    "StartRead",
    "StoreBackend",
    "StoreStats",
    "TailWindow",
]

logger = logging.getLogger("threadline.sessions")

Payload = str | bytes
"""A stored payload: compact JSON text, or what the store's codec sealed it into."""


@dataclass(frozen=True)
class Fence:
    """The fencing token of one lease: its holder's unique ``owner`` token and the ``epoch``.

    A session's epoch increases with every acquisition, so a newer holder always has a higher
    epoch than any holder before it.
    """

    owner: str
    epoch: int


@dataclass(frozen=True)
class LeaseGrant:
    """The answer to one lease attempt.

    ``acquired`` with the new ``epoch``; or not, with what the store knows of the current
    holder (its ``owner`` token as stored, and ``expires_in`` seconds).
    """

    acquired: bool
    epoch: int = 0
    owner: str | None = None
    expires_in: float | None = None


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a session's writer lease, as the store records it (whatever process or host
    took it).

    ``owner`` is the holder's token as stored (``"pid 12 on host (uuid)"`` for threadline's
    own leases), ``epoch`` the lease's fencing epoch and ``expires_at`` when it runs out
    unless renewed (seconds since the epoch, by the clock of the store's server where it has
    one: PostgreSQL's, or this machine's for SQLite and memory; Redis reports the time left,
    turned into this machine's clock).
    """

    session_id: str
    owner: str
    epoch: int
    expires_at: float

    @property
    def holder(self) -> str:
        """The readable part of the owner token (``"pid 12 on host"``)."""
        return self.owner.split(" (", 1)[0]

    def expires_in(self, now: float | None = None) -> float:
        """Seconds until the lease runs out unless renewed (negative: already past)."""
        import time

        return self.expires_at - (time.time() if now is None else now)


@dataclass(frozen=True)
class PairingSummary:
    """How a session's function calls pair with their outputs, over the whole session: the
    number of ``function_call`` items with no ``function_call_output`` of their ``call_id``
    after them (``lone_calls``), and of outputs with no call of their ``call_id`` before
    them (``lone_outputs``). Read from the kind and call-id columns a store keeps beside
    each item, so no payload is opened. Custom tool calls and ``role: "tool"`` messages are
    not kept there and are not counted."""

    session_id: str
    lone_calls: int
    lone_outputs: int

    @property
    def paired(self) -> bool:
        """Whether every function call has its output and every output its call."""
        return not (self.lone_calls or self.lone_outputs)


def pairing_of(session_id: str, rows: Sequence[tuple[int, str | None]]) -> PairingSummary:
    """:class:`PairingSummary` from ``(kind, call_id)`` rows, oldest first (the rule of
    :func:`~threadline.items.pairing_problem` for function calls: each output answers the
    oldest call of its id still waiting)."""
    from .codec import KIND_CALL, KIND_OUTPUT

    waiting: dict[str | None, int] = {}
    lone_outputs = 0
    for kind, call_id in rows:
        if kind == KIND_CALL:
            waiting[call_id] = waiting.get(call_id, 0) + 1
        elif kind == KIND_OUTPUT:
            if waiting.get(call_id):
                waiting[call_id] -= 1
            else:
                lone_outputs += 1
    return PairingSummary(session_id, sum(waiting.values()), lone_outputs)


@dataclass(frozen=True)
class SearchHit:
    """One stored item that matched a search.

    ``position`` is the item's index in its session (0 is the oldest); ``snippet`` is a short
    extract of its text with the matched words between ``**`` markers; ``item`` is the item.
    """

    session_id: str
    position: int
    snippet: str
    item: Item


@dataclass(frozen=True)
class SessionPage:
    """One page of :meth:`SessionStore.list_sessions`, newest first.

    Iterate it (or index it) like a list of :class:`SessionInfo`. ``next_cursor`` is what to
    pass as ``after`` for the next page; ``None`` on the last page.
    """

    sessions: list[SessionInfo]
    next_cursor: str | None = None

    @property
    def has_more(self) -> bool:
        """Whether another page follows."""
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[SessionInfo]:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)

    def __getitem__(self, index: int) -> SessionInfo:
        return self.sessions[index]


@dataclass(frozen=True)
class StoreStats:
    """What a store holds: session and item counts, plus backend-specific ``details``."""

    sessions: int
    items: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TailWindow:
    """One read of a session's items from position ``start`` on (:meth:`StoreBackend.window_since`).

    ``count`` is how many items the session holds; ``anchor`` the item at ``start - 1`` (``None``
    when ``start`` is 0 or the session holds fewer than ``start`` items); ``items`` the window
    for the budgets chosen among the items at positions ``>= start`` only, oldest first;
    ``tail_tokens`` the estimated tokens of all the items at positions ``>= start``.
    """

    count: int
    anchor: Item | None
    items: list[Item]
    tail_tokens: int


StartRead = tuple[dict[str, Payload], Payload | None, list[Item] | TailWindow, int]
"""What :meth:`StoreBackend.records_and_window_after_record` returns."""


@dataclass(frozen=True)
class ReadPlan:
    """The arguments of one :meth:`StoreBackend.records_and_window_after_record` read after
    the session id (a run's start), to be made under a lease as it is granted
    (:meth:`StoreBackend.lease_acquire_and_read`)."""

    keys: Sequence[str]
    key: str
    budget: Callable[[Mapping[str, Payload]], tuple[int | None, int | None]]
    start_for: Callable[
        [Payload, int | None, int | None], tuple[int, int | None, int | None] | None
    ]


def rows_window_size(
    rows: Sequence[EncodedItem], max_items: int | None, max_tokens: int | None
) -> int:
    """How many of the newest ``rows`` (oldest first) the window for these budgets holds."""
    if max_items is None and max_tokens is None:
        return len(rows)
    if max_items == 0 or max_tokens == 0:
        return 0
    return window_size(
        ((row.kind, row.call_id, row.tokens) for row in reversed(rows)), max_items, max_tokens
    )


def tail_window_of(
    items: Sequence[Item], start: int, max_items: int | None, max_tokens: int | None
) -> TailWindow:
    """:class:`TailWindow` computed from a session's whole decoded history (the generic way)."""
    count = len(items)
    if start > count:
        return TailWindow(count, None, [], 0)
    rows = encode_items(list(items[start:]))
    tail_tokens = sum(row.tokens for row in rows)
    size = rows_window_size(rows, max_items, max_tokens)
    anchor = items[start - 1] if start > 0 else None
    return TailWindow(count, anchor, list(items[count - size :]) if size else [], tail_tokens)


class StoreBackend(abc.ABC):
    """Rows and transactions of one store; see the module docstring for the rules.

    ``capabilities`` declares what the backend offers beyond the required methods (names from
    :data:`~threadline.sessions.STORE_CAPABILITIES`); ``where`` names the storage in error
    messages. ``codec`` is the store's item codec: reads decode payloads with it.
    """

    capabilities: frozenset[str] = frozenset()

    def __init__(self, codec: ItemCodec) -> None:
        self.codec = codec

    @property
    def where(self) -> str:
        """How error messages name this storage."""
        return type(self).__name__

    # ------------------------------------------------------------------ life cycle

    async def setup(self) -> None:  # noqa: B027 - optional: a backend may have nothing to do
        """Create or migrate the storage (called by :meth:`SessionStore.setup`)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; later calls raise :class:`~threadline.errors.SessionError`."""

    # ------------------------------------------------------------------ one session's items

    @abc.abstractmethod
    async def append(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        """Append ``rows`` (never empty) after the newest item, atomically, creating the
        session if needed.

        ``records`` (only passed when the backend offers ``"records"``) are written in the same
        transaction, as by :meth:`put_records`: the items and the records land together or not
        at all.
        """

    async def append_input(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        """:meth:`append` for a run's new input, which the runner writes just before it calls
        the model. It must be committed when this returns (visible to every reader, and kept
        if the process dies); a backend may let it reach the disk a moment later, while the
        model works, provided that it is on disk before any later durable write of the store
        is acknowledged (SQLite fsyncs its log right after the commit). The default is
        :meth:`append`.
        """
        await self._append_with(session_id, rows, fence, records)

    async def _append_with(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None,
    ) -> None:
        """:meth:`append`, passing ``records`` only when there are some (a backend without
        ``"records"`` is never given them)."""
        if records:
            await self.append(session_id, rows, fence, records)
        else:
            await self.append(session_id, rows, fence)

    async def append_and_release(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        """:meth:`append` (durable, fenced by ``fence``) and then :meth:`lease_release` of
        ``fence``: a writer's last write and the end of its lease. When the append is refused
        (the lease is lost, a bad row) nothing is released and the error is raised. A backend
        may do both in one transaction (SQLite: one job of its writer thread, one commit);
        the default makes the two calls in a row."""
        await self._append_with(session_id, rows, fence, records)
        await self.lease_release(session_id, fence)

    @abc.abstractmethod
    async def read(self, session_id: str, limit: int | None) -> list[Item]:
        """The newest ``limit`` items (all when ``None``; ``limit`` > 0), oldest first."""

    @abc.abstractmethod
    async def window(
        self, session_id: str, max_items: int | None, max_tokens: int | None
    ) -> list[Item]:
        """The window for these budgets (see :mod:`threadline.sessions._window`)."""

    async def window_since(
        self, session_id: str, start: int, max_items: int | None, max_tokens: int | None
    ) -> TailWindow:
        """One atomic read of the items from position ``start`` on (see :class:`TailWindow`).

        The window is chosen by the rules of :meth:`window` among the items at positions
        ``>= start`` (a budget of 0 gives no items, only the counts); ``start`` is where a
        compaction summary's covered range ends. The default reads the whole history; a
        backend should override it with a range read that starts at ``start``.
        """
        return tail_window_of(await self.read(session_id, None), start, max_items, max_tokens)

    async def window_after_record(
        self,
        session_id: str,
        key: str,
        max_items: int | None,
        max_tokens: int | None,
        start_for: Callable[[Payload], tuple[int, int | None, int | None] | None],
    ) -> tuple[Payload | None, list[Item] | TailWindow]:
        """The record ``key`` and, in the same read, the window it asks for.

        Without the record: ``(None, window(max_items, max_tokens))``. With it, ``start_for``
        (pure, fast; it may run on a reader thread) turns its payload into ``(start,
        max_items, max_tokens)`` for :meth:`window_since`, whose result is returned, or into
        ``None`` for the plain window. This is how a window with a compaction summary is one
        read; the default makes two.
        """
        payload = await self.get_record(session_id, key)
        plan = None if payload is None else start_for(payload)
        if plan is None:
            return payload, await self.window(session_id, max_items, max_tokens)
        return payload, await self.window_since(session_id, *plan)

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
        """The records ``keys``, the record ``key``, the window they ask for and the session's
        item count (0 for a session never written), in one read.

        ``budget`` (pure, fast; it may run on a reader thread) turns the records of ``keys``
        that exist (``{key: payload}``) into ``(max_items, max_tokens)``; then this is
        :meth:`window_after_record` for ``key`` with that budget, ``start_for`` getting the
        budget after the payload. Returns the records found, ``key``'s payload (or ``None``),
        the window and the item count. This is how a run's start (its usage and pending-run
        records, the compaction summary and the window) is one read; the default composes
        :meth:`session_info` and :meth:`get_record` (read concurrently) and
        :meth:`window_after_record`: two round trips in a row; a backend should override it
        with one read in one snapshot.
        """
        reads: list[Awaitable[Any]] = [self.session_info(session_id)]
        reads += [self.get_record(session_id, name) for name in keys]
        info, *payloads = await gather_or_cancel(reads)
        records = {name: p for name, p in zip(keys, payloads, strict=True) if p is not None}
        max_items, max_tokens = budget(records)
        found, window = await self.window_after_record(
            session_id,
            key,
            max_items,
            max_tokens,
            lambda payload: start_for(payload, max_items, max_tokens),
        )
        return records, found, window, 0 if info is None else info.item_count

    @abc.abstractmethod
    async def pop(self, session_id: str, fence: Fence | None) -> Item | None:
        """Remove and return the newest item (a corrupt one is reported and kept)."""

    @abc.abstractmethod
    async def pop_turn(self, session_id: str, fence: Fence | None) -> list[Item]:
        """Remove and return the newest user message and everything after it."""

    @abc.abstractmethod
    async def replace(
        self, session_id: str, rows: Sequence[EncodedItem], fence: Fence | None
    ) -> None:
        """Replace every item with ``rows`` (possibly none) atomically; the session stays."""

    @abc.abstractmethod
    async def clear(self, session_id: str, fence: Fence | None) -> None:
        """Remove every item; the session itself stays (with its creation time)."""

    @abc.abstractmethod
    async def fork(self, session_id: str, new_session_id: str, at: int | None) -> None:
        """Copy the first ``at`` items (all when ``None``) into ``new_session_id``, which must
        hold no items (else :class:`~threadline.errors.UserError`)."""

    async def fork_resealed(
        self,
        session_id: str,
        new_session_id: str,
        at: int | None,
        reseal: Callable[[Payload], Payload],
    ) -> int:
        """:meth:`fork` for a codec whose payloads are bound to their session: each copied
        payload is ``reseal(payload)`` (opened for ``session_id``, sealed for
        ``new_session_id``); returns how many items were copied.

        The default reads the items, encodes them again for the new session and appends them
        in one transaction (after :meth:`fork` with nothing to copy checked the new session is
        empty). A backend may copy the rows in one transaction instead, resealing each
        payload and keeping its kind, call id and token count.
        """
        from ._window import check_fork_cut, item_pairs
        from .codec import encode_items

        items = await self.read(session_id, None)
        if at is not None and at < len(items):
            check_fork_cut(session_id, at, item_pairs(items))
        await self.fork(session_id, new_session_id, 0)
        if at is not None:
            items = items[:at]
        rows = encode_items(items, self.codec, new_session_id, validated=True)
        if rows:
            await self.append(new_session_id, rows, None)
        return len(rows)

    # ------------------------------------------------------------------ session records

    async def get_record(self, session_id: str, key: str) -> Payload | None:
        """The payload stored under ``key`` for the session, or ``None``.

        Records are small named JSON documents kept beside a session's items (sealed by the
        codec like items). They belong to the session: :meth:`delete` removes them; ``clear``,
        ``replace``, ``pop`` and ``pop_turn`` keep them; :meth:`fork` does not copy them.
        Only called when ``"records"`` is in :attr:`capabilities`.
        """
        raise NotImplementedError

    async def list_records(self, session_id: str, prefix: str) -> list[tuple[str, Payload]]:
        """The session's records whose key starts with ``prefix`` (``""``: all), by key."""
        raise NotImplementedError

    async def put_records(
        self, session_id: str, records: Mapping[str, Payload | None], fence: Fence | None
    ) -> None:
        """Write ``records`` atomically (a ``None`` payload deletes that key), under ``fence``
        like an item write. Creates the session when a payload is written to a session that
        does not exist; does not change the session's ``updated_at``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the store

    @abc.abstractmethod
    async def delete(self, session_id: str) -> bool:
        """Remove the session and its items; ``False`` when there was no such session."""

    @abc.abstractmethod
    async def list_sessions(
        self, limit: int | None, after: str | None
    ) -> tuple[list[SessionInfo], str | None]:
        """Sessions, most recently updated first, and the cursor of the next page.

        ``after`` is a cursor this backend returned before (the caller checked it is a
        string); a cursor the backend cannot read is a :class:`~threadline.errors.UserError`.
        """

    async def session_info(self, session_id: str) -> SessionInfo | None:
        """The listing entry of one session, or ``None``. The default pages through
        :meth:`list_sessions`; a backend with an index on ids should look it up directly."""
        after: str | None = None
        while True:
            infos, after = await self.list_sessions(500, after)
            for info in infos:
                if info.session_id == session_id:
                    return info
            if after is None:
                return None

    async def list_sessions_with_record(
        self,
        limit: int | None,
        after: str | None,
        key: str,
        select: Callable[[str, Payload | None], Any],
    ) -> tuple[list[tuple[SessionInfo, Any]], str | None]:
        """Sessions in :meth:`list_sessions` order for which ``select(session_id, payload)``
        (``payload``: the session's record ``key``, or ``None`` when it has none) returns
        something other than ``None``, each with what it returned, and the cursor after the
        last one returned (``None`` when none may follow).

        ``select`` may be called from any thread and may raise (the listing then fails). The default pages through
        :meth:`list_sessions` and reads each record with :meth:`get_record`, asking for no
        more sessions than are still wanted so the cursor is exact; a backend that can read
        the records with the listing (a join) should override it. Only called when
        ``"records"`` is in :attr:`capabilities`.
        """
        found: list[tuple[SessionInfo, Any]] = []
        cursor = after
        while True:
            wanted = None if limit is None else limit - len(found)
            infos, cursor = await self.list_sessions(wanted, cursor)
            for info in infos:
                selected = select(info.session_id, await self.get_record(info.session_id, key))
                if selected is not None:
                    found.append((info, selected))
            if cursor is None or (limit is not None and len(found) >= limit):
                return found, cursor

    async def user_positions(self, session_id: str) -> list[int]:
        """The positions of the session's user messages, oldest first (where its turns start).

        The default reads the whole history; a backend that stores each item's kind beside
        it should read only that.
        """
        from ..items import is_user_message

        items = await self.read(session_id, None)
        return [position for position, item in enumerate(items) if is_user_message(item)]

    async def read_json(self, session_id: str) -> list[str]:
        """Every item's compact JSON text (opened by the codec), oldest first: what an
        export writes. The default reads the items and encodes them again; a backend that
        keeps the JSON text may return it as stored, once it checked that each row is one
        JSON object (a corrupt row is a :class:`~threadline.errors.CorruptItemError`, as on
        any read)."""
        from ..items import encode_item

        return [encode_item(item) for item in await self.read(session_id, None)]

    async def read_oldest(self, session_id: str, limit: int) -> list[Item]:
        """The oldest ``limit`` items (``limit`` > 0), oldest first. The default reads the
        whole history; a backend with an index on positions should read only those."""
        return (await self.read(session_id, None))[:limit]

    async def search(
        self, terms: Sequence[str], limit: int, session_id: str | None
    ) -> list[SearchHit]:
        """Items whose text holds every one of ``terms`` (lower-case words), best first.

        Only called when ``"search"`` is in :attr:`capabilities`.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def stats(self) -> StoreStats:
        """Counts of sessions and items."""

    # ------------------------------------------------------------------ lease primitives

    @abc.abstractmethod
    async def lease_acquire(self, session_id: str, owner: str, ttl: float) -> LeaseGrant:
        """Take the session's lease for ``owner`` for ``ttl`` seconds, unless a live holder
        has it. On success the session's epoch goes up by one and is returned."""

    async def lease_acquire_existing(
        self, session_id: str, owner: str, ttl: float
    ) -> tuple[LeaseGrant, SessionInfo] | None:
        """:meth:`lease_acquire` for a session that must exist already: ``None`` (and nothing
        written) when it does not, else the grant and the session's :class:`SessionInfo`,
        read together (the server's turn on a conversation: its 404 and its item count come
        with the lease). The default reads :meth:`session_info`, then takes the lease (two
        round trips; a session deleted in between is found by the caller's first write);
        SQLite does both in one write."""
        info = await self.session_info(session_id)
        if info is None:
            return None
        return await self.lease_acquire(session_id, owner, ttl), info

    async def lease_acquire_and_read(
        self, session_id: str, owner: str, ttl: float, existing: bool, plan: ReadPlan
    ) -> tuple[LeaseGrant, SessionInfo | None, StartRead | None] | None:
        """:meth:`lease_acquire` (:meth:`lease_acquire_existing` when ``existing``, ``None``
        as it for a missing session) and, when the lease is granted, the read ``plan`` under
        it (:meth:`records_and_window_after_record`): ``(grant, info, read)``, ``info``
        ``None`` unless ``existing``, ``read`` ``None`` unless granted. This is how a run's
        lease and its start are one store operation; a read that fails gives the lease back
        before the error is raised. The default makes the calls in a row; SQLite does it all
        in one job of its writer thread."""
        info: SessionInfo | None = None
        if existing:
            found = await self.lease_acquire_existing(session_id, owner, ttl)
            if found is None:
                return None
            grant, info = found
        else:
            grant = await self.lease_acquire(session_id, owner, ttl)
        if not grant.acquired:
            return grant, info, None
        try:
            read = await self.records_and_window_after_record(
                session_id, plan.keys, plan.key, plan.budget, plan.start_for
            )
        except BaseException:
            await asyncio.shield(self.lease_release(session_id, Fence(owner, grant.epoch)))
            raise
        return grant, info, read

    @abc.abstractmethod
    async def lease_renew(self, session_id: str, fence: Fence, ttl: float) -> bool:
        """Extend the lease by ``ttl`` from now; ``False`` when ``fence`` no longer holds it."""

    @abc.abstractmethod
    async def lease_release(self, session_id: str, fence: Fence) -> None:
        """Give the lease up if ``fence`` still holds it (the epoch is kept)."""

    async def pairing_summary(self, session_ids: Sequence[str]) -> dict[str, PairingSummary]:
        """How each listed session's function calls pair with their outputs, over its whole
        history, from the stored kind and call-id columns (no payload read); a session that
        does not exist is absent. The default reads every item of each session (correct on
        any backend, as costly as reading the histories); a backend that keeps the kind and
        call id beside each item should aggregate those instead (SQLite and PostgreSQL do)."""
        from .codec import item_kind

        found: dict[str, PairingSummary] = {}
        for session_id in dict.fromkeys(session_ids):
            if await self.session_info(session_id) is None:
                continue
            rows = [item_kind(item) for item in await self.read(session_id, None)]
            found[session_id] = pairing_of(session_id, rows)
        return found

    async def lease_holders(self, session_ids: Sequence[str]) -> dict[str, LeaseHolder]:
        """The live holder of each listed session's lease, read in one query (or pipeline)
        for the whole list; a session whose lease is free, released or expired is absent.

        Only called when ``"lease"`` is in :attr:`capabilities`. A backend that cannot tell
        raises :class:`NotImplementedError` (the default).
        """
        raise NotImplementedError

    def lease_keepalive(
        self,
        session_id: str,
        fence: Fence,
        ttl: float,
        should_renew: Callable[[], bool],
        on_lost: Callable[[], None],
    ) -> Callable[[], None]:
        """Renew the lease every ``ttl / 3`` seconds until the returned function is called.

        Each renewal is due a third of the ttl after the previous one began (however long
        that one took); a renewal that fails is tried again after ``min(ttl / 12, 1)``
        seconds. Skips a renewal while ``should_renew()`` is false; calls ``on_lost()`` once
        when a renewal finds the lease gone. The default is a task on the running event loop; a
        backend may use its own thread instead (SQLite does, so a busy loop cannot starve it).
        """
        return _keepalive_task(self, session_id, fence, ttl, should_renew, on_lost)


def _keepalive_task(
    backend: StoreBackend,
    session_id: str,
    fence: Fence,
    ttl: float,
    should_renew: Callable[[], bool],
    on_lost: Callable[[], None],
) -> Callable[[], None]:
    async def beat() -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + ttl / 3  # a third of the ttl after the lease was taken
        retry = min(ttl / 12, 1.0)
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            started = loop.time()
            if not should_renew():
                due = started + ttl / 3
                continue
            try:
                kept = await backend.lease_renew(session_id, fence, ttl)
            except Exception as exc:  # a transient failure: try again soon, not a third later
                logger.warning(
                    "threadline: renewing the lease of session %r in %s failed: %s",
                    session_id,
                    backend.where,
                    exc,
                )
                due = loop.time() + retry
                continue
            if not kept:
                on_lost()
                return
            # counted from when the renewal began, so a slow renewal (a pool queue, a busy
            # server) does not push the next one later by its own duration
            due = started + ttl / 3

    task = asyncio.ensure_future(beat())

    def stop() -> None:
        task.cancel()

    return stop
