"""Where conversation history lives.

* :class:`Session` — the minimal contract (the OpenAI Agents SDK's shape);
  :class:`ThreadlineSession` — the extensions every threadline backend implements.
* :class:`SQLiteSession` / :class:`SQLiteStore` — the embedded default (a file or ``:memory:``).
* :class:`InMemorySession` — the reference implementation.
* :func:`writer_lease` — one writer per session, for any session object.
* :mod:`threadline.sessions.testing` — the conformance suite every backend passes.
"""

from __future__ import annotations

from .base import (
    CAPABILITIES,
    DEFAULT_LEASE_TTL,
    Session,
    SessionInfo,
    SessionSettings,
    ThreadlineSession,
    capabilities_of,
)
from .codec import estimate_tokens
from .lease import writer_lease
from .memory import InMemorySession
from .sqlite import SQLiteSession, SQLiteStore

__all__ = [
    "CAPABILITIES",
    "DEFAULT_LEASE_TTL",
    "InMemorySession",
    "SQLiteSession",
    "SQLiteStore",
    "Session",
    "SessionInfo",
    "SessionSettings",
    "ThreadlineSession",
    "capabilities_of",
    "estimate_tokens",
    "writer_lease",
]
