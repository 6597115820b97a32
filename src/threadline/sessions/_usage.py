"""Usage accounting: what each run on a session cost, and per-session token calibration.

The runner writes two session records with each step it stores (in the same transaction as
the step's items, under the run's lease):

* ``usage/00000042`` — the run's own usage so far (``turn``, ``requests``, ``input_tokens``,
  ``output_tokens``, ``total_tokens`` as the provider reported them, ``time``, and
  ``start``: the position of the first item the run stored, where its turn begins); one key
  per run, so a turn's write never grows with the number of turns. Records written before
  ``start`` existed have none (:attr:`TurnUsage.start` is ``None``);
* ``usage`` — the session's running totals (the same counts plus ``turns``) and the token
  calibration: decayed sums of the provider-reported input tokens and of threadline's
  estimate of what was sent (``calibration``: ``{"reported": ..., "estimated": ...}``).

:func:`calibrated_budget` turns a window's ``max_tokens`` into the budget in *estimated*
tokens that holds the reported tokens under it, using the session's ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..usage import Usage

if TYPE_CHECKING:
    from .backend import StoreBackend
    from .codec import ItemCodec

__all__ = [
    "USAGE_KEY",
    "USAGE_TURN_PREFIX",
    "SessionUsage",
    "TurnUsage",
    "UsageLedger",
    "UsageMixin",
    "calibrated_budget",
    "calibration_ratio",
]

USAGE_KEY = "usage"
"""The session record of the running totals and the calibration."""

USAGE_TURN_PREFIX = "usage/"
"""Per-run usage records are ``usage/`` and the run's number, zero-padded to 8 digits."""

_COUNTS = ("requests", "input_tokens", "output_tokens", "total_tokens")
_DECAY = 0.8
"""Each new calibration sample counts fully; older ones fade by this factor per request."""
_MIN_ESTIMATED = 50
"""Below this many (decayed) estimated tokens the calibration is not trusted yet."""
RATIO_BOUNDS = (0.25, 4.0)
"""A ratio outside these bounds is clamped (a provider's counts that far off are a bug)."""


@dataclass(frozen=True)
class TurnUsage:
    """One run's usage on a session, as the provider reported it."""

    turn: int
    requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    time: str
    """When the run last stored a step (ISO 8601, UTC)."""
    start: int | None = None
    """The position (0 is the oldest item) of the first item the run stored: its user
    message, where the turn begins (for a run resumed after approvals, the first item it
    stored after resuming, inside the turn). ``None`` in records written before threadline
    stamped it. A position is not rewritten with the items: after a ``replace_items`` or
    compaction that shortened the history before it, it may point past the turn."""


@dataclass(frozen=True)
class SessionUsage:
    """A session's usage: totals over every run, and per run (``per_turn``, oldest first;
    empty when not asked for). ``calibration`` is the session's ratio of provider-reported
    to estimated input tokens (``None`` until a run measured it)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    turns: int = 0
    per_turn: list[TurnUsage] = field(default_factory=list)
    calibration: float | None = None


def _count(value: Any, name: str) -> int:
    found = value.get(name, 0) if isinstance(value, dict) else 0
    return found if isinstance(found, int) and not isinstance(found, bool) else 0


def _start(value: dict[str, Any]) -> int | None:
    found = value.get("start")
    if isinstance(found, int) and not isinstance(found, bool) and found >= 0:
        return found
    return None


def calibration_ratio(total: Any) -> float | None:
    """The session's reported/estimated input-token ratio from its ``usage`` record, or
    ``None`` when too little was measured."""
    calibration = total.get("calibration") if isinstance(total, dict) else None
    if not isinstance(calibration, dict):
        return None
    reported, estimated = calibration.get("reported"), calibration.get("estimated")
    if not isinstance(reported, (int, float)) or not isinstance(estimated, (int, float)):
        return None
    if estimated < _MIN_ESTIMATED or reported <= 0:
        return None
    low, high = RATIO_BOUNDS
    return min(high, max(low, reported / estimated))


def calibrated_budget(max_tokens: int | None, ratio: float | None) -> int | None:
    """The window budget in estimated tokens for ``max_tokens`` provider tokens.

    With a ratio ``r`` (provider tokens per estimated token), items whose estimates sum to
    ``max_tokens / r`` are about ``max_tokens`` provider tokens. ``None`` passes through.
    """
    if max_tokens is None or ratio is None or max_tokens == 0:
        return max_tokens
    return max(1, math.floor(max_tokens / ratio))


class UsageLedger:
    """The usage of one run on one session, turned into the records each step carries.

    ``total`` is the session's ``usage`` record when the run started; ``baseline`` the run
    context's usage then (a context may be reused across runs).
    """

    def __init__(self, total: Any, baseline: Usage, *, start: int | None = None) -> None:
        self.total: dict[str, Any] = dict(total) if isinstance(total, dict) else {}
        self.start = start
        """Where the run's first item lands (the session's item count when it started)."""
        self.turn = _count(self.total, "turns") + 1
        self.baseline = Usage(**vars(baseline))
        calibration = self.total.get("calibration")
        calibration = calibration if isinstance(calibration, dict) else {}
        self.reported = float(calibration.get("reported", 0.0) or 0.0)
        self.estimated = float(calibration.get("estimated", 0.0) or 0.0)

    @property
    def ratio(self) -> float | None:
        """The calibration ratio with what this run measured so far."""
        return calibration_ratio(
            {"calibration": {"reported": self.reported, "estimated": self.estimated}}
        )

    def sample(self, reported_input: int, estimated_input: int) -> None:
        """One request: the provider's input tokens and threadline's estimate of what was
        sent. A request the provider reported no input tokens for is skipped."""
        if reported_input <= 0 or estimated_input <= 0:
            return
        self.reported = self.reported * _DECAY + reported_input
        self.estimated = self.estimated * _DECAY + estimated_input

    def records(self, usage: Usage) -> dict[str, Any]:
        """The two records for the run's usage so far (``usage`` is the context's now)."""
        run = {name: getattr(usage, name) - getattr(self.baseline, name) for name in _COUNTS}
        stamp = datetime.now(timezone.utc).isoformat()
        total: dict[str, Any] = {name: _count(self.total, name) + run[name] for name in _COUNTS}
        total["turns"] = self.turn
        if self.estimated > 0:
            total["calibration"] = {
                "reported": round(self.reported, 3),
                "estimated": round(self.estimated, 3),
            }
        record: dict[str, Any] = {"turn": self.turn, **run, "time": stamp}
        if self.start is not None:
            record["start"] = self.start
        return {f"{USAGE_TURN_PREFIX}{self.turn:08d}": record, USAGE_KEY: total}


class UsageMixin:
    """The ``usage`` method of :class:`~threadline.sessions.StoreSession`."""

    if TYPE_CHECKING:

        async def get_record(self, key: str) -> Any: ...

        async def list_records(self, prefix: str = "") -> dict[str, Any]: ...

    async def usage(self, *, per_turn: bool = True) -> SessionUsage:
        """What the runs on this session cost: requests and tokens as the provider reported
        them, in total and per run (``per_turn=False`` reads only the totals, one record)."""
        total = await self.get_record(USAGE_KEY)
        turns = []
        if per_turn:
            for value in (await self.list_records(USAGE_TURN_PREFIX)).values():
                if isinstance(value, dict):
                    turns.append(
                        TurnUsage(
                            turn=_count(value, "turn"),
                            requests=_count(value, "requests"),
                            input_tokens=_count(value, "input_tokens"),
                            output_tokens=_count(value, "output_tokens"),
                            total_tokens=_count(value, "total_tokens"),
                            time=str(value.get("time", "")),
                            start=_start(value),
                        )
                    )
        return SessionUsage(
            requests=_count(total, "requests"),
            input_tokens=_count(total, "input_tokens"),
            output_tokens=_count(total, "output_tokens"),
            total_tokens=_count(total, "total_tokens"),
            turns=_count(total, "turns"),
            per_turn=turns,
            calibration=calibration_ratio(total),
        )


class StoreUsageMixin:
    """The ``usage`` method of :class:`~threadline.sessions.Store`."""

    if TYPE_CHECKING:
        _backend: StoreBackend

        @property
        def codec(self) -> ItemCodec: ...

        @property
        def capabilities(self) -> frozenset[str]: ...

        def _check_open(self) -> None: ...

    async def usage(self) -> SessionUsage:
        """Totals over every session of the store (``turns`` counts runs; no per-turn list).

        Reads each session's ``usage`` record (one listing pass over the store).
        """
        from .codec import decode_record

        self._check_open()
        if "records" not in self.capabilities:
            return SessionUsage()
        codec = self.codec

        def select(session_id: str, payload: Any) -> Any:
            if payload is None:
                return None
            value = decode_record(codec, session_id, USAGE_KEY, payload)
            return value if isinstance(value, dict) else None

        found, _ = await self._backend.list_sessions_with_record(None, None, USAGE_KEY, select)
        sums = dict.fromkeys((*_COUNTS, "turns"), 0)
        for _, total in found:
            for name in sums:
                sums[name] += _count(total, name)
        return SessionUsage(
            requests=sums["requests"],
            input_tokens=sums["input_tokens"],
            output_tokens=sums["output_tokens"],
            total_tokens=sums["total_tokens"],
            turns=sums["turns"],
        )
