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

On a Cluster a call that meets a failover — a dropped connection or a timeout on a master
that died, ``CLUSTERDOWN``, ``TRYAGAIN``, ``MOVED``/``ASK`` while the slot map changes, or
the transient ``AttributeError``/``None`` node errors redis-py's cluster client raises while
another task re-reads the map — is retried, the slot map re-read, until ``failover_timeout``
seconds have passed; then the error names the node it last tried. That is safe for every call:
reads repeat, every write script carries a write id and answers ``DUP`` when it ran already,
and the lease scripts are idempotent for their owner. The redis-py cluster client parses the
server's ``COMMAND`` table on every new client and every re-initialisation; the table is
parsed once per cluster per process here (:func:`_shared_commands_parser`).

With ``wait_replicas`` > 0 every write script is followed, on the same connection, by
``WAIT wait_replicas wait_timeout_ms``: a write is acknowledged only once that many replicas
have it, and one they did not confirm in time raises (it is on the primary, and may be lost
if the primary fails before replicating it).

Every failure of the server becomes a :class:`~threadline.errors.StoreServerError` naming the
server (never the password).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import StoreServerError
from .._per_loop import PerLoop
from ._scripts import SCRIPTS

__all__ = ["Connection", "RedisConfig"]

_SHAS = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in SCRIPTS.items()}
_RETRY_PAUSE = 0.2
_FAILOVER_PAUSES = (0.05, 0.1, 0.2, 0.3, 0.5)
WRITE_SCRIPTS = frozenset(
    {"append", "put_records", "replace", "fork_into", "clear", "trim", "delete", "acquire", "renew"}
)
"""The scripts that change data (``WAIT`` follows them when ``wait_replicas`` is set)."""
_COMMAND_TABLES: dict[tuple[Any, ...], dict[str, Any]] = {}


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
    failover_timeout: float = 20.0
    wait_replicas: int = 0
    wait_timeout_ms: int = 0

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

            client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in config.nodes],
                **common,
            )
            client.commands_parser = _shared_commands_parser(
                (config.nodes, config.username, config.ssl)
            )
            return client
        from redis.asyncio import Redis

        host, port = config.nodes[0]
        return Redis(host=host, port=port, db=config.db, **common)

    async def _run(self, action: Callable[[Any], Awaitable[Any]]) -> Any:
        """``await action(client)``, retried once after a dropped connection or a timeout
        (on a Cluster: through a failover, see the module docstring); every failure of the
        server raised as :class:`StoreServerError`."""
        if self.config.cluster:
            return await self._run_cluster(action)
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

    async def _run_cluster(self, action: Callable[[Any], Awaitable[Any]]) -> Any:
        """:meth:`_run` on a Cluster: retried through a failover for ``failover_timeout``
        seconds, re-reading the slot map before each retry."""
        exceptions = _redis_exceptions()
        deadline = time.monotonic() + self.config.failover_timeout
        attempt = 0
        while True:
            client = None
            epoch = None
            try:
                client = await self.client()
                epoch = _map_epoch(client)
                return await action(client)
            except Exception as exc:
                if isinstance(exc, exceptions.AuthenticationError) or not _transient(exc):
                    if isinstance(exc, (exceptions.RedisError, exceptions.RedisClusterException)):
                        raise self.failure(exc) from None
                    raise
                if time.monotonic() >= deadline:
                    raise self.failure(exc, during_failover=True) from None
                if client is not None and epoch == _map_epoch(client):
                    # nobody read the slot map since this attempt began: close the client's
                    # connections (in-flight calls of other tasks retry too) so the next
                    # call reads the map again and keeps no socket of a node that left it
                    await _drop_connections(client)
                pause = _FAILOVER_PAUSES[min(attempt, len(_FAILOVER_PAUSES) - 1)]
                attempt += 1
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))

    async def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run the script ``name`` (``EVALSHA``; its source once if the server lacks it);
        a write script followed by ``WAIT`` when ``wait_replicas`` is set."""
        from redis import exceptions

        wait = self.config.wait_replicas > 0 and name in WRITE_SCRIPTS
        if not self.config.cluster:
            return await self._run_direct(name, keys, args, wait)

        async def run(client: Any) -> Any:
            if wait:
                return await self._script_and_wait(client, name, keys, args)
            try:
                return await client.evalsha(_SHAS[name], len(keys), *keys, *args)
            except exceptions.NoScriptError:
                return await client.eval(SCRIPTS[name], len(keys), *keys, *args)

        return await self._run(run)

    async def _script_and_wait(
        self, client: Any, name: str, keys: list[str], args: list[Any]
    ) -> Any:
        """The script, then ``WAIT``, on one connection to the master of the keys' slot (a
        ``WAIT`` counts the writes of its own connection only)."""
        from redis.asyncio.cluster import PipelineCommand

        exceptions = _redis_exceptions()
        await client.initialize()  # a no-op unless a failure asked to read the slot map again
        node = client.get_node_from_key(keys[0])
        if node is None:
            raise exceptions.SlotNotCoveredError(f"no node serves {keys[0]!r}")
        config = self.config

        async def send(command: str, script: str) -> tuple[Any, Any]:
            steps = [
                PipelineCommand(0, command, script, len(keys), *keys, *args),
                PipelineCommand(1, "WAIT", config.wait_replicas, config.wait_timeout_ms),
            ]
            await node.execute_pipeline(steps)
            return steps[0].result, steps[1].result

        return await self._script_then_wait(name, node.name, send)

    async def _script_then_wait(
        self, name: str, node: str, send: Callable[[str, str], Awaitable[tuple[Any, Any]]]
    ) -> Any:
        """``send(command, script)`` with ``EVALSHA``, then with ``EVAL`` if the server lacks
        the script; its ``(reply, WAIT reply)`` checked: the script's error raised, too few
        replicas a :class:`StoreServerError`."""
        exceptions = _redis_exceptions()
        for command, script in (("EVALSHA", _SHAS[name]), ("EVAL", SCRIPTS[name])):
            reply, waited = await send(command, script)
            if isinstance(reply, exceptions.NoScriptError):
                continue
            if isinstance(reply, BaseException):
                raise reply
            self._check_waited(waited, node)
            return reply
        raise exceptions.NoScriptError(f"{name} is not on {node}")  # pragma: no cover

    def _check_waited(self, waited: Any, node: str) -> None:
        """Raise unless ``WAIT`` answered that enough replicas have the write."""
        if isinstance(waited, BaseException):
            raise waited
        config = self.config
        if int(waited) < config.wait_replicas:
            raise StoreServerError(
                self.config.where,
                f"the write reached the primary {node} but WAIT confirmed it on {int(waited)} "
                f"of {config.wait_replicas} replicas within {config.wait_timeout_ms} ms, so "
                "it may be lost if that primary fails now: check the replicas' links, or "
                "raise wait_timeout_ms",
            )

    async def _run_direct(self, name: str, keys: list[str], args: list[Any], wait: bool) -> Any:
        """:meth:`script` on a single server, on a connection of the loop's own (see the
        module docstring); the same retry and failures as :meth:`_run`."""
        exceptions = _redis_exceptions()
        held = self._clients.get()
        for attempt in (1, 2):
            try:
                if wait:
                    return await self._direct_and_wait(held, name, keys, args)
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

    async def _direct_and_wait(
        self, held: _LoopClient, name: str, keys: list[str], args: list[Any]
    ) -> Any:
        """The script, then ``WAIT``, sent together on one connection of a single server."""
        config = self.config
        wait = pack_command("WAIT", config.wait_replicas, config.wait_timeout_ms)
        timeout = config.timeout + config.wait_timeout_ms / 1000

        async def send(command: str, script: str) -> tuple[Any, Any]:
            return await held.call_pair(timeout, pack(command, script, keys, args) + wait)

        return await self._script_then_wait(name, ":".join(map(str, config.nodes[0])), send)

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

    def failure(self, exc: BaseException, *, during_failover: bool = False) -> StoreServerError:
        """The :class:`StoreServerError` for a redis-py exception (``during_failover``: it
        was still failing when ``failover_timeout`` ran out)."""
        from redis import exceptions

        detail = str(exc) or type(exc).__name__
        if during_failover:
            node = _node_of(exc)
            where = f" (last tried {node})" if node else ""
            reason = (
                f"the cluster did not answer within failover_timeout="
                f"{self.config.failover_timeout:g} s{where}: {type(exc).__name__}: "
                f"{detail.rstrip('.')}; "
                "check that every slot has a live master (CLUSTER INFO), or raise "
                "failover_timeout"
            )
            password = self.config.password
            if password:
                reason = reason.replace(password, "***")
            return StoreServerError(self.config.where, reason)
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


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` is one a Cluster raises while it fails over (see the module
    docstring)."""
    exceptions = _redis_exceptions()
    if isinstance(
        exc,
        (
            exceptions.ConnectionError,
            exceptions.TimeoutError,
            exceptions.ClusterDownError,
            exceptions.TryAgainError,
            exceptions.MovedError,
            exceptions.AskError,
            exceptions.SlotNotCoveredError,
            exceptions.BusyLoadingError,
        ),
    ):
        return True
    if isinstance(exc, exceptions.ResponseError):
        return str(exc).startswith(("CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "LOADING"))
    if isinstance(exc, exceptions.RedisClusterException):
        # "Redis Cluster cannot be connected" and friends while every known node is down
        return "cannot be connected" in str(exc) or "No targets" in str(exc)
    if isinstance(exc, (AttributeError, TypeError, KeyError, IndexError)):
        # redis-py's cluster client meeting its own node table mid-reset (another task
        # closed and re-reads it): only when raised inside redis-py
        trace = exc.__traceback__
        last = None
        while trace is not None:
            last = trace
            trace = trace.tb_next
        return last is not None and "/redis/" in last.tb_frame.f_code.co_filename.replace("\\", "/")
    return False


async def _drop_connections(client: Any) -> None:
    """Disconnect every node a cluster client knows (its slot map's and its startup nodes)
    and make its next call read the slot map again. ``RedisCluster.aclose`` does nothing
    while the client waits to re-read the map, which a failed call leaves it doing: its
    sockets stayed open."""
    manager = client.nodes_manager
    client._initialize = True
    for attr in ("nodes_cache", "startup_nodes"):
        with contextlib.suppress(Exception):
            await manager.aclose(attr)


def _map_epoch(client: Any) -> Any:
    """How many times the cluster client has read its slot map (redis-py counts)."""
    return getattr(getattr(client, "nodes_manager", None), "_epoch", None)


def _node_of(exc: BaseException) -> str | None:
    """The node a redis-py exception came from, when it says."""
    named = getattr(exc, "last_failed_node_name", None)
    if named:
        return str(named)
    connection = getattr(exc, "connection", None)
    name = getattr(connection, "name", None)
    if name:
        return str(name)
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    if host and port:
        return f"{host}:{port}"
    return None


def _shared_commands_parser(key: tuple[Any, ...]) -> Any:
    """An ``AsyncCommandsParser`` whose table, once read from one node of the cluster
    ``key`` names, every later client of that cluster in this process reuses (redis-py
    reads it on every new client and every re-initialisation: ~240 commands, a few hundred
    milliseconds of parsing on a loaded machine). A command missing from the table still
    makes it read the table again."""
    from redis._parsers import AsyncCommandsParser

    class Parser(AsyncCommandsParser):
        async def initialize(self, node: Any = None) -> None:
            if node is not None:
                self.node = node
                table = _COMMAND_TABLES.get(key)
                if table is not None:
                    self.commands = table
                    return
            await super().initialize(node)
            _COMMAND_TABLES[key] = self.commands

    return Parser()


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


async def _exchange_pair(connection: Any, commands: bytes) -> tuple[Any, Any]:
    """Send two packed commands at once and read both replies (an error reply comes back as
    its exception, not raised)."""
    exceptions = _redis_exceptions()
    await connection.send_packed_command(commands, check_health=False)
    replies = []
    for _ in (1, 2):
        try:
            replies.append(await connection.read_response())
        except exceptions.ResponseError as exc:
            replies.append(exc)
    return replies[0], replies[1]


def pack_command(*args: Any) -> bytes:
    """One command of ``str``/``int`` arguments in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode("utf-8")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


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
        return await self._exchange(
            timeout, lambda connection: _exchange(connection, command), drop_on_error=False
        )

    async def call_pair(self, timeout: float, commands: bytes) -> tuple[Any, Any]:
        """:meth:`call` for two packed commands sent together (two replies); a connection
        whose exchange failed is disconnected, as the second reply may be unread."""
        pair: tuple[Any, Any] = await self._exchange(
            timeout, lambda connection: _exchange_pair(connection, commands), drop_on_error=True
        )
        return pair

    async def _exchange(
        self, timeout: float, exchange: Callable[[Any], Awaitable[Any]], *, drop_on_error: bool
    ) -> Any:
        """``exchange(connection)`` on an idle connection (a new one when none is idle) within
        ``timeout`` seconds; the connection goes back to the idle list afterwards."""
        idle = self.idle
        if idle:
            connection = idle.pop()
        else:
            pool = self.client.connection_pool
            # no per-send timer (a task each): the deadline below covers send and read
            connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        try:
            return await _within(timeout, exchange(connection))
        except asyncio.TimeoutError:
            await connection.disconnect(nowait=True)
            raise _redis_exceptions().TimeoutError(f"no answer within {timeout:g} s") from None
        except BaseException:
            if drop_on_error:
                await connection.disconnect(nowait=True)
            raise
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
        if getattr(held.client, "nodes_manager", None) is not None:  # a Cluster client
            await _drop_connections(held.client)
    except Exception:  # a client whose server is gone still closes its sockets
        return
