"""The store contract (:class:`SessionStore`) and :func:`open_store`.

A *store* owns connections, schema, listing and search for many sessions;
``store.session(session_id)`` is a light handle on one of them. :func:`open_store` opens a
store from a URL and imports a backend only when its scheme is used.
"""

from __future__ import annotations

import importlib
import urllib.parse
from typing import Any, Protocol, runtime_checkable

from ..errors import UserError
from ._base_store import STORE_CAPABILITIES, Store
from ._search import search_terms
from .backend import SearchHit, SessionPage, StoreStats
from .base import SessionInfo, SessionSettings, ThreadlineSession

__all__ = [
    "STORE_CAPABILITIES",
    "SessionStore",
    "Store",
    "open_store",
    "search_terms",
    "store_schemes",
]


@runtime_checkable
class SessionStore(Protocol):
    """Many sessions in one storage: what every threadline store provides.

    ``capabilities`` declares the optional parts (see :data:`STORE_CAPABILITIES`); a store
    never has to be probed with ``getattr``.
    """

    @property
    def capabilities(self) -> frozenset[str]:
        """The optional capabilities this store offers."""
        ...

    def session(
        self, session_id: str, *, session_settings: SessionSettings | None = None
    ) -> ThreadlineSession:
        """A light handle on one session (no connection of its own)."""
        ...

    async def setup(self) -> None:
        """Create or upgrade the schema."""
        ...

    async def list_sessions(
        self, limit: int | None = None, after: str | None = None
    ) -> SessionPage:
        """Sessions, most recently updated first, paged by cursor."""
        ...

    async def session_info(self, session_id: str) -> SessionInfo | None:
        """One session's listing entry, or ``None`` when there is no such session."""
        ...

    async def delete_session(self, session_id: str) -> bool:
        """Remove a session; ``False`` when there was none."""
        ...

    async def search(
        self, text: str, *, limit: int = 20, session_id: str | None = None
    ) -> list[SearchHit]:
        """Items holding every word of ``text``, best first."""
        ...

    async def stats(self) -> StoreStats:
        """Counts of sessions and items."""
        ...

    async def aclose(self) -> None:
        """Release every connection."""
        ...


# scheme -> (module, class name, extra to install or None)
_SCHEMES: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("threadline.sessions.sqlite", "SQLiteStore", None),
    "memory": ("threadline.sessions.memory", "InMemoryStore", None),
    "postgresql": ("threadline.sessions.postgres", "PostgresStore", "postgres"),
    "postgres": ("threadline.sessions.postgres", "PostgresStore", "postgres"),
}


def store_schemes() -> list[str]:
    """The URL schemes :func:`open_store` knows, sorted."""
    return sorted(_SCHEMES)


def open_store(url: str, **options: Any) -> Store:
    """Open the store a URL names (nothing connects until first use or ``setup()``).

    * ``sqlite:///conversations.db`` — a SQLite file relative to the working directory
      (``sqlite:////abs/path.db`` for an absolute path, ``sqlite:///:memory:`` for a private
      in-memory database); query parameters set :class:`SQLiteStore` options
      (``?synchronous=NORMAL&lock_timeout=10``). A bare path with no scheme is a SQLite file.
    * ``memory://`` — an :class:`~threadline.sessions.InMemoryStore`, gone with the process.
    * ``postgresql://user@host:5432/db`` (or ``postgres://``) — a
      :class:`~threadline.sessions.postgres.PostgresStore` (the ``postgres``
      extra: ``pip install -e '.[postgres]'`` in a checkout); query parameters set its options (``?pool_size=20``). Its
      schema is made by ``await store.setup()`` / ``threadline db migrate --store URL``.

    ``options`` are passed to the store's constructor (``codec=`` for example). An unknown
    scheme, a malformed URL or a backend whose extra is missing raises
    :class:`~threadline.errors.UserError` naming it.
    """
    if not isinstance(url, str) or not url.strip():
        raise UserError(f"a store URL must be a non-empty string, got {url!r}")
    if "://" not in url:
        scheme, target = "sqlite", None
    else:
        scheme = url.split("://", 1)[0].lower()
        target = url
    entry = _SCHEMES.get(scheme)
    if entry is None:
        known = ", ".join(f"{name}://" for name in store_schemes())
        raise UserError(
            f"unknown store URL scheme {scheme + '://'!r} in {_redact(url)}: this threadline "
            f"opens {known} (or a plain SQLite file path)"
        )
    module_name, class_name, extra = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - only backends with extras can miss one
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            exc.name or module_name, extra or scheme, f"{scheme}:// stores"
        ) from exc
    store_class = getattr(module, class_name)
    if target is None:
        return store_class(url, **options)  # type: ignore[no-any-return]
    return store_class.from_url(target, **options)  # type: ignore[no-any-return]


def _redact(url: str) -> str:
    """``url`` with any password replaced, for error messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return repr(url)
    if parts.password is None:
        return repr(url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return repr(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
