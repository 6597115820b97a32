"""What the next request sends, and a fork beside its parent.

:func:`next_request` is the window a run on the session would load, computed as the runner
does it (``get_window`` with the history budget, an explicit ``max_tokens`` calibrated by the
session's reported/estimated ratio, then orphan repair): the compaction summary it starts with
(and the items ``[0, end)`` that summary covers), the window's items by position, and how the
budget splits between summary, window and free room. :func:`fork_diff` aligns two sessions on
their shared prefix.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from ..agent import Agent
from ..errors import SessionError
from ..items import Item, is_user_message, repair_orphans
from ..models.base import Model
from ..run.context_budget import history_budget
from ..run.steps import tool_specs
from ..sessions._summary import SUMMARY_RECORD, Summary, is_summary_item, tail_since
from ..sessions._usage import USAGE_KEY, calibrated_budget, calibration_ratio
from ..sessions.codec import estimate_tokens
from ._inspect_reads import Range, SessionReader

__all__ = ["agent_budget", "fork_diff", "next_request"]

DIFF_LIMIT = 2000
"""The most diverging items of each side a diff returns."""


def agent_budget(agent: Agent[Any]) -> tuple[int | None, int | None]:
    """``(history budget, context window)`` of a request by ``agent`` with no new input, or
    ``(None, None)`` when its model's context window is unknown."""
    model = agent.model
    probe: Any
    if isinstance(model, Model):
        probe = model
    elif isinstance(model, str):
        probe = SimpleNamespace(model=model)
    else:
        return None, None
    instructions = agent.instructions if isinstance(agent.instructions, str) else None
    budget = history_budget(
        probe, agent.model_settings, instructions=instructions, tools=tool_specs(agent)
    )
    if budget is None:
        return None, None
    return budget.history_tokens, budget.context_window


async def _summary(session: Any) -> tuple[Summary | None, str | None]:
    if "records" not in session.capabilities:
        return None, None
    try:
        value = await session.get_record(SUMMARY_RECORD)
        return (
            (None, None)
            if value is None
            else (Summary.from_record(session.session_id, value), None)
        )
    except SessionError as exc:
        return None, str(exc)


async def next_request(
    store: Any,
    session_id: str,
    count: int,
    *,
    max_items: int | None,
    max_tokens: int | None,
    default_tokens: int | None,
    context_window: int | None,
) -> dict[str, Any]:
    """The window a run would send next, its summary and the budget split (JSON)."""
    session = store.session(session_id)
    summary, damaged = await _summary(session)
    source = "request"
    budget = max_tokens
    ratio = None
    if budget is not None and "records" in session.capabilities:
        ratio = calibration_ratio(await session.get_record(USAGE_KEY))
        budget = calibrated_budget(budget, ratio)
    elif budget is None:
        budget, source = default_tokens, "model" if default_tokens is not None else "none"
    window = await session.get_window(max_items=max_items, max_tokens=budget)
    used_summary = bool(window) and summary is not None and is_summary_item(window[0])
    raw = window[1:] if used_summary else window
    start = count - len(raw)
    kept = repair_orphans(raw)
    kept_ids = {id(item) for item in kept}
    dropped = [start + index for index, item in enumerate(raw) if id(item) not in kept_ids]
    window_tokens = sum(estimate_tokens(item) for item in kept)
    summary_tokens = summary.tokens if used_summary and summary is not None else 0
    stored_tokens = (await tail_since(session, 0, 0, 0)).tail_tokens if count else 0
    holds = None
    if summary is not None:
        tail = await tail_since(session, summary.end, 0, 0)
        holds = summary.holds(tail)
    free = None if budget is None else max(0, budget - summary_tokens - window_tokens)
    return {
        "object": "inspect.context",
        "items": count,
        "stored_tokens": stored_tokens,
        "budget": {
            "max_tokens": budget,
            "max_items": max_items,
            "source": source,
            "context_window": context_window,
            "requested_max_tokens": max_tokens,
            "calibration": ratio,
        },
        "summary": None
        if summary is None
        else {
            "text": summary.text,
            "covers": [0, summary.end],
            "covered_tokens": summary.covered_tokens,
            "tokens": summary.tokens,
            "compactions": summary.compactions,
            "model": summary.model,
            "created_at": summary.created_at,
            "holds": holds,
            "sent": used_summary,
        },
        "summary_damaged": damaged,
        "window": {
            "start": start,
            "stop": count,
            "positions": [start + index for index, item in enumerate(raw) if id(item) in kept_ids],
            "dropped_orphans": dropped,
            "tokens": window_tokens,
        },
        "split": {"summary": summary_tokens, "window": window_tokens, "free": free},
    }


def _canonical(item: Item) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _side(visible_id: str, whole: Range, shared: int) -> dict[str, Any]:
    rest = [pair for pair in whole.items if pair[0] >= shared]
    return {
        "id": visible_id,
        "items": whole.stop,
        "data": [
            {"position": position, "tokens": estimate_tokens(item), "item": item}
            for position, item in rest[:DIFF_LIMIT]
        ],
        "corrupt": [{"position": p, "reason": why} for p, why in whole.corrupt if p >= shared],
        "truncated": len(rest) > DIFF_LIMIT,
    }


async def fork_diff(
    store: Any,
    left: tuple[str, str, int],
    right: tuple[str, str, int],
    forked_at: int | None,
) -> dict[str, Any]:
    """``left`` (the parent) and ``right`` (the fork), each ``(session id, visible id, item
    count)``, aligned on the longest shared prefix of equal items."""
    sides = []
    for session_id, _, count in (left, right):
        sides.append(await SessionReader(store, session_id, count).read(0, count))
    a, b = dict(sides[0].items), dict(sides[1].items)
    shared = 0
    limit = min(sides[0].stop, sides[1].stop)
    while (
        shared < limit
        and shared in a
        and shared in b
        and _canonical(a[shared]) == _canonical(b[shared])
    ):
        shared += 1
    shared_turns = sum(1 for position in range(shared) if is_user_message(a[position]))
    return {
        "object": "inspect.diff",
        "shared": shared,
        "shared_turns": shared_turns,
        "forked_at": forked_at,
        "parent": _side(left[1], sides[0], shared),
        "fork": _side(right[1], sides[1], shared),
    }
