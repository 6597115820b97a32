"""What the inspector reads from a store: items by position (a corrupt row is reported in its
place, the rest still read), turn starts, and the one-line summary of a session in the list.

Positions are what the inspector's routes speak (0 is the oldest item). A threadline store
reads a range through its backend's newest-``n`` and oldest-``n`` reads, whichever touches
fewer rows; any other :class:`~threadline.sessions.SessionStore` through ``get_items()``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptItemError, SessionError, UserError
from ..items import Item, is_user_message, message_text
from ..sessions import lease as lease_driver
from ..sessions._metadata import derive_title
from ..sessions._summary import SUMMARY_RECORD
from ..sessions._usage import USAGE_KEY
from ..sessions.backend import StoreBackend
from ..sessions.base import SessionInfo
from ..sessions.pending import PENDING_RUN_RECORD

__all__ = [
    "MAX_CORRUPT",
    "Range",
    "SessionReader",
    "held_here",
    "lease_holders_of",
    "list_summary",
    "orphan_positions",
    "pairings_of",
    "preview_text",
]

MAX_CORRUPT = 200
"""The most corrupt rows one range read steps around before it gives up."""

TAIL = 20
"""How many of the newest items the list reads for a session's preview and repair badge."""

TITLE_SCAN = 50
"""How many of the oldest items a derived title looks through (as ``session.title()``)."""

PREVIEW_LENGTH = 160

_CALL_OUTPUTS = {
    "function_call": "function_call_output",
    "custom_tool_call": "custom_tool_call_output",
}


@dataclass
class Range:
    """Items ``[start, stop)`` of a session: ``items`` as ``(position, item)``, and the rows
    that could not be decoded as ``(position, why)``."""

    start: int
    stop: int
    items: list[tuple[int, Item]] = field(default_factory=list)
    corrupt: list[tuple[int, str]] = field(default_factory=list)


def _reason(exc: CorruptItemError) -> str:
    text = str(exc)
    start, end = text.find(" is corrupt ("), text.rfind(");")
    return text[start + len(" is corrupt (") : end] if 0 <= start < end else text


class SessionReader:
    """Position reads of one session of ``store`` (``count`` items)."""

    def __init__(self, store: Any, session_id: str, count: int) -> None:
        self.store = store
        self.session_id = session_id
        self.count = count
        backend = getattr(store, "_backend", None)
        self._backend = backend if isinstance(backend, StoreBackend) else None
        self._all: list[Item] | None = None

    async def _slice(self, start: int, stop: int, newest: bool) -> list[Item]:
        if self._backend is None:
            if self._all is None:
                self._all = list(await self.store.session(self.session_id).get_items())
            return self._all[start:stop]
        if newest:
            found = await self._backend.read(self.session_id, self.count - start)
            return found[: stop - start]
        found = await self._backend.read_oldest(self.session_id, stop)
        return found[start:]

    async def read(self, start: int, stop: int) -> Range:
        """The items at positions ``[start, stop)`` (clipped to the session's size)."""
        start, stop = max(0, start), min(stop, self.count)
        result = Range(start, max(start, stop))
        if stop > start:
            await self._read_into(result, start, stop)
        result.items.sort(key=lambda pair: pair[0])
        result.corrupt.sort()
        return result

    async def _read_into(self, result: Range, start: int, stop: int) -> None:
        # The cheaper read first (fewer rows); a corrupt row outside the range makes it try
        # the other one, whose rows lie on the range's other side.
        newest_first = self.count - start < stop
        last: CorruptItemError | None = None
        for newest in (newest_first, not newest_first):
            try:
                items = await self._slice(start, stop, newest)
            except CorruptItemError as exc:
                where = exc.position
                if isinstance(where, int) and start <= where < stop:
                    if len(result.corrupt) >= MAX_CORRUPT:
                        raise
                    result.corrupt.append((where, _reason(exc)))
                    if where > start:
                        await self._read_into(result, start, where)
                    if where + 1 < stop:
                        await self._read_into(result, where + 1, stop)
                    return
                last = exc
                continue
            result.items.extend(enumerate(items, start))
            return
        assert last is not None
        raise last

    async def user_positions(self) -> list[int]:
        """The positions of the session's user messages (where its turns start)."""
        if self._backend is not None:
            try:
                return await self._backend.user_positions(self.session_id)
            except CorruptItemError:
                pass  # a backend that decodes every row: find them around the corrupt ones
        whole = await self.read(0, self.count)
        return [position for position, item in whole.items if is_user_message(item)]


def held_here(store: object, session_id: str) -> bool:
    """Whether a writer in this process holds the session's lease (no store round trip).

    Reads the lease driver's in-process lock: leases held by other processes show only in a
    session's health check (which asks the store).
    """
    return (lease_driver.fenced_lease, store, session_id) in lease_driver._held


async def lease_holders_of(store: Any, session_ids: Sequence[str]) -> dict[str, Any] | None:
    """Who holds each listed session's lease as the store records it (one query for the
    page; see :meth:`~threadline.sessions.Store.lease_holders`), or ``None`` when the store
    cannot tell (no ``"lease"``, or a store or backend without ``lease_holders``)."""
    read = getattr(store, "lease_holders", None)
    if not callable(read) or "lease" not in getattr(store, "capabilities", frozenset()):
        return None
    try:
        found = await read(list(session_ids))
    except (UserError, NotImplementedError):
        return None
    return dict(found)


_PAIRINGS: weakref.WeakKeyDictionary[Any, dict[tuple[str, int, float], Any]] = (
    weakref.WeakKeyDictionary()
)
PAIRINGS_KEPT = 10_000
"""How many sessions' pairing summaries the list keeps per store (keyed on the session's
item count and update time, so a change is read again)."""


async def pairings_of(store: Any, infos: Sequence[SessionInfo]) -> dict[str, Any] | None:
    """The whole-session function-call pairing of the listed sessions longer than the
    list's tail (:meth:`~threadline.sessions.Store.pairing_summary`), when the store reads it
    from stored columns; ``None`` otherwise (the list then checks the newest items only).

    A session's answer is kept until it changes (its item count or update time moves), so
    a list page re-reads only the sessions written since.
    """
    if not getattr(store, "pairs_by_columns", False):
        return None
    try:
        kept = _PAIRINGS.setdefault(store, {})
    except TypeError:  # a store that cannot be weakly referenced: no cache
        kept = {}
    keys = {
        info.session_id: (info.session_id, info.item_count, info.updated_at.timestamp())
        for info in infos
        if info.item_count > TAIL
    }
    found = {sid: kept[key] for sid, key in keys.items() if key in kept}
    wanted = [sid for sid in keys if sid not in found]
    if wanted:
        read = await store.pairing_summary(wanted)
        if len(kept) + len(read) > PAIRINGS_KEPT:
            kept.clear()
        for sid, summary in read.items():
            kept[keys[sid]] = summary
            found[sid] = summary
    return found


def preview_text(items: Sequence[Item], length: int = PREVIEW_LENGTH) -> str | None:
    """The newest message's text on one line, cut to ``length`` characters."""
    for item in reversed(items):
        text = " ".join(message_text(item).split())
        if text:
            return text if len(text) <= length else text[: length - 1].rstrip() + "…"
    return None


def _output_key(item: Item) -> tuple[str, object] | None:
    kind = item.get("type")
    if kind in _CALL_OUTPUTS.values():
        return str(kind), item.get("call_id")
    if item.get("role") == "tool" and kind in (None, "message"):
        return "function_call_output", item.get("tool_call_id")
    return None


def orphan_positions(
    items: Sequence[tuple[int, Item]], *, whole: bool = True
) -> tuple[list[int], list[int]]:
    """Positions of the calls with no output after them and of the outputs with no call
    before them. ``whole=False`` (a tail of the history): outputs whose call may lie before
    the tail are not judged."""
    waiting: dict[tuple[str, object], list[int]] = {}
    lone_outputs: list[int] = []
    for position, item in items:
        kind = item.get("type")
        if kind in _CALL_OUTPUTS:
            waiting.setdefault((_CALL_OUTPUTS[str(kind)], item.get("call_id")), []).append(position)
            continue
        key = _output_key(item)
        if key is None:
            continue
        calls = waiting.get(key)
        if calls:
            calls.pop(0)
        elif whole:
            lone_outputs.append(position)
    lone_calls = sorted(position for positions in waiting.values() for position in positions)
    return lone_calls, lone_outputs


def _count(value: Any, name: str) -> int:
    found = value.get(name, 0) if isinstance(value, Mapping) else 0
    return found if isinstance(found, int) and not isinstance(found, bool) else 0


async def _record(session: Any, key: str, problems: list[str]) -> Any:
    try:
        return await session.get_record(key)
    except SessionError as exc:
        problems.append(f"record {key!r}: {exc}")
        return None


async def list_summary(
    store: Any,
    info: SessionInfo,
    visible: Callable[[str], str | None],
    holders: Mapping[str, Any] | None = None,
    pairings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of the sessions list: title, preview, counts, tokens, tags and badges.

    ``holders`` is :func:`lease_holders_of` for the page (``None``: the store cannot tell,
    and the busy badge shows only leases held in this process). ``pairings`` is
    :func:`pairings_of` for the page: with it, the needs-repair badge covers the function
    calls of the whole session (``repair_checked: "function_calls"``; custom tool calls and
    ``role: "tool"`` messages still only among the newest :data:`TAIL` items); without it
    only the newest items (``"newest"``). A session no longer than the tail is checked
    whole (``"all"``).

    Reads a bounded amount whatever the session's size: the newest :data:`TAIL` items, the
    oldest :data:`TITLE_SCAN` when the title must be derived, the turn starts, and the
    usage, summary, origin and pending-run records. ``visible`` maps a session id to the id
    the request's tenant knows it by (``None``: not the tenant's).
    """
    session_id, count = info.session_id, info.item_count
    visible_id = visible(session_id) or session_id
    reader = SessionReader(store, session_id, count)
    problems: list[str] = []
    corrupt = False
    records = "records" in getattr(store, "capabilities", frozenset())
    session = store.session(session_id)
    metadata = info.metadata
    if metadata is None and records:  # an entry listed without its metadata
        found = await _record(session, "metadata", problems)
        metadata = found if isinstance(found, dict) else {}
    metadata = metadata or {}
    title = metadata.get("title") if isinstance(metadata.get("title"), str) else None

    async def items_part() -> tuple[list[tuple[int, Item]], str | None, int]:
        nonlocal corrupt
        small = count <= max(TAIL, TITLE_SCAN)
        tail = await reader.read(0 if small else count - TAIL, count)
        corrupt = corrupt or bool(tail.corrupt)
        derived = None
        if not title:
            head = tail if small else await reader.read(0, TITLE_SCAN)
            corrupt = corrupt or bool(head.corrupt)
            derived = derive_title([item for _, item in head.items])
        turns = (
            sum(1 for _, item in tail.items if is_user_message(item))
            if small
            else len(await reader.user_positions())
        )
        return tail.items, derived, turns

    async def records_part() -> tuple[Any, Any, Any, Any]:
        if not records:
            return None, None, None, None
        return (
            await _record(session, USAGE_KEY, problems),
            await _record(session, SUMMARY_RECORD, problems),
            await _record(session, "origin", problems),
            await _record(session, PENDING_RUN_RECORD, problems),
        )

    try:
        (tail_items, derived, turns), (usage, summary, origin, pending) = await asyncio.gather(
            items_part(), records_part()
        )
    except CorruptItemError as exc:  # more corrupt rows than a read steps around
        problems.append(str(exc))
        tail_items, derived, turns = [], None, 0
        usage = summary = origin = pending = None
        corrupt = True
    lone_calls, lone_outputs = orphan_positions(tail_items, whole=count <= TAIL)
    pairing = None if pairings is None else pairings.get(session_id)
    if count <= TAIL:
        repair_checked = "all"
    elif pairing is not None:
        repair_checked = "function_calls"
        if not pairing.paired:
            lone_outputs = [*lone_outputs, -1]  # somewhere before the tail
    else:
        repair_checked = "newest"
    holder = None if holders is None else holders.get(session_id)
    here = held_here(store, session_id)
    parent = origin.get("parent") if isinstance(origin, Mapping) else None
    parent = visible(parent) if isinstance(parent, str) else None
    return {
        "id": visible_id,
        "object": "inspect.session",
        "title": title or derived,
        "preview": preview_text([item for _, item in tail_items]),
        "created_at": info.created_at.timestamp(),
        "updated_at": info.updated_at.timestamp(),
        "items": count,
        "turns": turns,
        "usage": {
            "requests": _count(usage, "requests"),
            "input_tokens": _count(usage, "input_tokens"),
            "output_tokens": _count(usage, "output_tokens"),
            "total_tokens": _count(usage, "total_tokens"),
            "runs": _count(usage, "turns"),
        },
        "metadata": metadata,
        "badges": {
            "busy": here or holder is not None,
            "compacted": summary is not None,
            "needs_repair": bool(lone_calls or lone_outputs or corrupt or problems),
            "corrupt": corrupt or bool(problems),
            "pending_approval": pending is not None,
            "fork": parent is not None,
        },
        "parent_id": parent,
        "repair_checked": repair_checked,
        "lease": {
            "holder": "a request of this server"
            if here
            else (None if holder is None else holder.holder),
            "expires_in": None if holder is None else round(holder.expires_in(), 3),
            "checked": "store" if holders is not None else "this process",
        },
    }
