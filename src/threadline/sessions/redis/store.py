"""RedisStore: sessions on a Redis server or a Redis Cluster, shared by any number of processes.

URLs (see :func:`~threadline.sessions.open_store`):

* ``redis://[user:password@]host[:port][/db]`` — one server (``rediss://`` for TLS);
* ``redis+cluster://[user:password@]node1:7000,node2:7001`` — a Redis Cluster, reached
  through any of its nodes (``rediss+cluster://`` for TLS).

Query parameters set options: ``prefix`` (the key prefix, default ``tl:``), ``ttl`` (seconds
a session lives after its last write; default: forever), ``timeout`` and ``connect_timeout``
(seconds), ``failover_timeout`` (seconds a Cluster call keeps retrying through a failover,
default 20), ``wait_replicas`` and ``wait_timeout_ms`` (after each write, ``WAIT`` until that
many replicas have it, at most that long, else the write raises), and for TLS
``ssl_cert_reqs`` (``required``/``optional``/``none``) and ``ssl_ca_certs`` (a CA bundle
path). See ``docs/deployment.md`` for the key layout and for replicas and failover.
"""

from __future__ import annotations

import math
import urllib.parse
from typing import Any

from ...errors import UserError
from .._base_store import Store
from ..codec import ItemCodec, JsonCodec
from ._backend import RedisBackend
from ._client import Connection, RedisConfig
from ._keys import check_prefix

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "tl:"
"""The key prefix of a store that names none."""

_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")
_QUERY = (
    "prefix",
    "ttl",
    "timeout",
    "connect_timeout",
    "failover_timeout",
    "wait_replicas",
    "wait_timeout_ms",
    "ssl_cert_reqs",
    "ssl_ca_certs",
)
_WAIT_TIMEOUT_MS = 1000


def _seconds(name: str, value: object, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise UserError(f"{name} must be a number of seconds > 0, got {value!r}") from None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise UserError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def _count(name: str, value: object, *, least: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UserError(f"{name} must be a whole number >= {least}, got {value!r}")
    return value


def _host_port(text: str, url: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise UserError(f"the store URL {_redact(url)} names no host in {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UserError(f"the store URL {_redact(url)} has a bad port in {text!r}")
    return host, int(port_text)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    location = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" in location:
        userinfo, _, hosts = location.rpartition("@")
        user = userinfo.split(":", 1)[0]
        rest = rest.replace(location, f"{user}:***@{hosts}" if ":" in userinfo else location, 1)
    return repr(scheme + sep + rest)


def parse_url(url: str) -> tuple[RedisConfig, dict[str, str]]:
    """The server configuration and the query options of a Redis store URL."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        raise UserError(
            f"{_redact(url)} is not a Redis store URL: use redis://host:6379/0, rediss://... or "
            "redis+cluster://node1:7000,node2:7001"
        )
    rest, _, query = rest.partition("?")
    location, _, path = rest.partition("/")
    userinfo, at, hosts = location.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(secret) if colon else None
    cluster = scheme.endswith("+cluster")
    nodes = tuple(
        _host_port(part.strip(), url, 6379) for part in (hosts or "").split(",") if part.strip()
    )
    if not nodes:
        nodes = (("127.0.0.1", 6379),)
    if not cluster and len(nodes) > 1:
        raise UserError(
            f"{_redact(url)} names several hosts: use redis+cluster:// for a Redis Cluster"
        )
    db = 0
    path = urllib.parse.unquote(path).strip("/")
    if path:
        if cluster:
            raise UserError(f"{_redact(url)}: a Redis Cluster has only database 0; drop '/{path}'")
        if not path.isdigit():
            raise UserError(f"{_redact(url)}: the database must be a number, got {path!r}")
        db = int(path)
    options: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name not in _QUERY:
            raise UserError(
                f"unknown option {name!r} in {_redact(url)}: a Redis store URL takes "
                + ", ".join(_QUERY)
            )
        options[name] = value
    ssl = scheme.startswith("rediss")
    ssl_options: list[tuple[str, str]] = []
    for name in ("ssl_cert_reqs", "ssl_ca_certs"):
        if name in options:
            if not ssl:
                raise UserError(f"{name} in {_redact(url)} needs a rediss:// URL (TLS)")
            ssl_options.append((name, options.pop(name)))
    config = RedisConfig(
        nodes=nodes,
        cluster=cluster,
        db=db,
        username=username,
        password=password,
        ssl=ssl,
        ssl_options=tuple(ssl_options),
    )
    return config, options


def _pick(value: Any, query: dict[str, str], name: str, default: Any) -> Any:
    """An argument given explicitly, else the URL's query parameter, else the default."""
    if value is not None:
        return value
    return query.get(name, default)


class RedisStore(Store):
    """Sessions on a Redis server or Cluster (see the module docstring).

    * ``url`` — the server (``redis://127.0.0.1:6379/0`` by default).
    * ``prefix`` — the key prefix of this store's keys (stores with different prefixes on one
      server are independent); may not hold ``{`` or ``}``.
    * ``ttl`` — seconds a session is kept after its last write (every write refreshes it;
      reads do not); ``None`` keeps sessions until they are deleted.
    * ``timeout`` / ``connect_timeout`` — seconds to wait for an answer / a connection.
    * ``failover_timeout`` — on a Cluster, seconds a call keeps retrying while a master fails
      over (dropped connections, ``CLUSTERDOWN``, ``TRYAGAIN``, ``MOVED``/``ASK``) before it
      raises :class:`~threadline.errors.StoreServerError`; default 20.
    * ``wait_replicas`` / ``wait_timeout_ms`` — after every write, ``WAIT`` until that many
      replicas have it (at most ``wait_timeout_ms``, default 1000 ms); a write they do not
      confirm in time raises :class:`~threadline.errors.StoreServerError` instead of being
      acknowledged. Default 0: no wait (replication is asynchronous, so a primary that dies
      right after acknowledging can lose its last writes).
    * ``codec`` — the item codec (default :class:`~threadline.sessions.JsonCodec`).

    An argument given here wins over the same option in the URL's query. Nothing connects until the first call. Offers ``window``, ``pop_turn``, ``replace``,
    ``fork``, ``lease`` and ``shared``; not ``search`` (Redis has no full-text index without a
    module: :meth:`search` raises :class:`~threadline.errors.UserError`).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str | None = None,
        ttl: float | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        failover_timeout: float | None = None,
        wait_replicas: int | None = None,
        wait_timeout_ms: int | None = None,
        codec: ItemCodec | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise UserError(f"a Redis store URL must be a string, got {type(url).__name__}")
        config, query = parse_url(url)
        config = RedisConfig(
            **{
                **config.__dict__,
                "timeout": _seconds("timeout", _pick(timeout, query, "timeout", 10.0)),
                "connect_timeout": _seconds(
                    "connect_timeout", _pick(connect_timeout, query, "connect_timeout", 5.0)
                ),
                "failover_timeout": _seconds(
                    "failover_timeout", _pick(failover_timeout, query, "failover_timeout", 20.0)
                ),
                "wait_replicas": _count(
                    "wait_replicas", _pick(wait_replicas, query, "wait_replicas", 0), least=0
                ),
                "wait_timeout_ms": _count(
                    "wait_timeout_ms",
                    _pick(wait_timeout_ms, query, "wait_timeout_ms", _WAIT_TIMEOUT_MS),
                    least=1,
                ),
            }
        )
        prefix = _pick(prefix, query, "prefix", DEFAULT_PREFIX)
        ttl = _pick(ttl, query, "ttl", None)
        self.url = _redact(url)[1:-1]
        backend = RedisBackend(
            Connection(config),
            codec or JsonCodec(),
            prefix=check_prefix(prefix),
            ttl=_seconds("ttl", ttl, allow_none=True),
        )
        super().__init__(backend)

    @property
    def prefix(self) -> str:
        """The key prefix of this store's keys."""
        return self.backend.prefix

    @property
    def ttl(self) -> float | None:
        """Seconds a session is kept after its last write, or ``None``."""
        return self.backend.ttl_ms / 1000 if self.backend.ttl_ms else None

    @property
    def backend(self) -> RedisBackend:
        """The store's :class:`RedisBackend`."""
        backend = self._backend
        assert isinstance(backend, RedisBackend)
        return backend

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """A store from a Redis URL (see the module docstring); ``options`` win over the
        URL's query parameters."""
        return cls(url, **options)
