"""The store written once over a backend: the public store API, argument checks, life cycle.

:class:`Store` implements :class:`~threadline.sessions.SessionStore` for any
:class:`~threadline.sessions.backend.StoreBackend`; the SQLite and in-memory stores are
subclasses that only add their constructors (and, for SQLite, file-specific helpers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..errors import SessionClosedError, UserError
from ._handle import StoreSession
from ._metadata import check_metadata_filter, list_with_metadata
from ._retention import StoreRetentionMixin
from ._search import search_terms
from ._usage import StoreUsageMixin
from .backend import LeaseHolder, PairingSummary, SearchHit, SessionPage, StoreBackend, StoreStats
from .base import CAPABILITIES, SessionInfo, SessionSettings
from .codec import ItemCodec, check_count, check_session_id
from .transfer import TransferMixin

__all__ = ["STORE_CAPABILITIES", "Store"]

STORE_CAPABILITIES = CAPABILITIES | {"search", "shared"}
"""Optional capabilities a store may declare: the session ones (see
:data:`~threadline.sessions.CAPABILITIES`), ``"search"`` (:meth:`Store.search`) and
``"shared"`` (several store objects, processes or hosts may open the same storage; its lease
then excludes writers everywhere, not only in this store object)."""


class Store(TransferMixin, StoreRetentionMixin, StoreUsageMixin):
    """A session store over one backend (see :class:`~threadline.sessions.SessionStore`).

    ``store.session(session_id)`` hands out light handles; the store owns the connections,
    the codec, schema, listing and search. Close it with :meth:`aclose` (or ``async with``).
    """

    session_class: ClassVar[type[StoreSession]] = StoreSession
    """The handle class :meth:`session` returns (a :class:`StoreSession` subclass)."""

    def __init__(self, backend: StoreBackend) -> None:
        if not isinstance(backend, StoreBackend):
            raise UserError(f"backend must be a StoreBackend, got {type(backend).__name__}")
        self._backend = backend
        self._closed = False

    @property
    def codec(self) -> ItemCodec:
        """The item codec: how items are sealed into stored payloads."""
        return self._backend.codec

    @property
    def capabilities(self) -> frozenset[str]:
        """What this store offers beyond the required contract (see :data:`STORE_CAPABILITIES`).

        Declared by the backend; ``"search"`` is left out when the codec keeps text out of
        the store.
        """
        declared = self._backend.capabilities & STORE_CAPABILITIES
        if not self.codec.searchable:
            declared -= {"search"}
        return declared

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend.where})"

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosedError(
                f"the session store {self._backend.where} is closed: open a new store"
            )

    # ------------------------------------------------------------------ sessions

    def session(self, session_id: str, *, session_settings: SessionSettings | None = None) -> Any:
        """A handle on the session ``session_id`` (cheap: it holds no connection)."""
        self._check_open()
        return self.session_class._bind(self, session_id, session_settings)

    async def setup(self) -> None:
        """Create or upgrade the storage's schema now (otherwise done on first use)."""
        self._check_open()
        await self._backend.setup()

    async def list_sessions(
        self,
        limit: int | None = None,
        after: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        with_metadata: bool = False,
    ) -> SessionPage:
        """Sessions, most recently updated first, ``limit`` at a time (``None``: all).

        Pass the page's ``next_cursor`` as ``after`` to get the next page. A cleared session
        is still listed (with no items); a deleted one is not. ``metadata={"user": "u1"}``
        keeps only the sessions whose metadata holds every given key with an equal value
        (a page may then hold fewer than ``limit`` sessions, and a cursor may lead to an
        empty last page); with it, or with ``with_metadata=True``, each
        :class:`SessionInfo` carries its ``metadata`` and ``title``.
        """
        limit = check_count(limit, "limit")
        if after is not None and (not isinstance(after, str) or not after):
            raise UserError(
                f"after must be a cursor from a previous page (a string), got {after!r}"
            )
        wanted = None if metadata is None else check_metadata_filter(metadata)
        self._check_open()
        if limit == 0:
            return SessionPage([], None)
        if wanted is None and not with_metadata:
            infos, cursor = await self._backend.list_sessions(limit, after)
            return SessionPage(infos, cursor)
        if "records" not in self.capabilities:
            raise UserError(
                f"the session store {self._backend.where} keeps no session records, so it "
                "cannot list sessions by metadata: use a store that offers 'records'"
            )
        infos, cursor = await list_with_metadata(self._backend, self.codec, limit, after, wanted)
        return SessionPage(infos, cursor)

    async def session_info(self, session_id: str) -> SessionInfo | None:
        """One session's listing entry (item count, created, updated), or ``None`` when the
        store has no such session (a cleared session still has one)."""
        session_id = check_session_id(session_id)
        self._check_open()
        return await self._backend.session_info(session_id)

    async def pairing_summary(self, session_ids: Sequence[str]) -> dict[str, PairingSummary]:
        """How each listed session's function calls pair with their outputs over its whole
        history (:class:`~threadline.sessions.backend.PairingSummary`): on SQLite and
        PostgreSQL one aggregate over the stored kind and call-id columns, no payload read;
        elsewhere the histories are read. A session that does not exist is absent."""
        ids = [check_session_id(session_id) for session_id in session_ids]
        self._check_open()
        return await self._backend.pairing_summary(ids)

    @property
    def pairs_by_columns(self) -> bool:
        """Whether :meth:`pairing_summary` reads only stored columns (it does not read the
        histories): the inspector's list then checks whole sessions."""
        return type(self._backend).pairing_summary is not StoreBackend.pairing_summary

    async def lease_holders(self, session_ids: Sequence[str]) -> dict[str, LeaseHolder]:
        """Who holds each listed session's writer lease, as the storage records it: one
        query (one pipeline on Redis) for the whole list, whichever process or host took the
        lease. A session whose lease is free, released or expired is absent from the answer.

        Raises :class:`~threadline.errors.UserError` for a store without ``"lease"`` or whose
        backend cannot read its leases' holders.
        """
        ids = [check_session_id(session_id) for session_id in session_ids]
        self._check_open()
        if "lease" not in self.capabilities:
            raise UserError(f"the session store {self._backend.where} keeps no leases")
        try:
            return await self._backend.lease_holders(ids)
        except NotImplementedError:
            raise UserError(
                f"the session store {self._backend.where} cannot tell who holds a lease "
                "(its backend has no lease_holders)"
            ) from None

    async def delete_session(self, session_id: str) -> bool:
        """Remove a session and its items; ``False`` when the store had no such session."""
        session_id = check_session_id(session_id)
        self._check_open()
        return await self._backend.delete(session_id)

    async def search(
        self, text: str, *, limit: int = 20, session_id: str | None = None
    ) -> list[SearchHit]:
        """Stored items whose text holds every word of ``text``, best match first.

        Words match whole and ignore case and accents (see :func:`search_terms`); ``limit``
        caps the hits; ``session_id`` searches one session only. A store without the
        ``"search"`` capability raises :class:`~threadline.errors.UserError`.
        """
        if not isinstance(text, str):
            raise UserError(f"search text must be a string, got {type(text).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise UserError(f"limit must be an integer >= 1, got {limit!r}")
        if session_id is not None:
            session_id = check_session_id(session_id)
        self._check_open()
        if "search" not in self.capabilities:
            why = (
                f"its {self.codec.name} codec keeps item text out of the store"
                if not self.codec.searchable
                else "its backend has no search index"
            )
            raise UserError(f"the session store {self._backend.where} cannot search: {why}")
        terms = search_terms(text)
        if not terms:
            raise UserError(f"nothing to search for in {text!r}: give at least one word")
        return await self._backend.search(terms, limit, session_id)

    async def stats(self) -> StoreStats:
        """How many sessions and items the store holds (and backend-specific details)."""
        self._check_open()
        return await self._backend.stats()

    # ------------------------------------------------------------------ life cycle

    async def aclose(self) -> None:
        """Finish pending writes and release every connection; later calls raise."""
        if self._closed:
            return
        self._closed = True
        await self._backend.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
