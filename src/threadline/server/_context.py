"""What every route works with: the :class:`ServerContext` of one app, and the request helpers
(the tenant, the session handle of a conversation, the lease a request asks for, the route
decorator that turns every failure into OpenAI's envelope).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import UserError
from ..items import Item
from ..sessions._handle import StoreSession
from ..sessions.base import SessionInfo
from ..sessions.codec import check_session_id
from ..sessions.lease import held_lease
from ._agents import ServedAgents
from ._auth import Auth, Tenant
from ._errors import ApiError, error_response, from_exception, not_found
from ._ids import is_chain, stamp_id
from ._limits import Limits

__all__ = [
    "LEASE_WAIT_HEADER",
    "ServerContext",
    "ServerSession",
    "api_route",
    "context_of",
    "route",
    "session_id_for",
]

logger = logging.getLogger("threadline.server")

LEASE_WAIT_HEADER = "x-threadline-lease-wait"
"""The request header asking to wait up to N seconds for a busy conversation (default 0)."""

T = TypeVar("T")


class ServerSession(StoreSession):
    """The session handle a request works through.

    Every item written through it gets an id (stamped in place, so the run's own copy of the
    item carries the same id). Its ``lease()`` is re-entrant: a request holds the lease around
    its own writes and the run inside it, and the runner's lease call joins the one held. The
    run's last step ends the lease in the same write (``_last_write_ends_lease``), so the
    conversation is free once the reply is stored; a write after it (a response record the
    last step did not carry) goes unfenced. ``readonly`` (``store: false``) drops every write.
    """

    readonly: bool
    written: list[Item]
    step_records: Callable[[list[Item]], dict[str, Any]] | None
    """Records to write with each batch of items that is not the request's input (a run's
    step): a response record rides with the step that completes it, in one transaction."""
    input_ids: frozenset[str]

    run_lease_wait: float | None
    """Set when the run takes the request's lease itself, with its start read (one store
    job): how long the request waits for a busy conversation (0: a 409 at once); the lease
    is then taken only on a conversation that exists (else :class:`NoSuchSession`)."""
    lease_info: SessionInfo | None
    """The conversation as the run's lease found it (with ``run_lease_wait``)."""

    def _bound(self) -> None:
        self.readonly = False
        self.written = []
        self.step_records = None
        self.input_ids = frozenset()
        self.run_lease_wait = None
        self.lease_info = None

    def _run_lease(self, wait: bool, timeout: float | None) -> tuple[bool, float | None, bool]:
        if self.run_lease_wait is None:
            return wait, timeout, False
        return (*lease_terms(self.run_lease_wait), True)

    @asynccontextmanager
    async def _lease_and_start(
        self,
        wait: bool,
        timeout: float | None,
        ttl: float | None,
        keys: Any,
        budget: Any,
    ) -> AsyncIterator[Any]:
        if self.readonly:  # no lease, nothing written
            yield None, await self._window_and_records(keys, budget)
            return
        async with super()._lease_and_start(wait, timeout, ttl, keys, budget) as found:
            lease = found[0]
            self.lease_info = None if lease is None else lease.info
            yield found

    _last_write_ends_lease = True  # a request writes nothing under its lease after the run

    async def _append(
        self, items: list[Item], records: Any, *, run_input: bool, last: bool = False
    ) -> None:
        # every item write (add_items, and the run's own writes) comes here
        if self.readonly:
            return
        for item in items:
            stamp_id(item)
        if self.step_records is not None and any(i["id"] not in self.input_ids for i in items):
            records = {**(records or {}), **self.step_records(items)}
        await super()._append(items, records, run_input=run_input, last=last)
        self.written.extend(items)

    async def put_records(self, records: Any) -> None:
        if self.readonly:
            return
        await super().put_records(records)

    @asynccontextmanager
    async def lease(
        self,
        *,
        wait: bool = True,
        timeout: float | None = None,
        ttl: float | None = None,
        existing: bool = False,
    ) -> AsyncIterator[Any]:
        """``existing``: only on a conversation that exists (else :class:`NoSuchSession`,
        nothing written); the lease's ``info`` then has its item count."""
        if self.readonly:
            yield None
            return
        held = held_lease(self.store, self.session_id)
        if held is not None:
            yield held
            return
        async with self._fenced_lease(wait, timeout, ttl, existing=existing) as lease:
            yield lease


@dataclass
class ServerContext:
    """One app's state: the store, the served agents, keys, limits, and the turns in flight."""

    store: Any
    agents: ServedAgents
    auth: Auth
    limits: Limits
    memory: bool = True
    owns_store: bool = False
    extra_secrets: tuple[str, ...] = ()
    started: float = 0.0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def secrets(self) -> list[str]:
        """Every secret that must never appear in a response."""
        return [*self.auth.secrets, *self.extra_secrets]

    def session(self, session_id: str) -> ServerSession:
        """A handle on the session ``session_id`` (the tenant prefix already applied)."""
        return ServerSession._bind(self.store, session_id, None)

    def detach(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task of the app, not of the request: a client that disconnects
        does not cancel it, and shutdown waits for it."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout`` seconds) for the turns still in flight."""
        pending = [task for task in self.tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)


def context_of(request: Request) -> ServerContext:
    """The app's context."""
    context: ServerContext = request.app.state.threadline
    return context


def tenant_of(request: Request) -> Tenant:
    """The tenant the auth middleware found for this request."""
    tenant = request.scope.get("state", {}).get("tenant")
    return tenant if isinstance(tenant, Tenant) else Tenant()


def session_id_for(tenant: Tenant, visible_id: str, param: str | None = None) -> str:
    """The session id of the tenant's conversation ``visible_id``, or a 404 when the id
    cannot be a conversation (a hidden response chain, an invalid or unprintable id)."""
    missing = not_found(f"No conversation found with id '{visible_id}'.", param=param)
    try:
        check_session_id(visible_id)
    except UserError:
        raise missing from None
    if is_chain(visible_id) or len(visible_id) > 512 or not visible_id.isprintable():
        raise missing
    return tenant.session_id(visible_id)


def conversation_session_id(request: Request, visible_id: str) -> str:
    """:func:`session_id_for` this request's tenant."""
    return session_id_for(tenant_of(request), visible_id)


def lease_wait(request: Request) -> float:
    """How long this request waits for a busy conversation (the lease-wait header; 0: not)."""
    raw = request.headers.get(LEASE_WAIT_HEADER)
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:  # negative or NaN (infinity means: as long as the server allows)
        raise ApiError(
            400, f"the header {LEASE_WAIT_HEADER} must be a number of seconds >= 0, got {raw!r}"
        )
    return min(seconds, context_of(request).limits.max_lease_wait)


@asynccontextmanager
async def writer(session: ServerSession, wait: float, existing: bool = False) -> AsyncIterator[Any]:
    """Hold ``session``'s lease: ``wait`` 0 is a 409 ``conversation_busy`` at once.
    ``existing``: the conversation must exist (else :class:`NoSuchSession`); yields the
    lease, whose ``info`` then carries its item count."""
    waits, timeout = lease_terms(wait)
    async with session.lease(wait=waits, timeout=timeout, existing=existing) as lease:
        yield lease


def lease_terms(wait: float) -> tuple[bool, float | None]:
    """A request's lease wait (seconds; 0: a 409 at once) as ``(wait, timeout)``."""
    return wait > 0, wait if wait > 0 else None


Endpoint = Callable[[Request], Awaitable[Response]]


def route(path: str, **handlers: Endpoint) -> Route:
    """One route for ``path`` whose methods (``GET=…``, ``POST=…``) each have a handler, so a
    wrong method is a 405 whose ``Allow`` header lists every method of the path."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return Route(path, dispatch, methods=list(handlers))


def api_route(handler: Endpoint) -> Endpoint:
    """Wrap an endpoint: any exception becomes OpenAI's error envelope (scrubbed of secrets;
    the traceback of an unexpected one goes to the log, never to the client)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            secrets = context_of(request).secrets
            return error_response(from_exception(exc, secrets), secrets)

    return endpoint
