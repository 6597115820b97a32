"""A session's health for the inspector: what would make a request fail or mislead, and the
repair that fixes it, shown as a preview before it is applied.

Flags: a call with no output after it and an output with no call before it (the rule an
import checks, :func:`~threadline.items.pairing_problem`; a superset of what
:func:`~threadline.items.repair_orphans` drops from a window), a row that cannot be decoded,
a damaged session record, a stale or damaged compaction summary, a held writer lease, a run
waiting for approvals. The repair drops the orphans and the corrupt rows in one
``replace_items`` (which also drops the compaction summary: the next compaction makes a new
one). The preview's ``plan`` names the state it was computed on; applying a plan whose session
changed meanwhile is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..errors import SessionBusyError, SessionError
from ..items import Item
from ..sessions._summary import SUMMARY_RECORD, Summary, item_digest
from ..sessions.base import SessionInfo
from ..sessions.pending import PENDING_RUN_RECORD, read_pending_run
from ._inspect_reads import Range, SessionReader, held_here, lease_holders_of, orphan_positions

__all__ = ["Health", "check_health", "lease_state"]

_RECORDS = ("metadata", "usage", "origin")


@dataclass
class Health:
    """The result of :func:`check_health`: the JSON the route answers, and the items a repair
    keeps (``None`` when nothing needs repair)."""

    body: dict[str, Any]
    kept: list[Item] | None
    plan: str | None


def _plan_token(info: SessionInfo, drops: list[int]) -> str:
    text = json.dumps([info.item_count, info.updated_at.timestamp(), drops])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def lease_state(store: Any, session_id: str) -> dict[str, Any]:
    """Whether a writer holds the session's lease, in this process or any other.

    Reads the holder as the store records it (:meth:`~threadline.sessions.Store.lease_holders`,
    which takes nothing); a store that cannot tell is asked by taking the lease without
    waiting and giving it back at once (a writer that arrives in that instant and does not
    wait is told the session is busy).
    """
    if held_here(store, session_id):
        return {"held": True, "holder": "a request of this server", "expires_in": None}
    holders = await lease_holders_of(store, [session_id])
    if holders is not None:
        found = holders.get(session_id)
        if found is None:
            return {"held": False, "holder": None, "expires_in": None}
        return {"held": True, "holder": found.holder, "expires_in": found.expires_in()}
    if "lease" not in getattr(store, "capabilities", frozenset()):
        return {"held": False, "holder": None, "expires_in": None, "checked": False}
    try:
        async with store.session(session_id).lease(wait=False, ttl=5.0):
            pass
    except SessionBusyError as exc:
        return {"held": True, "holder": exc.holder, "expires_in": exc.expires_in}
    return {"held": False, "holder": None, "expires_in": None}


def _flag(kind: str, message: str, positions: list[int] | None = None) -> dict[str, Any]:
    return {"kind": kind, "message": message, "positions": positions or []}


async def _summary_flag(session: Any, whole: Range, count: int) -> dict[str, Any] | None:
    value = await session.get_record(SUMMARY_RECORD)
    if value is None:
        return None
    try:
        summary = Summary.from_record(session.session_id, value)
    except SessionError as exc:
        return _flag("summary_damaged", str(exc))
    anchor = dict(whole.items).get(summary.end - 1)
    if count < summary.end or anchor is None or item_digest(anchor) != summary.anchor:
        return _flag(
            "summary_stale",
            f"the compaction summary covers items 0-{summary.end - 1}, which changed since it "
            "was written: windows ignore it until the next compaction",
        )
    return None


async def check_health(store: Any, info: SessionInfo, *, probe_lease: bool = True) -> Health:
    """Read the whole session and report its flags and the repair plan."""
    session_id, count = info.session_id, info.item_count
    session = store.session(session_id)
    whole = await SessionReader(store, session_id, count).read(0, count)
    flags: list[dict[str, Any]] = []
    for position, reason in whole.corrupt:
        flags.append(_flag("corrupt_item", f"item {position} cannot be read: {reason}", [position]))
    lone_calls, lone_outputs = orphan_positions(whole.items)
    items = dict(whole.items)
    for position in lone_calls:
        item = items[position]
        flags.append(
            _flag(
                "call_without_output",
                f"item {position} is a {item.get('type')} ({item.get('name', '?')}, call_id "
                f"{item.get('call_id')!r}) with no output after it: a model refuses this history",
                [position],
            )
        )
    for position in lone_outputs:
        item = items[position]
        call_id = item.get("call_id", item.get("tool_call_id"))
        flags.append(
            _flag(
                "output_without_call",
                f"item {position} is an output (call_id {call_id!r}) with no call before it: "
                "a model refuses this history",
                [position],
            )
        )
    records = "records" in getattr(store, "capabilities", frozenset())
    summary_exists = False
    if records:
        for key in _RECORDS:
            try:
                await session.get_record(key)
            except SessionError as exc:
                flags.append(_flag("corrupt_record", f"the session record {key!r}: {exc}"))
        try:
            summary_exists = await session.get_record(SUMMARY_RECORD) is not None
            found = await _summary_flag(session, whole, count)
        except SessionError as exc:
            found = _flag("summary_damaged", str(exc))
        if found is not None:
            flags.append(found)
        try:
            pending = read_pending_run(session_id, await session.get_record(PENDING_RUN_RECORD))
        except SessionError as exc:
            flags.append(_flag("corrupt_record", str(exc)))
            pending = None
        if pending is not None:
            names = ", ".join(str(call.get("name", "?")) for call in pending.tool_calls)
            flags.append(
                _flag(
                    "pending_approval",
                    f"a run of agent {pending.agent_name!r} waits for approval of {names} "
                    f"(since {pending.created_at}); new runs are refused until it is resolved",
                )
            )
    lease = await lease_state(store, session_id) if probe_lease else None
    if lease is not None and lease["held"]:
        holder = lease["holder"] or "another writer"
        expires = lease["expires_in"]
        flags.append(
            _flag(
                "lease_held",
                f"{holder} holds the writer lease"
                + (
                    ""
                    if expires is None
                    else f" (it runs out in {max(expires, 0):.1f}s unless renewed)"
                ),
            )
        )
    drops = sorted({*lone_calls, *lone_outputs, *(position for position, _ in whole.corrupt)})
    kept = None
    plan = None
    if drops:
        dropped = set(drops)
        kept = [item for position, item in whole.items if position not in dropped]
        plan = _plan_token(info, drops)
    body = {
        "object": "inspect.health",
        "healthy": not flags,
        "items": count,
        "flags": flags,
        "lease": lease,
        "repair": {
            "needed": bool(drops),
            "plan": plan,
            "drop": [
                {
                    "position": position,
                    "item": items.get(position),
                    "corrupt": position not in items,
                }
                for position in drops
            ],
            "keeps": None if kept is None else len(kept),
            "drops_summary": bool(drops) and summary_exists,
        },
    }
    return Health(body, kept, plan)
