"""Choosing a history window: the newest items within a budget, cut at a safe place.

Pure functions over ``(kind, call_id, tokens)`` rows, shared by every backend so that all of
them select exactly the same window. A backend streams its rows newest first into
:func:`collect` (which stops reading as soon as the budget is spent, so the cost follows the
window size and not the history length), then asks :func:`safe_start` where the window may
begin.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import UserError
from ..items import is_user_message
from .codec import KIND_CALL, KIND_OTHER, KIND_OUTPUT, KIND_USER, estimate_tokens

__all__ = [
    "check_fork_cut",
    "collect",
    "item_pairs",
    "safe_start",
    "window_of_items",
    "window_size",
]

Meta = tuple[int, "str | None"]


def collect(
    rows_newest_first: Iterable[tuple[int, str | None, int]],
    max_items: int | None,
    max_tokens: int | None,
) -> tuple[list[Meta], bool]:
    """Take rows newest first while they fit the budget.

    Returns the taken ``(kind, call_id)`` pairs, oldest first, and whether an older row was
    left out (``True`` when the budget cut the history).
    """
    taken: list[Meta] = []
    total = 0
    for kind, call_id, tokens in rows_newest_first:
        if max_items is not None and len(taken) >= max_items:
            taken.reverse()
            return taken, True
        if max_tokens is not None and total + tokens > max_tokens:
            taken.reverse()
            return taken, True
        total += tokens
        taken.append((kind, call_id))
    taken.reverse()
    return taken, False


def safe_start(metas: Sequence[Meta], cut: bool) -> int:
    """Index in ``metas`` (oldest first) where a window cut out of a longer history may start.

    When nothing was cut the whole history is the window. Otherwise the window starts at its
    first user message when it holds one (it never starts inside a turn), and it never holds a
    function call output whose call fell outside it (a call and its output stay together).
    """
    if not cut:
        return 0
    start = 0
    while True:
        for index in range(start, len(metas)):
            if metas[index][0] == KIND_USER:
                start = index
                break
        calls = {call_id for kind, call_id in metas[start:] if kind == KIND_CALL}
        orphan = -1
        for index in range(len(metas) - 1, start - 1, -1):
            kind, call_id = metas[index]
            if kind == KIND_OUTPUT and call_id not in calls:
                orphan = index
                break
        if orphan < 0:
            return start
        start = orphan + 1


def window_size(
    rows_newest_first: Iterable[tuple[int, str | None, int]],
    max_items: int | None,
    max_tokens: int | None,
) -> int:
    """How many of the newest items make up the window for this budget."""
    metas, cut = collect(rows_newest_first, max_items, max_tokens)
    return len(metas) - safe_start(metas, cut)


def _row(item: Mapping[str, Any]) -> tuple[int, str | None, int]:
    item_type = item.get("type")
    call_id = item.get("call_id")
    call_id = call_id if isinstance(call_id, str) else None
    tokens = estimate_tokens(dict(item))
    if item_type == "function_call":
        return KIND_CALL, call_id, tokens
    if item_type == "function_call_output":
        return KIND_OUTPUT, call_id, tokens
    return (KIND_USER if is_user_message(dict(item)) else KIND_OTHER), None, tokens


def window_of_items(
    items: Sequence[Mapping[str, Any]], max_items: int | None, max_tokens: int | None
) -> list[Any]:
    """The same window as ``get_window`` selects, cut out of a list of decoded items: for a
    session that has no ``get_window`` of its own (an OpenAI Agents SDK session, say)."""
    if max_items is None and max_tokens is None:
        return list(items)
    size = window_size((_row(item) for item in reversed(items)), max_items, max_tokens)
    return list(items[len(items) - size :]) if size else []


def item_pairs(items: Iterable[Mapping[str, Any]]) -> Iterator[tuple[int, int, str | None]]:
    """The ``(position, kind, call_id)`` of the function calls and outputs among ``items``
    (what :func:`check_fork_cut` takes, for a backend that has the decoded items at hand)."""
    for position, item in enumerate(items):
        item_type = item.get("type")
        if item_type == "function_call":
            yield position, KIND_CALL, item.get("call_id")
        elif item_type == "function_call_output":
            yield position, KIND_OUTPUT, item.get("call_id")


def check_fork_cut(session_id: str, at: int, pairs: Iterable[tuple[int, int, str | None]]) -> None:
    """Refuse a fork whose first ``at`` items would hold a function call without its output.

    ``pairs`` are the ``(position, kind, call_id)`` of the session's function calls and
    outputs, oldest first. A copy that ends between a call and its output is not valid to send
    to any model, so every backend refuses it the same way (:class:`UserError` naming both
    items and the nearest cuts that keep them together) instead of moving the cut silently.
    """
    open_calls: dict[str | None, int] = {}
    for position, kind, call_id in pairs:
        if kind == KIND_CALL and position < at:
            open_calls.setdefault(call_id, position)
        elif kind == KIND_OUTPUT and call_id in open_calls:
            call = open_calls.pop(call_id)
            if position >= at:
                raise UserError(
                    f"cannot fork session {session_id!r} at {at}: item {call} is a function "
                    f"call (call_id {call_id!r}) whose output is item {position}, and a copy "
                    f"that ends between them is not valid to send; fork at {call} or at "
                    f"{position + 1}"
                )
