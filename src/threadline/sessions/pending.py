"""The pending-run record: a run that stopped for tool-call approvals, kept with its session.

The runner (``threadline.run.state``) writes the record when a run is interrupted and clears
it in the same transaction as the step that resolves it. This module only names the record
and reads the parts of it that need no agent: which calls wait, for which agent, since when.
Rebuilding the run itself needs the agent, so that is ``RunState.from_session(agent,
session)`` in ``threadline.run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptItemError
from ..items import Item

__all__ = ["PENDING_RUN_RECORD", "PendingRun", "read_pending_run"]

PENDING_RUN_RECORD = "threadline.pending_run"
"""The session record key of the pending run (one per session at most)."""


@dataclass(frozen=True)
class PendingRun:
    """What a session's pending run waits for, readable without the agent.

    ``id`` identifies this interruption (a resumed or discarded run gets a new one or none);
    ``agent_name`` is the agent whose calls wait; ``tool_calls`` are the ``function_call``
    items awaiting a decision; ``created_at`` is when the run stopped (ISO 8601, UTC);
    ``data`` is the whole serialised ``RunState`` (give it to ``RunState.from_json``).
    """

    id: str
    agent_name: str
    tool_calls: list[Item]
    created_at: str
    data: dict[str, Any] = field(repr=False)


def read_pending_run(session_id: str, value: Any) -> PendingRun | None:
    """The :class:`PendingRun` of a stored record value (``None`` for no record).

    A value that is not a pending-run record raises :class:`CorruptItemError`, never reads as
    "nothing pending".
    """
    if value is None:
        return None
    try:
        calls = [entry["raw_item"] for entry in value["interruptions"]]
        pending = PendingRun(
            id=str(value["id"]),
            agent_name=str(value["current_agent"]),
            tool_calls=[dict(call) for call in calls],
            created_at=str(value.get("created_at", "")),
            data=value,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptItemError(
            session_id,
            "the pending-run record",
            f"{exc!r}; discard it with 'await session.discard_pending_run()'",
        ) from None
    return pending
