"""Where conversation history lives.

* :func:`open_store` — a store from a URL (``sqlite:///conversations.db``, ``memory://``);
  :class:`SessionStore` is the store contract, :class:`Store` the implementation every
  backend shares, ``store.session(id)`` a light :class:`StoreSession` handle.
* :class:`Session` — the minimal session contract (the OpenAI Agents SDK's shape);
  :class:`ThreadlineSession` — the extensions every threadline session implements.
* :class:`SQLiteSession` / :class:`SQLiteStore` — the embedded default (a file or ``:memory:``).
* :class:`InMemorySession` / :class:`InMemoryStore` — the reference implementation.
* :class:`PendingRun` — what a session's run waiting for tool-call approvals waits for
  (``await session.pending_run()``; ``session.discard_pending_run()`` drops it).
* :func:`writer_lease` — one writer per session, for any session object; stores' leases are
  fenced (:class:`Lease`).
* :class:`ItemCodec` / :class:`JsonCodec` — how a store seals items into stored payloads;
  :class:`EncryptionCodec` encrypts them at rest (``threadline[encryption]``), with
  :func:`key_from_env`, :func:`new_key` and :func:`reencrypt` (after a key rotation).
* ``store.export_jsonl`` / ``store.import_jsonl`` — move a session between stores in the
  versioned JSON lines format of :mod:`threadline.sessions.transfer` (:class:`ImportResult`).
* :class:`StoreBackend` — the row-level interface a new backend implements.
* :class:`Summary` / :func:`read_summary` — the compaction summary a session keeps (in the
  record :data:`SUMMARY_RECORD`), which windows put first (``docs/context.md``).
* :mod:`threadline.sessions.testing` — the conformance suite every backend passes.
"""

from __future__ import annotations

from ._handle import StoreSession
from ._metadata import METADATA_SIZE_LIMIT
from ._retention import PruneResult
from ._search import search_terms
from ._summary import SUMMARY_PREFIX, SUMMARY_RECORD, Summary, is_summary_item, read_summary
from ._usage import SessionUsage, TurnUsage
from .backend import (
    Fence,
    LeaseGrant,
    LeaseHolder,
    PairingSummary,
    SearchHit,
    SessionPage,
    StoreBackend,
    StoreStats,
    TailWindow,
)
from .base import (
    CAPABILITIES,
    DEFAULT_LEASE_TTL,
    Session,
    SessionInfo,
    SessionSettings,
    ThreadlineSession,
    capabilities_of,
)
from .codec import ItemCodec, JsonCodec, estimate_tokens
from .encryption import KEY_ENV_VAR, EncryptionCodec, key_from_env, new_key, reencrypt
from .lease import Lease, writer_lease
from .memory import InMemoryDatabase, InMemorySession, InMemoryStore
from .pending import PendingRun
from .sqlite import SQLiteSession, SQLiteStore
from .store import STORE_CAPABILITIES, SessionStore, Store, open_store, store_schemes
from .transfer import EXPORT_FORMAT, EXPORT_VERSION, ImportResult

__all__ = [
    "CAPABILITIES",
    "DEFAULT_LEASE_TTL",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "KEY_ENV_VAR",
    "METADATA_SIZE_LIMIT",
    "STORE_CAPABILITIES",
    "SUMMARY_PREFIX",
    "SUMMARY_RECORD",
    "EncryptionCodec",
    "Fence",
    "ImportResult",
    "InMemoryDatabase",
    "InMemorySession",
    "InMemoryStore",
    "ItemCodec",
    "JsonCodec",
    "Lease",
    "LeaseGrant",
    "LeaseHolder",
    "PairingSummary",
    "PendingRun",
    "PruneResult",
    "SQLiteSession",
    "SQLiteStore",
    "SearchHit",
    "Session",
    "SessionInfo",
    "SessionPage",
    "SessionSettings",
    "SessionStore",
    "SessionUsage",
    "Store",
    "StoreBackend",
    "StoreSession",
    "StoreStats",
    "Summary",
    "TailWindow",
    "ThreadlineSession",
    "TurnUsage",
    "capabilities_of",
    "estimate_tokens",
    "is_summary_item",
    "key_from_env",
    "new_key",
    "open_store",
    "read_summary",
    "reencrypt",
    "search_terms",
    "store_schemes",
    "writer_lease",
]
