"""Compaction summaries as stored: one session record, the range it covers, the window it heads.

``sessions/`` only stores summaries; writing one needs a model, so that is done in
:mod:`threadline.run.compaction`. A summary lives in the session record
:data:`SUMMARY_RECORD` and covers the items ``[0, end)``. Raw items are never removed, so
``get_items()``, search and export still see every one of them.

A summary is used only while the range it covers is unchanged. Items leave a session only from
the end (``pop_item``, ``pop_turn``) or all at once (``clear_session``, ``replace_items``), so
the covered range is intact exactly when the session still holds at least ``end`` items and
the item at ``end - 1`` is the one that was summarised (its digest is stored as ``anchor``).
Every read checks both, in the same atomic read as the window itself
(:meth:`~threadline.sessions.backend.StoreBackend.window_since`). The handle also drops the
record: *before* ``clear_session`` / ``replace_items`` (a crash in between loses only the
summary, never leaves a stale one) and after a pop that cut into the range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SessionError
from ..items import Item
from .backend import Fence, Payload, ReadPlan, StartRead, TailWindow
from .codec import decode_record, estimate_tokens

if TYPE_CHECKING:
    from ._base_store import Store
    from ._handle import StoreSession

__all__ = [
    "SUMMARY_PREFIX",
    "SUMMARY_RECORD",
    "Summary",
    "forget_summary",
    "forget_summary_if_cut",
    "is_summary_item",
    "item_digest",
    "read_summary",
    "summary_item",
    "summary_window",
    "summary_window_and_records",
    "tail_since",
]

SUMMARY_RECORD = "threadline.summary"
"""The session record that holds the compaction summary."""

SUMMARY_PREFIX = (
    "[threadline summary] The earlier part of this conversation, summarised; "
    "the messages after this one continue from where it ends:\n\n"
)
"""How the summary item's text starts, so that models (and people) can tell what it is."""

_VERSION = 1


def summary_item(text: str) -> Item:
    """The item a window starts with: a system message holding the summary text.

    A system message is what every provider accepts anywhere in the input (the Responses API
    as is; chat completions as a ``system`` message; the local model's transcript as context).
    """
    return {"role": "system", "content": SUMMARY_PREFIX + text}


def is_summary_item(item: object) -> bool:
    """Whether ``item`` is a compaction summary as :func:`summary_item` makes it."""
    if not isinstance(item, dict) or item.get("role") != "system":
        return False
    content = item.get("content")
    return isinstance(content, str) and content.startswith(SUMMARY_PREFIX)


def item_digest(item: Item) -> str:
    """A digest of ``item``'s content (canonical JSON), to recognise it later."""
    text = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Summary:
    """A stored compaction summary.

    ``text`` is what the model wrote; it covers the items ``[0, end)`` of the session, whose
    item ``end - 1`` had the digest ``anchor``; ``covered_tokens`` is the estimated size of those
    raw items; ``compactions`` counts the compactions that built it (each one summarised the
    previous summary plus newly covered turns); ``model`` names the model that wrote it.
    """

    text: str
    end: int
    anchor: str
    covered_tokens: int
    compactions: int = 1
    created_at: float = 0.0
    model: str | None = None

    @property
    def item(self) -> Item:
        """The system message a window starts with (the same bytes until the next compaction)."""
        return summary_item(self.text)

    @property
    def tokens(self) -> int:
        """The estimated tokens of :attr:`item`, as a window counts them."""
        return estimate_tokens(self.item)

    def holds(self, tail: TailWindow) -> bool:
        """Whether the range this summary covers is unchanged, judged from a read from ``end``."""
        return (
            tail.count >= self.end
            and tail.anchor is not None
            and item_digest(tail.anchor) == self.anchor
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON value stored in :data:`SUMMARY_RECORD`."""
        return {
            "version": _VERSION,
            "text": self.text,
            "end": self.end,
            "anchor": self.anchor,
            "covered_tokens": self.covered_tokens,
            "compactions": self.compactions,
            "created_at": self.created_at,
            "model": self.model,
        }

    @classmethod
    def from_record(cls, session_id: str, value: object) -> Summary:
        """Read a stored record, or raise :class:`SessionError` naming what is wrong."""
        problem = _problem(value)
        if problem is not None:
            raise SessionError(
                f"session {session_id!r}: the compaction summary record {SUMMARY_RECORD!r} is "
                f"damaged ({problem}); delete it (put_records({{{SUMMARY_RECORD!r}: None}})) "
                "and compact again"
            )
        assert isinstance(value, dict)
        return cls(
            text=value["text"],
            end=value["end"],
            anchor=value["anchor"],
            covered_tokens=value["covered_tokens"],
            compactions=value["compactions"],
            created_at=float(value["created_at"]),
            model=value.get("model"),
        )


def _problem(value: object) -> str | None:
    if not isinstance(value, dict):
        return f"a {type(value).__name__}, not an object"
    if value.get("version") != _VERSION:
        return f"version {value.get('version')!r}, this threadline reads {_VERSION}"
    for name, kind in (("text", str), ("anchor", str)):
        if not isinstance(value.get(name), kind):
            return f"{name} is not a string"
    for name in ("end", "covered_tokens", "compactions"):
        number = value.get(name)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            return f"{name} is not a count"
    if value["end"] < 1:
        return "it covers no items"
    if isinstance(value.get("created_at"), bool) or not isinstance(
        value.get("created_at"), (int, float)
    ):
        return "created_at is not a number"
    if value.get("model") is not None and not isinstance(value.get("model"), str):
        return "model is not a string"
    return None


# ---------------------------------------------------------------------- reads and writes


async def _stored(store: Store, session_id: str) -> Summary | None:
    if "records" not in store.capabilities:
        return None
    payload = await store._backend.get_record(session_id, SUMMARY_RECORD)
    if payload is None:
        return None
    value = decode_record(store.codec, session_id, SUMMARY_RECORD, payload)
    return Summary.from_record(session_id, value)


async def read_summary(session: StoreSession) -> Summary | None:
    """The session's stored summary, whether or not its range still holds (see
    :func:`tail_since` to check it)."""
    return await _stored(session._usable(), session.session_id)


async def tail_since(
    session: StoreSession, start: int, max_items: int | None = None, max_tokens: int | None = None
) -> TailWindow:
    """One atomic read of ``session``'s items from position ``start`` on (see
    :class:`~threadline.sessions.backend.TailWindow`)."""
    return await session._usable()._backend.window_since(
        session.session_id, start, max_items, max_tokens
    )


def _summary_plan(
    store: Store, session_id: str, found: list[Summary]
) -> Callable[[Payload, int | None, int | None], tuple[int, int | None, int | None] | None]:
    """The ``start_for`` of a summary window: where the tail after the summary starts and
    what is left of the budget, or ``None`` when the summary does not fit (the plain
    window); the summary read is kept in ``found``."""

    def start_for(
        payload: Payload, max_items: int | None, max_tokens: int | None
    ) -> tuple[int, int | None, int | None] | None:
        value = decode_record(store.codec, session_id, SUMMARY_RECORD, payload)
        summary = Summary.from_record(session_id, value)
        tokens = summary.tokens
        if (max_tokens is not None and tokens > max_tokens) or (
            max_items is not None and max_items < 1
        ):
            return None  # the summary does not fit this budget: the plain window
        found[:] = [summary]  # (a retried read may call this again)
        return (
            summary.end,
            None if max_items is None else max_items - 1,
            None if max_tokens is None else max_tokens - tokens,
        )

    return start_for


async def _with_summary(
    store: Store,
    session_id: str,
    read: list[Item] | TailWindow,
    found: list[Summary],
    max_items: int | None,
    max_tokens: int | None,
) -> list[Item]:
    if isinstance(read, list):
        return read
    if found and found[0].holds(read):
        return [found[0].item, *read.items]
    return await store._backend.window(session_id, max_items, max_tokens)  # the range changed


async def summary_window(
    session: StoreSession, max_items: int | None, max_tokens: int | None
) -> list[Item]:
    """``get_window``: the summary (when one holds and fits) then the newest whole turns
    after the range it covers, within what is left of the budget; one read of the store."""
    store = session._usable()
    backend = store._backend
    session_id = session.session_id
    if "records" not in store.capabilities:
        return await backend.window(session_id, max_items, max_tokens)
    found: list[Summary] = []
    start_for = _summary_plan(store, session_id, found)
    _, read = await backend.window_after_record(
        session_id,
        SUMMARY_RECORD,
        max_items,
        max_tokens,
        lambda payload: start_for(payload, max_items, max_tokens),
    )
    return await _with_summary(store, session_id, read, found, max_items, max_tokens)


StartFinish = Callable[[StartRead], Awaitable[tuple[list[Item], dict[str, Any], int]]]
"""Turns a run's start read into ``(window, values, count)`` (see :func:`start_read_plan`)."""


def start_read_plan(
    session: StoreSession,
    keys: Sequence[str],
    budget: Callable[[Mapping[str, Any]], tuple[int | None, int | None]],
) -> tuple[ReadPlan, StartFinish]:
    """The read of :func:`summary_window_and_records` as a plan for the backend and the step
    that finishes it: ``finish(read)`` gives the window, the values and the count (it may
    read the window again when the summary's range changed under the read). The plan may be
    read on its own (:func:`summary_window_and_records`) or as a lease is granted
    (:meth:`~threadline.sessions.backend.StoreBackend.lease_acquire_and_read`)."""
    store = session._usable()
    session_id = session.session_id
    found: list[Summary] = []
    start_for = _summary_plan(store, session_id, found)
    values: dict[str, Any] = {}
    chosen: list[tuple[int | None, int | None]] = []

    def plan(records: Mapping[str, Payload]) -> tuple[int | None, int | None]:
        decoded = {
            key: decode_record(store.codec, session_id, key, payload)
            for key, payload in records.items()
        }
        values.clear()  # (a retried read may call this again)
        values.update(decoded)
        chosen[:] = [budget(decoded)]
        return chosen[0]

    async def finish(read: StartRead) -> tuple[list[Item], dict[str, Any], int]:
        _, _, window, count = read
        max_items, max_tokens = chosen[0]
        if max_items == 0 or max_tokens == 0:
            return [], values, count
        items = await _with_summary(store, session_id, window, found, max_items, max_tokens)
        return items, values, count

    return ReadPlan(list(keys), SUMMARY_RECORD, plan, start_for), finish


async def summary_window_and_records(
    session: StoreSession,
    keys: Sequence[str],
    budget: Callable[[Mapping[str, Any]], tuple[int | None, int | None]],
) -> tuple[list[Item], dict[str, Any], int]:
    """The window (as :func:`summary_window`), the values of the session records ``keys``
    and the session's item count, in one read of the store (the session must keep records).

    ``budget`` turns the values found (``{key: value}``, decoded; missing keys absent) into
    the window's ``(max_items, max_tokens)``; it may run on a reader thread, so it must be
    pure and fast. A budget of 0 items or 0 tokens gives an empty window. Returns the window,
    the values and the count.
    """
    plan, finish = start_read_plan(session, keys, budget)
    read = await session._usable()._backend.records_and_window_after_record(
        session.session_id, plan.keys, plan.key, plan.budget, plan.start_for
    )
    return await finish(read)


async def forget_summary(store: Store, session_id: str, fence: Fence | None) -> None:
    """Drop the session's summary (before its history is cleared or replaced)."""
    if "records" not in store.capabilities:
        return
    if await store._backend.get_record(session_id, SUMMARY_RECORD) is not None:
        await store._backend.put_records(session_id, {SUMMARY_RECORD: None}, fence)


async def forget_summary_if_cut(store: Store, session_id: str, fence: Fence | None) -> None:
    """Drop the session's summary when a pop cut into the range it covers."""
    if "records" not in store.capabilities:
        return
    payload = await store._backend.get_record(session_id, SUMMARY_RECORD)
    if payload is None:
        return
    try:
        summary = Summary.from_record(
            session_id, decode_record(store.codec, session_id, SUMMARY_RECORD, payload)
        )
    except SessionError:
        return  # a damaged record is reported where it is read, not by an undo
    tail = await store._backend.window_since(session_id, summary.end, 0, 0)
    if not summary.holds(tail):
        await store._backend.put_records(session_id, {SUMMARY_RECORD: None}, fence)
