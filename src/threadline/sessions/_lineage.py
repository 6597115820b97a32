"""Where a fork comes from: fork points by turn, and the ``origin`` record of a fork.

A fork made by ``session.fork(new_id, at=..., at_turn=...)`` gets the session record
``"origin"`` (``{"parent": ..., "forked_at": ..., "at_turn": ..., "time": ...}``), which
:meth:`LineageMixin.origin` reads back. Turns are counted by user messages: turn ``k`` (from
0) starts at the ``k``-th user message.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:
    from .backend import StoreBackend

__all__ = ["ORIGIN_KEY", "LineageMixin", "fork_point", "origin_record"]

ORIGIN_KEY = "origin"
"""The session record a fork keeps its origin in."""


async def fork_point(
    backend: StoreBackend, session_id: str, at: int | None, at_turn: object
) -> int | None:
    """The item position a fork cuts at, from ``at`` (an item position) or ``at_turn``.

    ``at_turn=k`` keeps the first ``k`` turns (everything before the ``k``-th user message,
    counting from 0); a negative ``k`` counts from the end (``-1``: all but the last turn);
    ``k`` at or past the number of turns keeps everything.
    """
    if at_turn is None:
        return at
    if at is not None:
        raise UserError("fork takes at= (an item position) or at_turn= (a turn), not both")
    if isinstance(at_turn, bool) or not isinstance(at_turn, int):
        raise UserError(f"at_turn must be an integer, got {at_turn!r}")
    starts = await backend.user_positions(session_id)
    turn = at_turn if at_turn >= 0 else len(starts) + at_turn
    if turn < 0:
        raise UserError(
            f"at_turn={at_turn} reaches before the first turn: session {session_id!r} has "
            f"{len(starts)} turns"
        )
    return starts[turn] if turn < len(starts) else None


def origin_record(
    parent: str, forked_at: int, at_turn: int | None, now: datetime | None = None
) -> dict[str, Any]:
    """The ``origin`` record of a fork of ``parent`` holding its first ``forked_at`` items."""
    stamp = (now or datetime.now(timezone.utc)).isoformat()
    return {"parent": parent, "forked_at": forked_at, "at_turn": at_turn, "time": stamp}


class LineageMixin:
    """The ``origin`` method of :class:`~threadline.sessions.StoreSession`."""

    if TYPE_CHECKING:

        async def get_record(self, key: str) -> Any: ...

    async def origin(self) -> dict[str, Any] | None:
        """Where this session was forked from, or ``None`` when it is no fork.

        ``{"parent": session id, "forked_at": how many items were copied (the position of
        the cut), "at_turn": the turn given to ``fork`` (``None`` when cut by item), "time":
        ISO 8601 UTC}``. The parent may since have changed or been deleted.
        """
        value = await self.get_record(ORIGIN_KEY)
        return value if isinstance(value, dict) else None
