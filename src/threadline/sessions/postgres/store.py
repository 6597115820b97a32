"""PostgresStore: sessions in a PostgreSQL database that any number of processes share.

``open_store("postgresql://app@db.internal:5432/chat")`` (or ``postgres://``) opens one; nothing
connects until first use. The schema is created and upgraded only by ``await store.setup()``
or ``threadline db migrate --store URL``; a store on a database without it raises
:class:`~threadline.errors.SchemaMissingError` naming that command, unless it was opened with
``create=True`` (tests, development). See ``docs/deployment.md``.
"""

from __future__ import annotations

import importlib.util
import math
import re
import urllib.parse
from typing import Any, ClassVar

from ...errors import MissingDependencyError, UserError
from .._base_store import Store
from .._handle import StoreSession
from ..codec import ItemCodec, JsonCodec
from ._backend import PostgresBackend
from ._pool import Pools, Settings

__all__ = ["PostgresSession", "PostgresStore"]

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")

_OPTIONS: dict[str, type] = {
    "schema": str,
    "pool_size": int,
    "pool_min": int,
    "connect_timeout": float,
    "acquire_timeout": float,
    "command_timeout": float,
    "retry_for": float,
    "statement_cache_size": int,
    "create": bool,
}


class PostgresSession(StoreSession):
    """A session handle of a :class:`PostgresStore` (``store.session(session_id)``)."""


def _redacted(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _server(parts: urllib.parse.SplitResult) -> str:
    """``host:port/database`` of a URL (no user, no password)."""
    try:
        port = parts.port or 5432
    except ValueError:
        raise UserError(f"the port in the store URL {_redacted(parts)!r} is not a number") from None
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    database = urllib.parse.unquote(parts.path.lstrip("/")) or (parts.username or "")
    return f"{host}:{port}/{database}"


def _number(name: str, value: object, kind: type, low: float) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise UserError(f"{name} must be true or false, got {value!r}")
    if kind is str:
        if not isinstance(value, str) or not _SCHEMA_NAME.match(value):
            raise UserError(
                f"{name} must be a plain SQL name (letters, digits, _; at most 63), got {value!r}"
            )
        return value
    try:
        number = kind(value) if isinstance(value, str) else value
    except ValueError:
        raise UserError(f"{name} must be a {kind.__name__}, got {value!r}") from None
    if (
        isinstance(number, bool)
        or not isinstance(number, (int, float))
        or (kind is int and not isinstance(number, int))
        or not math.isfinite(number)
        or number < low
    ):
        raise UserError(f"{name} must be a finite {kind.__name__} >= {low:g}, got {value!r}")
    return number


class PostgresStore(Store):
    """A session store in a PostgreSQL database (schema ``public`` unless ``schema=``).

    * ``url`` — ``postgresql://user[:password]@host[:port]/database`` (libpq's other
      parameters, ``?sslmode=require`` for example, pass through to the driver).
    * ``schema`` — the PostgreSQL schema holding the tables (default ``public``).
    * ``pool_size`` / ``pool_min`` — connections per event loop at most / kept open (10 / 1).
    * ``connect_timeout`` / ``acquire_timeout`` — seconds to connect / to wait for a free
      pooled connection before :class:`~threadline.errors.StoreUnavailableError` (10 / 10).
    * ``command_timeout`` — seconds one statement may take (default: no bound).
    * ``retry_for`` — seconds to keep retrying a safe operation after a connection failure (5).
    * ``statement_cache_size`` — prepared statements per connection (0 behind a pgbouncer in
      transaction mode; default 100).
    * ``create`` — create or upgrade the schema on first use (tests and development only;
      production runs ``threadline db migrate``).
    * ``codec`` — the item codec (default :class:`~threadline.sessions.JsonCodec`).

    Each option may also be given in the URL's query string (``?pool_size=20&schema=chat``).
    """

    session_class: ClassVar[type[StoreSession]] = PostgresSession

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        pool_size: int = 10,
        pool_min: int = 1,
        connect_timeout: float = 10.0,
        acquire_timeout: float = 10.0,
        command_timeout: float | None = None,
        retry_for: float = 5.0,
        statement_cache_size: int = 100,
        create: bool = False,
        codec: ItemCodec | None = None,
    ) -> None:
        if importlib.util.find_spec("asyncpg") is None:
            raise MissingDependencyError("asyncpg", "postgres", "postgresql:// stores")
        if not isinstance(url, str):
            raise UserError(f"a PostgreSQL store URL must be a string, got {type(url).__name__}")
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError as exc:
            raise UserError(f"malformed PostgreSQL store URL: {exc}") from None
        if parts.scheme.lower() not in ("postgresql", "postgres"):
            raise UserError(
                f"a PostgreSQL store URL starts with postgresql:// or postgres://, got "
                f"{_redacted(parts)!r}"
            )
        passthrough = []
        given: dict[str, Any] = {}
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if name in _OPTIONS:
                given[name] = value
            else:
                passthrough.append((name, value))
        explicit = {
            "schema": schema,
            "pool_size": pool_size,
            "pool_min": pool_min,
            "connect_timeout": connect_timeout,
            "acquire_timeout": acquire_timeout,
            "command_timeout": command_timeout,
            "retry_for": retry_for,
            "statement_cache_size": statement_cache_size,
            "create": create,
        }
        values = {**explicit, **given}
        low = {"pool_size": 1, "pool_min": 0, "statement_cache_size": 0, "retry_for": 0}
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if name == "command_timeout" and value is None:
                checked[name] = None
                continue
            floor = low.get(name, 0.001)
            checked[name] = _number(name, value, _OPTIONS[name], floor)
        dsn = urllib.parse.urlunsplit(
            parts._replace(scheme="postgresql", query=urllib.parse.urlencode(passthrough))
        )
        public = _redacted(parts)
        server = _server(parts)
        where = f"postgresql://{server}"
        if checked["schema"] != "public":
            where += f" (schema {checked['schema']})"
        self.url = public
        """The store URL without its password."""
        self.schema: str = checked["schema"]
        """The PostgreSQL schema holding the tables."""
        settings = Settings(dsn=dsn, where=where, url=public, **checked)
        super().__init__(PostgresBackend(Pools(settings), codec or JsonCodec()))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """``postgresql://...`` or ``postgres://...`` (see the class docstring)."""
        return cls(url, **options)
