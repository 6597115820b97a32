"""Plain-list models of the session contract, used by the conformance suite as the oracle.

Written straight from the contract's wording over whole items (no shared code with the
backends' window selection), so a backend that agrees with these functions agrees with the
contract, not merely with another backend.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...items import Item, is_user_message
from ..codec import estimate_tokens

__all__ = ["check_window", "reference_pop_turn", "reference_window"]


def _orphan_outputs(window: Sequence[Item]) -> list[int]:
    calls = {item.get("call_id") for item in window if item.get("type") == "function_call"}
    return [
        index
        for index, item in enumerate(window)
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls
    ]


def reference_window(
    items: Sequence[Item], max_items: int | None = None, max_tokens: int | None = None
) -> list[Item]:
    """The window ``get_window(max_items, max_tokens)`` must return for history ``items``."""
    taken = 0
    spent = 0
    for item in reversed(items):
        cost = estimate_tokens(item)
        if max_items is not None and taken >= max_items:
            break
        if max_tokens is not None and spent + cost > max_tokens:
            break
        taken += 1
        spent += cost
    window = list(items[len(items) - taken :]) if taken else []
    if taken == len(items):
        return window  # nothing was cut, so no turn was cut either
    while True:
        users = [index for index, item in enumerate(window) if is_user_message(item)]
        if users:
            window = window[users[0] :]
        orphans = _orphan_outputs(window)
        if not orphans:
            return window
        window = window[orphans[-1] + 1 :]


def reference_pop_turn(items: list[Item]) -> list[Item]:
    """Remove (in place) and return what ``pop_turn()`` must remove from ``items``."""
    for index in range(len(items) - 1, -1, -1):
        if is_user_message(items[index]):
            removed = items[index:]
            del items[index:]
            return removed
    return []


def check_window(
    history: Sequence[Item],
    window: Sequence[Item],
    max_items: int | None = None,
    max_tokens: int | None = None,
) -> None:
    """Assert the contract's rules for a window taken from ``history``."""
    size = len(window)
    assert list(window) == list(history[len(history) - size :] if size else []), (
        "a window is the newest items of the history, oldest first"
    )
    if max_items is not None:
        assert size <= max_items, f"window of {size} items exceeds max_items={max_items}"
    if max_tokens is not None:
        spent = sum(estimate_tokens(item) for item in window)
        assert spent <= max_tokens, f"window of {spent} tokens exceeds max_tokens={max_tokens}"
    assert not _orphan_outputs(window), "a window split a function call from its output"
    if size < len(history) and any(is_user_message(item) for item in window):
        assert is_user_message(window[0]), "a cut window must start at a user message"
