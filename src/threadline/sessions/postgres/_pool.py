"""Connections of a PostgreSQL store: one asyncpg pool per event loop, errors, retries.

An asyncpg pool belongs to the event loop that made it, and a store may be used from several
(``Runner.run_sync`` runs on a loop of its own thread, ``asyncio.run`` on another), so
:class:`Pools` keeps one pool per running loop, made on first use there. A small task on that
loop closes the pool when the loop shuts down (``asyncio.run`` cancels what is left on it);
a pool whose loop has closed is dropped. The first connection of each pool checks the schema version
(:func:`~._schema.check`), unless the store was opened with ``create=True``, which migrates.

:func:`translate` turns a driver or network failure into a threadline error that names the
server (``host:port/database``, never the password). :meth:`Pools.run` retries an operation
on a fresh connection after a connection failure, up to ``retry_for`` seconds, when the
operation says a retry is safe; a failure while getting a connection (nothing was sent) is
always safe to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ...errors import SchemaMissingError, SessionError, StoreUnavailableError
from . import _schema

__all__ = ["ConnectionLost", "Pools", "Settings", "translate"]

logger = logging.getLogger("threadline.sessions")

T = TypeVar("T")


class ConnectionLost(Exception):
    """Internal: the connection failed; carries the translated error to raise."""

    def __init__(self, error: SessionError, before_send: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.before_send = before_send


class Settings:
    """What the pools are made with (parsed and checked by the store)."""

    def __init__(
        self,
        *,
        dsn: str,
        where: str,
        url: str,
        schema: str,
        pool_size: int,
        pool_min: int,
        connect_timeout: float,
        acquire_timeout: float,
        command_timeout: float | None,
        retry_for: float,
        statement_cache_size: int,
        create: bool,
    ) -> None:
        self.dsn = dsn
        self.where = where
        self.url = url
        self.schema = schema
        self.pool_size = pool_size
        self.pool_min = pool_min
        self.connect_timeout = connect_timeout
        self.acquire_timeout = acquire_timeout
        self.command_timeout = command_timeout
        self.retry_for = retry_for
        self.statement_cache_size = statement_cache_size
        self.create = create


def _is_connection_failure(exc: BaseException) -> bool:
    import asyncpg

    if isinstance(
        exc,
        (
            OSError,
            asyncio.TimeoutError,  # not an OSError before Python 3.11
            ConnectionError,
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.CannotConnectNowError,
            asyncpg.ConnectionFailureError,
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.TooManyConnectionsError,
            asyncpg.InternalClientError,  # a connection the server cut while it sat idle
        ),
    ):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        return "connection" in text and ("closed" in text or "lost" in text)
    return False


def translate(exc: BaseException, settings: Settings) -> SessionError | None:
    """The threadline error for a driver failure, or ``None`` for one that is not the
    server's (a bug, or an error the caller maps itself)."""
    import asyncpg

    where = settings.where
    if isinstance(
        exc, (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
    ):
        return StoreUnavailableError(
            f"the PostgreSQL server {where} refused the login ({exc.__class__.__name__}: "
            f"{exc}): check the user and password in the store URL (or PGPASSWORD / ~/.pgpass)",
            server=where,
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StoreUnavailableError(
            f"the PostgreSQL server {where} has no such database ({exc}): create it "
            "(createdb) or fix the store URL",
            server=where,
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return StoreUnavailableError(
            f"the PostgreSQL server {where} did not answer in time (connect_timeout "
            f"{settings.connect_timeout:g}s, command_timeout {settings.command_timeout}); "
            f"retried for {settings.retry_for:g}s: check that it is running and reachable",
            server=where,
        )
    if _is_connection_failure(exc):
        return StoreUnavailableError(
            f"the PostgreSQL server {where} could not be reached or dropped the connection "
            f"({exc.__class__.__name__}: {exc}); retried for {settings.retry_for:g}s: check "
            "that the server is running and reachable",
            server=where,
        )
    if isinstance(exc, (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError)):
        return SchemaMissingError(
            f"the session store {where} lacks part of the threadline schema ({exc}): run "
            f"`threadline db migrate --store {settings.url}` (or await store.setup())"
        )
    return None


_OWN_RELEASE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "threadline_pg_own_release", default=False
)
"""True while :meth:`Pools.run` gives back the connection of one of the store's operations."""


async def _reset_on_release(conn: Any) -> None:
    """The pool's reset on release: nothing to send after the store's own operations.

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` each time a connection goes back to the pool: one round trip per operation
    (half of a store turn's). The store's operations leave no session state behind them:
    settings change only for one transaction (``set_config(..., true)``), locks are
    transaction locks, cursors live inside a transaction and nothing listens; a transaction
    left open (an operation cancelled mid-way) is still rolled back by the pool before this
    runs. A connection taken from the pool any other way (``await pools.pool()`` then
    ``acquire()``: the migration, tests, benchmarks) gets the full reset.
    """
    if _OWN_RELEASE.get():
        return
    query = conn.get_reset_query()
    if query:
        await conn.execute(query)


async def _guard(pool: Any) -> None:
    """Wait until cancelled, then close ``pool``: ``asyncio.run`` (and ``Runner.run_sync``)
    cancel the tasks left on a loop before closing it, so a pool never outlives its loop
    with its sockets open, even when the store is used again (or closed) on another loop."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        if not pool.is_closing():  # not already closed, or being closed by aclose()
            try:
                await asyncio.wait_for(pool.close(), timeout=2)
            except BaseException:
                pool.terminate()
        raise


class Pools:
    """One asyncpg pool per event loop (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pools: dict[asyncio.AbstractEventLoop, Any] = {}
        self._making: dict[asyncio.AbstractEventLoop, asyncio.Future[Any]] = {}
        self._guards: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._lock = threading.Lock()
        self.closed = False

    async def _new_pool(self, migrate: bool) -> Any:
        import asyncpg

        settings = self.settings

        async def init(conn: Any) -> None:
            # jsonb and json are not used; nothing to register.
            return None

        try:
            pool = await asyncpg.create_pool(
                settings.dsn,
                min_size=min(settings.pool_min, settings.pool_size),
                max_size=settings.pool_size,
                timeout=settings.connect_timeout,
                command_timeout=settings.command_timeout,
                statement_cache_size=settings.statement_cache_size,
                server_settings={
                    "search_path": _schema.quote_ident(settings.schema),
                    "application_name": "threadline",
                },
                init=init,
                reset=_reset_on_release,
            )
        except BaseException as exc:
            error = translate(exc, settings)
            if error is None:
                raise
            raise error from None
        try:
            async with pool.acquire(timeout=settings.acquire_timeout) as conn:
                if migrate or settings.create:
                    await _schema.migrate(conn, settings.where, settings.schema)
                else:
                    await _schema.check(conn, settings.where, settings.url)
        except BaseException as exc:
            pool.terminate()
            error = translate(exc, settings)
            if error is None:
                raise
            raise error from None
        return pool

    def _prune(self) -> None:
        """Forget the pools of event loops that have closed (their sockets go with them)."""
        with self._lock:
            dead = [loop for loop in self._pools if loop.is_closed()]
            for loop in dead:
                pool = self._pools.pop(loop)
                self._guards.pop(loop, None)
                with contextlib.suppress(Exception):
                    pool.terminate()

    async def pool(self, *, migrate: bool = False) -> Any:
        """This event loop's pool (made, and the schema checked, on first use)."""
        if self.closed:
            raise SessionError(
                f"the session store {self.settings.where} is closed: open a new store"
            )
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None and not migrate:
            return pool
        making = self._making.get(loop)
        if making is None:
            self._prune()
            making = loop.create_future()
            self._making[loop] = making
            try:
                if pool is not None:  # setup() on a loop that has a pool: migrate through it
                    async with pool.acquire(timeout=self.settings.acquire_timeout) as conn:
                        await _schema.migrate(conn, self.settings.where, self.settings.schema)
                else:
                    pool = await self._new_pool(migrate)
            except BaseException as exc:
                del self._making[loop]
                making.set_exception(exc)
                making.exception()  # retrieved: later waiters re-raise it themselves
                raise
            with self._lock:
                self._pools[loop] = pool
                if loop not in self._guards:
                    self._guards[loop] = loop.create_task(_guard(pool), name="threadline-pg-pool")
            del self._making[loop]
            making.set_result(pool)
            return pool
        return await asyncio.shield(making)

    async def run(
        self,
        operation: Callable[[Any, int], Awaitable[T]],
        *,
        retry: bool,
        what: str,
    ) -> T:
        """Run ``operation(conn, attempt)`` on a pooled connection.

        A connection failure is retried on a fresh connection for up to ``retry_for`` seconds
        when ``retry`` is true, or when it happened before anything was sent; otherwise (and
        when the time is up) it raises :class:`StoreUnavailableError`.
        """
        import asyncpg

        settings = self.settings
        deadline = time.monotonic() + settings.retry_for
        attempt = 0
        delay = 0.05
        while True:
            pool = await self.pool()
            sent = False
            try:
                try:
                    conn = await pool.acquire(timeout=settings.acquire_timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    raise StoreUnavailableError(
                        f"no free connection to the PostgreSQL server {settings.where} within "
                        f"{settings.acquire_timeout:g}s: all {settings.pool_size} of this "
                        "event loop's pool are busy; raise pool_size (store URL "
                        "?pool_size=N) or run fewer sessions at once per process",
                        server=settings.where,
                    ) from None
                broken = True
                try:
                    if not retry:
                        # An operation that may not be retried first proves the connection
                        # alive (one round trip): a connection the server cut while it sat in
                        # the pool fails here, before anything was sent, and is replaced.
                        await conn.execute("SELECT 1")
                    sent = True
                    result = await operation(conn, attempt)
                    broken = False
                    return result
                except BaseException as exc:
                    broken = _is_connection_failure(exc)
                    raise
                finally:
                    with contextlib.suppress(Exception):
                        if broken:
                            conn.terminate()  # the pool opens a fresh one in its place
                    own = _OWN_RELEASE.set(True)  # (seen by the release task: a copy)
                    try:
                        with contextlib.suppress(Exception):
                            await pool.release(conn)
                    finally:
                        _OWN_RELEASE.reset(own)
            except SessionError:
                raise
            except Exception as exc:
                if not _is_connection_failure(exc):
                    error = (
                        translate(exc, settings) if isinstance(exc, asyncpg.PostgresError) else None
                    )
                    if error is None:
                        raise
                    raise error from None
                failure: BaseException = exc
            error = translate(failure, settings)
            assert error is not None
            if (retry or not sent) and time.monotonic() + delay < deadline:
                attempt += 1
                logger.info(
                    "threadline: %s on %s failed (%s); retrying on a fresh connection",
                    what,
                    settings.where,
                    failure,
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
                continue
            if not retry and sent:
                raise StoreUnavailableError(
                    f"{what} on the PostgreSQL server {settings.where} failed when the "
                    f"connection dropped ({failure.__class__.__name__}); it was not retried "
                    "because it may have been applied: read the session to see",
                    server=settings.where,
                ) from None
            raise error from None

    async def close(self) -> None:
        """Close this loop's pool gracefully and terminate the others'."""
        self.closed = True
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            pools = dict(self._pools)
            guards = dict(self._guards)
            self._pools.clear()
            self._guards.clear()
        for pool_loop, guard in guards.items():
            if pool_loop is loop:
                guard.cancel()
            elif not pool_loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    pool_loop.call_soon_threadsafe(guard.cancel)
        for pool_loop, pool in pools.items():
            if pool_loop is loop:
                try:
                    await asyncio.wait_for(pool.close(), timeout=5)
                except Exception:
                    pool.terminate()
            elif not pool_loop.is_closed() and pool_loop.is_running():
                with contextlib.suppress(RuntimeError):  # it closed meanwhile
                    pool_loop.call_soon_threadsafe(pool.terminate)
            else:
                with contextlib.suppress(Exception):
                    pool.terminate()
