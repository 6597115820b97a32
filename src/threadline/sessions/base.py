"""The session contract: what every conversation store provides.

:class:`Session` is the minimal, duck-typed contract, the same shape as the OpenAI Agents
SDK's, so a store written for either library works with both. :class:`ThreadlineSession`
adds what threadline's own backends implement: budgeted windows, undo of a turn, atomic
replacement, forks and the writer lease. :class:`SessionSettings` holds a session's defaults
for reading history and for the lease; a run may override them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import SettingsError, UserError
from ..items import Item
from .codec import estimate_tokens

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CAPABILITIES",
    "DEFAULT_LEASE_TTL",
    "Session",
    "SessionInfo",
    "SessionSettings",
    "ThreadlineSession",
    "capabilities_of",
    "estimate_tokens",
]

DEFAULT_LEASE_TTL = 30.0
"""Seconds a writer lease stays valid without a heartbeat (the holder renews it while alive)."""

CAPABILITIES = frozenset({"window", "pop_turn", "replace", "fork", "lease", "records"})
"""Names of the optional capabilities a backend may implement beyond :class:`Session`."""

_CAPABILITY_METHODS = {
    "window": "get_window",
    "pop_turn": "pop_turn",
    "replace": "replace_items",
    "fork": "fork",
    "lease": "lease",
    "records": "get_record",
}


@runtime_checkable
class Session(Protocol):
    """A conversation history: an ordered list of items under one ``session_id``.

    Any object with these members works with the runner, including the OpenAI Agents SDK's
    sessions.
    """

    session_id: str

    async def get_items(self, limit: int | None = None) -> list[Item]:
        """The newest ``limit`` items (all when ``None``), oldest first."""
        ...

    async def add_items(self, items: list[Item]) -> None:
        """Append ``items`` atomically (all or nothing), keeping their order."""
        ...

    async def pop_item(self) -> Item | None:
        """Remove and return the newest item, or ``None`` when the session is empty."""
        ...

    async def clear_session(self) -> None:
        """Remove every item of this session."""
        ...


@runtime_checkable
class ThreadlineSession(Session, Protocol):
    """A :class:`Session` with the extensions every threadline backend implements."""

    session_settings: SessionSettings

    async def get_window(
        self, max_items: int | None = None, max_tokens: int | None = None
    ) -> list[Item]:
        """The newest items within the budget, oldest first.

        A window never splits a function call from its output and never starts inside a
        turn: when it holds a user message it starts at one. Token counts come from
        :func:`estimate_tokens`. With no budget this is the whole history. When a
        compaction summary covers the older part of the history, the window is that
        summary (a system message, counted in the budget) then the newest whole turns after
        the range it covers.
        """
        ...

    async def pop_turn(self) -> list[Item]:
        """Undo the last user turn: remove and return the newest user message and all after it.

        Returns ``[]`` (and removes nothing) when the session holds no user message.
        """
        ...

    async def replace_items(self, items: list[Item]) -> None:
        """Replace the whole history with ``items`` atomically (a compaction summary is dropped)."""
        ...

    async def fork(
        self, new_session_id: str, at: int | None = None, *, at_turn: int | None = None
    ) -> Self:
        """A new session holding a copy of the first ``at`` items (all when ``None``), or of
        the first ``at_turn`` turns (negative: counted from the end)."""
        ...

    def lease(
        self, *, wait: bool = True, timeout: float | None = None, ttl: float | None = None
    ) -> AbstractAsyncContextManager[Any]:
        """The writer lease: while held, no other run writes to this session.

        ``wait=False`` raises :class:`~threadline.errors.SessionBusyError` at once when
        another holder has it; ``timeout`` bounds the wait in seconds (``None`` or
        ``math.inf``: forever); ``ttl`` is how long the lease survives without a heartbeat
        (``None``: the session's ``lease_ttl``, else 30 s). The lease is fenced: writes made
        while it is held carry its token, and a holder whose lease was taken over gets
        :class:`~threadline.errors.LeaseLostError` instead of writing.
        """
        ...


def capabilities_of(session: object) -> frozenset[str]:
    """The optional capabilities (see :data:`CAPABILITIES`) that ``session`` implements.

    A threadline session (or store) declares them in its ``capabilities`` attribute; for any
    other object (an OpenAI Agents SDK session, say) they are read off the methods it has.
    """
    declared = getattr(session, "capabilities", None)
    if isinstance(declared, frozenset):
        return declared & CAPABILITIES
    return frozenset(
        name
        for name, method in _CAPABILITY_METHODS.items()
        if callable(getattr(session, method, None))
    )


def _check_optional_number(
    name: str, value: object, *, positive: bool = False, infinite: bool = False
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"SessionSettings.{name} must be a number or None, got {value!r}")
    if math.isnan(value) or (math.isinf(value) and not infinite):
        allowed = "a finite number, math.inf (no bound) or None" if infinite else "finite"
        raise UserError(f"SessionSettings.{name} must be {allowed}, got {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise UserError(f"SessionSettings.{name} must be {bound}, got {value!r}")


@dataclass
class SessionSettings:
    """How a session's history is read and how its writer lease behaves.

    ``None`` means "not set": ``resolve`` overlays only the fields another settings object
    sets, so a run's settings change just what they name.

    * ``limit`` — load at most this many of the newest items before a run (``None``: all).
    * ``max_tokens`` — load at most this many estimated tokens of history (``None``: no cap).
    * ``compact_at`` — when the part of the history no summary covers passes this many
      estimated tokens, the runner summarises older turns after the turn is stored, and
      windows start with that summary (``None``: never; see ``docs/context.md``). At most
      ``max_tokens`` when both are set.
    * ``wait_for_lease`` — when another run holds the session, wait (``True``, the default
      when unset) or raise :class:`~threadline.errors.SessionBusyError` at once (``False``).
    * ``lease_timeout`` — the longest wait for the lease in seconds; ``math.inf`` waits
      without bound (``None``: not set, which also means no bound unless another settings
      object sets it; a run's ``math.inf`` lifts a session's finite timeout).
    * ``lease_ttl`` — seconds a lease survives without a heartbeat, after which a holder that
      died is taken over (``None``: 30 s).
    """

    limit: int | None = None
    max_tokens: int | None = None
    compact_at: int | None = None
    wait_for_lease: bool | None = None
    lease_timeout: float | None = None
    lease_ttl: float | None = None

    def __post_init__(self) -> None:
        for name in ("limit", "max_tokens", "compact_at"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise UserError(f"SessionSettings.{name} must be an integer or None, got {value!r}")
            _check_optional_number(name, value, positive=name == "compact_at")
        if (
            self.compact_at is not None
            and self.max_tokens is not None
            and self.compact_at > self.max_tokens
        ):
            raise UserError(
                f"SessionSettings.compact_at ({self.compact_at}) must not exceed max_tokens "
                f"({self.max_tokens}): the window would cut the history before compaction "
                "starts; lower compact_at or raise max_tokens"
            )
        if self.wait_for_lease is not None and not isinstance(self.wait_for_lease, bool):
            raise UserError(
                f"SessionSettings.wait_for_lease must be True, False or None, "
                f"got {self.wait_for_lease!r}"
            )
        _check_optional_number("lease_timeout", self.lease_timeout, infinite=True)
        _check_optional_number("lease_ttl", self.lease_ttl, positive=True)

    @property
    def effective_wait(self) -> bool:
        """Whether to wait for a busy lease: ``wait_for_lease``, or ``True`` when unset."""
        return True if self.wait_for_lease is None else self.wait_for_lease

    @property
    def effective_timeout(self) -> float | None:
        """The longest wait for the lease in seconds, or ``None`` for no bound."""
        if self.lease_timeout is None or math.isinf(self.lease_timeout):
            return None
        return float(self.lease_timeout)

    @property
    def effective_ttl(self) -> float:
        """The lease time-to-live in seconds: ``lease_ttl``, or 30 s when unset."""
        return DEFAULT_LEASE_TTL if self.lease_ttl is None else float(self.lease_ttl)

    @classmethod
    def coerce(cls, value: SessionSettings | Mapping[str, Any] | Any | None) -> SessionSettings:
        """``value`` as a :class:`SessionSettings`: ``None`` gives the defaults, a dict is
        checked key by key (an unknown key is a :class:`~threadline.errors.SettingsError`,
        also a ``TypeError``), and any object with these attribute names (the OpenAI Agents
        SDK's ``SessionSettings``) is read field by field."""
        if value is None:
            return cls()
        if isinstance(value, SessionSettings):
            return value
        known = [f.name for f in fields(cls)]
        if isinstance(value, Mapping):
            unknown = sorted(str(key) for key in value if key not in known)
            if unknown:
                raise SettingsError(
                    f"unknown session setting {unknown[0]!r}: SessionSettings has "
                    f"{', '.join(known)}"
                )
            return cls(**{name: value[name] for name in known if name in value})
        if isinstance(value, (str, bytes, int, float, list, tuple, set)):
            raise SettingsError(
                f"session_settings must be a SessionSettings, a dict or None, "
                f"got {type(value).__name__}"
            )
        return cls(**{name: getattr(value, name, None) for name in known})

    def resolve(
        self, override: SessionSettings | Mapping[str, Any] | Any | None
    ) -> SessionSettings:
        """A new settings object: ``override``'s non-``None`` fields over this one's.

        ``override`` may be a :class:`SessionSettings`, a dict (an unknown key is a
        :class:`~threadline.errors.SettingsError`), or any object with the same attribute
        names (such as the OpenAI Agents SDK's ``SessionSettings``).
        """
        if override is None:
            return self
        other = SessionSettings.coerce(override)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in values:
            value = getattr(other, name)
            if value is not None:
                values[name] = value
        return SessionSettings(**values)


@dataclass(frozen=True)
class SessionInfo:
    """One stored session as listed by a store: its id, size and timestamps (UTC).

    ``metadata`` (the session's metadata object) and ``title`` (its ``"title"`` entry) are
    filled in only when the listing was asked for them (``list_sessions(metadata=...)`` or
    ``with_metadata=True``); otherwise they are ``None``.
    """

    session_id: str
    item_count: int
    created_at: datetime
    updated_at: datetime
    title: str | None = None
    metadata: dict[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def from_timestamps(
        cls, session_id: str, item_count: int, created_at: float, updated_at: float
    ) -> SessionInfo:
        """Build one from Unix timestamps (seconds)."""
        return cls(
            session_id,
            int(item_count),
            datetime.fromtimestamp(created_at, timezone.utc),
            datetime.fromtimestamp(updated_at, timezone.utc),
        )
