"""Retention: per-session time-to-live and ``store.prune``.

A session's TTL lives in the session record ``"retention"`` (``{"ttl": seconds}``). A
session *expires* when its last item write (its listing ``updated_at``) is older than its TTL,
or, for a session without one, older than the ``idle_for`` given to ``prune``. Pruning only
ever deletes whole sessions (``delete_session``), so a session's records (metadata, usage,
compaction summaries) go with its items: no summary is left without the range it covers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import SessionBusyError, UserError
from .codec import decode_record

if TYPE_CHECKING:
    from ._base_store import Store
    from .backend import Payload
    from .base import SessionInfo

__all__ = ["RETENTION_KEY", "PruneResult", "RetentionMixin", "StoreRetentionMixin", "prune"]

RETENTION_KEY = "retention"
"""The session record that holds a session's TTL."""


def _seconds(value: object, name: str) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise UserError(
            f"{name} must be a datetime.timedelta or a number of seconds, got {value!r}"
        )
    if math.isnan(seconds) or math.isinf(seconds) or seconds <= 0:
        raise UserError(f"{name} must be a finite duration > 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` removed (or, with ``dry_run``, would remove).

    ``sessions``: the ids, oldest activity first; ``items``: how many items they held;
    ``busy``: expired sessions left alone because a run held their writer lease.
    """

    sessions: list[str] = field(default_factory=list)
    items: int = 0
    busy: list[str] = field(default_factory=list)
    dry_run: bool = False


class RetentionMixin:
    """The TTL methods of :class:`~threadline.sessions.StoreSession`."""

    if TYPE_CHECKING:

        async def get_record(self, key: str) -> Any: ...

        async def put_records(self, records: Any) -> None: ...

    async def set_ttl(self, ttl: timedelta | float | None) -> None:
        """Keep this session for ``ttl`` after its last item write (a ``timedelta`` or
        seconds), then let :meth:`Store.prune` remove it; ``None`` removes the TTL (the
        session then follows ``prune``'s ``idle_for``)."""
        if ttl is None:
            await self.put_records({RETENTION_KEY: None})
            return
        await self.put_records({RETENTION_KEY: {"ttl": _seconds(ttl, "ttl")}})

    async def get_ttl(self) -> timedelta | None:
        """The session's TTL, or ``None`` when it has none."""
        value = await self.get_record(RETENTION_KEY)
        if isinstance(value, dict) and isinstance(value.get("ttl"), (int, float)):
            return timedelta(seconds=value["ttl"])
        return None


async def prune(
    store: Store,
    idle_for: timedelta | float | None = None,
    *,
    dry_run: bool = False,
    now: float | None = None,
) -> PruneResult:
    """Delete the sessions of ``store`` that expired (see the module docstring).

    ``idle_for`` applies to sessions without a TTL of their own (``None``: only sessions
    with a TTL expire). ``dry_run`` only reports. Each removal takes the session's writer
    lease without waiting and checks the session is still expired: a session a run is
    writing to is left alone (listed in ``busy``). ``now`` (Unix seconds) is for tests.
    """
    idle = None if idle_for is None else _seconds(idle_for, "idle_for")
    store._check_open()
    clock = time.time() if now is None else float(now)
    backend, codec = store._backend, store.codec
    records = "records" in store.capabilities
    if not records and idle is None:
        return PruneResult(dry_run=dry_run)

    def select(session_id: str, payload: Payload | None) -> float:
        if payload is None:
            return -1.0
        value = decode_record(codec, session_id, RETENTION_KEY, payload)
        ttl = value.get("ttl") if isinstance(value, dict) else None
        return float(ttl) if isinstance(ttl, (int, float)) else -1.0

    listed: list[tuple[SessionInfo, float]]
    if records:
        listed, _ = await backend.list_sessions_with_record(None, None, RETENTION_KEY, select)
    else:
        infos, _ = await backend.list_sessions(None, None)
        listed = [(info, -1.0) for info in infos]
    expired = []
    for info, ttl in listed:
        limit = ttl if ttl > 0 else idle
        if limit is not None and clock - info.updated_at.timestamp() > limit:
            expired.append((info, limit))
    expired.sort(key=lambda entry: entry[0].updated_at)
    if dry_run:
        return PruneResult(
            [info.session_id for info, _ in expired],
            sum(info.item_count for info, _ in expired),
            dry_run=True,
        )
    removed, busy, items = [], [], 0
    for info, limit in expired:
        session = store.session(info.session_id)
        try:
            async with session.lease(wait=False):
                current = await backend.session_info(info.session_id)
                if current is None or clock - current.updated_at.timestamp() <= limit:
                    continue  # written to (or removed) since it was listed
                if await backend.delete(info.session_id):
                    removed.append(info.session_id)
                    items += current.item_count
        except SessionBusyError:
            busy.append(info.session_id)
    return PruneResult(removed, items, busy)


class StoreRetentionMixin:
    """The ``prune`` method of :class:`~threadline.sessions.Store`."""

    async def prune(
        self,
        idle_for: timedelta | float | None = None,
        *,
        dry_run: bool = False,
        now: float | None = None,
    ) -> PruneResult:
        """Delete the sessions idle longer than ``idle_for`` or their own TTL (see
        :func:`~threadline.sessions._retention.prune`); returns what was removed."""
        return await prune(self, idle_for, dry_run=dry_run, now=now)  # type: ignore[arg-type]
