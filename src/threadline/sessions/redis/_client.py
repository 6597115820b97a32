"""Connections to one Redis server or Cluster: a client per event loop, scripts, failures.

A ``redis.asyncio`` client's connections belong to the event loop that opened them, so the
store keeps one client per running loop (:class:`~threadline.sessions._per_loop.PerLoop`):
``Runner.run_sync`` and ``asyncio.run`` may share one store. On a single server the scripts
(every item read and write) skip the client's per-command layers (pool locks, retry wrapper,
metrics, a timer task per send): each loop keeps a few idle redis-py connections of its own and
a script takes one, sends, reads the reply and puts it back, under one deadline of ``timeout``
seconds. Other commands, and every call on a Cluster, go through the client. redis-py's own
retries are off;
:meth:`Connection.script` retries a script once after a dropped connection or a timeout,
which is safe because every write script carries a write id and answers ``DUP`` when it ran
already. Scripts run with ``EVALSHA``; a server that does not have one yet (new, restarted,
flushed) answers ``NOSCRIPT`` and gets the source once with ``EVAL``, which caches it.

Every failure of the server becomes a :class:`~threadline.errors.StoreServerError` naming the
server (never the password).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import StoreServerError
from .._per_loop import PerLoop
from ._scripts import SCRIPTS

__all__ = ["Connection", "RedisConfig"]

_SHAS = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in SCRIPTS.items()}
_RETRY_PAUSE = 0.2


@dataclass(frozen=True)
class RedisConfig:
    """Where the server is and how to talk to it."""

    nodes: tuple[tuple[str, int], ...]
    cluster: bool = False
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    ssl_options: tuple[tuple[str, str], ...] = ()
    timeout: float = 10.0
    connect_timeout: float = 5.0

    @property
    def where(self) -> str:
        """How messages name the server (no password)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.nodes)
        scheme = "TLS " if self.ssl else ""
        if self.cluster:
            return f"{scheme}Redis Cluster at {hosts}"
        return f"{scheme}Redis at {hosts}/{self.db}"


class Connection:
    """The clients of one store (one per event loop) and how its scripts run."""

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self._clients: PerLoop[_LoopClient] = PerLoop(self._make, _close_client)

    def first_use(self) -> asyncio.Lock:
        """A lock of the running loop, held while the store's first calls set things up
        (concurrent first calls wait instead of all connecting at once)."""
        return self._clients.get().setup_lock

    @property
    def cluster(self) -> bool:
        """Whether the store is on a Redis Cluster."""
        return self.config.cluster

    async def client(self) -> Any:
        """The running loop's client (a Cluster client has learnt the slot map)."""
        held = self._clients.get()
        if not held.ready:
            async with held.lock:
                if not held.ready and self.config.cluster:
                    await held.client.initialize()
                held.ready = True
        return held.client

    async def aclose(self) -> None:
        """Close the running loop's client; other loops' clients close when those loops shut
        down (a ``Runner.run_sync`` loop at the end of its thread or at exit)."""
        await self._clients.aclose_all()

    def _make(self) -> _LoopClient:
        return _LoopClient(self._make_client(), asyncio.Lock(), asyncio.Lock())

    def _make_client(self) -> Any:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        config = self.config
        common: dict[str, Any] = {
            "username": config.username,
            "password": config.password,
            "socket_timeout": config.timeout,
            "socket_connect_timeout": config.connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": False,
        }
        if config.ssl:
            common["ssl"] = True
            common.update(dict(config.ssl_options))
        if config.cluster:
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            return RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in config.nodes],
                **common,
            )
        from redis.asyncio import Redis

        host, port = config.nodes[0]
        return Redis(host=host, port=port, db=config.db, **common)

    async def _run(self, action: Callable[[Any], Awaitable[Any]]) -> Any:
        """``await action(client)``, retried once after a dropped connection or a timeout;
        every failure of the server raised as :class:`StoreServerError`."""
        from redis import exceptions

        for attempt in (1, 2):
            try:
                return await action(await self.client())
            except (exceptions.ConnectionError, exceptions.TimeoutError) as exc:
                if attempt == 2 or isinstance(exc, exceptions.AuthenticationError):
                    raise self.failure(exc) from None
                await asyncio.sleep(_RETRY_PAUSE)
            except (exceptions.RedisError, exceptions.RedisClusterException) as exc:
                raise self.failure(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run the script ``name`` (``EVALSHA``; its source once if the server lacks it)."""
        from redis import exceptions

        if not self.config.cluster:
            return await self._run_direct(name, keys, args)

        async def run(client: Any) -> Any:
            try:
                return await client.evalsha(_SHAS[name], len(keys), *keys, *args)
            except exceptions.NoScriptError:
                return await client.eval(SCRIPTS[name], len(keys), *keys, *args)

        return await self._run(run)

    async def _run_direct(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """:meth:`script` on a single server, on a connection of the loop's own (see the
        module docstring); the same retry and failures as :meth:`_run`."""
        exceptions = _redis_exceptions()
        held = self._clients.get()
        for attempt in (1, 2):
            try:
                try:
                    return await held.call(
                        self.config.timeout, pack("EVALSHA", _SHAS[name], keys, args)
                    )
                except exceptions.NoScriptError:
                    return await held.call(
                        self.config.timeout, pack("EVAL", SCRIPTS[name], keys, args)
                    )
            except (exceptions.ConnectionError, exceptions.TimeoutError) as exc:
                if attempt == 2 or isinstance(exc, exceptions.AuthenticationError):
                    raise self.failure(exc) from None
                await asyncio.sleep(_RETRY_PAUSE)
            except exceptions.RedisError as exc:
                raise self.failure(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def command(self, *args: Any) -> Any:
        """Run one command (only ones that are safe to repeat: it may be retried)."""
        return await self._run(lambda client: client.execute_command(*args))

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Run independent read-only commands in one pipeline (split by node on a Cluster)."""
        if not commands:
            return []

        async def run(client: Any) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())

        answers: list[Any] = await self._run(run)
        return answers

    def failure(self, exc: BaseException) -> StoreServerError:
        """The :class:`StoreServerError` for a redis-py exception."""
        from redis import exceptions

        detail = str(exc) or type(exc).__name__
        password = self.config.password
        if password:
            detail = detail.replace(password, "***")
        text = detail.lower()
        if isinstance(exc, exceptions.AuthenticationError) or any(
            word in text for word in ("wrongpass", "noauth", "invalid password", "invalid username")
        ):
            reason = (
                "the server refused the credentials: check the user name and password in the "
                "store URL"
            )
        elif isinstance(exc, exceptions.OutOfMemoryError) or text.startswith("oom "):
            reason = (
                "the server is out of memory (maxmemory reached), so nothing was written: "
                "free memory, raise maxmemory, or give sessions a ttl"
            )
        elif isinstance(exc, exceptions.ClusterDownError):
            reason = f"the cluster is down ({detail}): wait for it to recover"
        elif isinstance(exc, exceptions.ReadOnlyError):
            reason = "the server is a read-only replica: point the store URL at a primary"
        elif isinstance(
            exc,
            (exceptions.ConnectionError, exceptions.TimeoutError, exceptions.RedisClusterException),
        ):
            reason = f"cannot reach the server ({detail}): check that it runs and the store URL"
        else:
            reason = f"the server answered an error ({detail})"
        return StoreServerError(self.config.where, reason)


@functools.cache
def _redis_exceptions() -> Any:
    """``redis.exceptions``, imported on first use (an import statement on every call costs)."""
    from redis import exceptions

    return exceptions


_FRAGMENTS: dict[str, bytes] = {}
_FRAGMENTS_KEPT = 65536


def _fragment(text: str) -> bytes:
    """``text`` as one RESP bulk string, remembered (for key names and script names: the
    same few recur on every call)."""
    found = _FRAGMENTS.get(text)
    if found is None:
        data = text.encode("utf-8")
        found = b"$%d\r\n%b\r\n" % (len(data), data)
        if len(_FRAGMENTS) >= _FRAGMENTS_KEPT:
            _FRAGMENTS.clear()
        _FRAGMENTS[text] = found
    return found


def pack(command: str, script: str, keys: list[str], args: list[Any]) -> bytes:
    """``command script len(keys) *keys *args`` in the Redis protocol (RESP); each argument a
    ``bytes``, ``str`` (UTF-8) or ``int``. What redis-py's ``pack_command`` makes, without
    its per-argument checks."""
    parts = [
        b"*%d\r\n" % (3 + len(keys) + len(args)),
        _fragment(command),
        _fragment(script),
        _fragment(str(len(keys))),
    ]
    parts += map(_fragment, keys)
    for arg in args:
        kind = arg.__class__
        if kind is str:
            data = arg.encode("utf-8")
        elif kind is int:
            data = b"%d" % arg
        elif kind is bytes:
            data = arg
        elif isinstance(arg, (bytes, bytearray, memoryview)):
            data = bytes(arg)
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


if sys.version_info >= (3, 11):

    async def _within(timeout: float, step: Awaitable[Any]) -> Any:
        """``await step``, or :class:`TimeoutError` after ``timeout`` seconds (no extra task)."""
        async with asyncio.timeout(timeout):
            return await step

else:  # pragma: no cover - Python 3.10

    async def _within(timeout: float, step: Awaitable[Any]) -> Any:
        return await asyncio.wait_for(step, timeout)


async def _exchange(connection: Any, command: bytes) -> Any:
    await connection.send_packed_command(command, check_health=False)
    return await connection.read_response()


@dataclass
class _LoopClient:
    """One event loop's client, whether it is ready for concurrent use, and the idle
    connections of :meth:`call` (single server only)."""

    client: Any
    lock: asyncio.Lock
    setup_lock: asyncio.Lock
    ready: bool = False
    idle: list[Any] = field(default_factory=list)

    async def call(self, timeout: float, command: bytes) -> Any:
        """Send one packed ``command`` on an idle connection (a new one when none is idle) and
        read its reply, all within ``timeout`` seconds.

        A connection goes back to the idle list whatever happened: redis-py disconnects one
        whose send or read failed or was cancelled, and reconnects it on its next send, so an
        idle connection never holds an unread reply.
        """
        idle = self.idle
        if idle:
            connection = idle.pop()
        else:
            pool = self.client.connection_pool
            # no per-send timer (a task each): the deadline below covers send and read
            connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        try:
            return await _within(timeout, _exchange(connection, command))
        except asyncio.TimeoutError:
            await connection.disconnect(nowait=True)
            raise _redis_exceptions().TimeoutError(f"no answer within {timeout:g} s") from None
        finally:
            if self.idle is idle:
                idle.append(connection)
            else:  # the loop's client was closed meanwhile
                await connection.disconnect(nowait=True)


async def _close_client(held: _LoopClient) -> None:
    idle, held.idle = held.idle, []
    for connection in idle:
        with contextlib.suppress(Exception):  # a gone server's sockets still close
            await connection.disconnect(nowait=True)
    try:
        await held.client.aclose()
    except Exception:  # a client whose server is gone still closes its sockets
        return
