"""The app: :func:`create_app` assembles the routes, the middleware and the store's life cycle.

Middleware, outermost first: CORS (only when origins are given), then authentication (a
pure ASGI layer: ``Authorization: Bearer KEY`` → the request's tenant, else a 401 envelope).
Every route turns its failures into OpenAI's envelope; unknown routes are a 404 and wrong
methods a 405, in the same envelope. The store is set up when the app starts and closed
(when the app opened it) after the turns still in flight have finished.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ..agent import Agent
from ..errors import UserError
from ..models.base import Model
from ..sessions.store import SessionStore, open_store
from ._agents import ServedAgents
from ._auth import Auth
from ._context import ServerContext, api_route, context_of, route
from ._errors import ApiError, error_body, error_response
from ._limits import Limits

__all__ = ["create_app"]

_PUBLIC_PATHS = frozenset({"/openapi.json", "/health"})


class _AuthMiddleware:
    """Find the tenant of every request under ``/v1`` (401 without a valid key)."""

    def __init__(self, app: ASGIApp, context: ServerContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and self.context.auth.enabled:
            await self.app(scope, receive, send)  # a CORS preflight carries no key
            return
        authorization = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            tenant = self.context.auth.tenant_for(authorization)
        except ApiError as exc:
            response = error_response(exc, self.context.secrets)
            response.headers["www-authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = ApiError(
            404, f"Invalid URL ({request.method} {request.url.path})", type="invalid_request_error"
        )
    elif exc.status_code == 405:
        error = ApiError(405, f"Method {request.method} is not allowed for {request.url.path}")
    else:
        error = ApiError(exc.status_code, str(exc.detail))
    response = JSONResponse(error_body(error), status_code=error.status)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


@api_route
async def list_models(request: Request) -> Response:
    context = context_of(request)
    created = int(context.started)
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "threadline"}
        for name in context.agents.names
    ]
    return JSONResponse({"object": "list", "data": data})


@api_route
async def get_model(request: Request) -> Response:
    context = context_of(request)
    name = request.path_params["model"]
    context.agents.get(name)
    return JSONResponse(
        {"id": name, "object": "model", "created": int(context.started), "owned_by": "threadline"}
    )


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    from ._openapi import openapi_document

    context = context_of(request)
    return JSONResponse(openapi_document(memory=context.memory, auth=context.auth.enabled))


def _routes(memory: bool) -> list[BaseRoute]:
    from . import chat, responses

    routes: list[BaseRoute] = [
        route("/health", GET=health),
        route("/openapi.json", GET=openapi),
        route("/v1/models", GET=list_models),
        route("/v1/models/{model}", GET=get_model),
        *responses.routes(memory),
        *chat.routes(),
    ]
    if memory:
        from . import conversations, extensions

        routes += conversations.routes()
        routes += extensions.routes()
    return routes


def create_app(
    store: SessionStore | str | None = None,
    *,
    agents: Agent[Any] | Sequence[Agent[Any]] | Mapping[str, Agent[Any]] | None = None,
    model: str | Model | None = None,
    instructions: str | None = None,
    memory: bool = True,
    api_keys: Mapping[str, str | None] | None = None,
    limits: Limits | None = None,
    cors_origins: Sequence[str] = (),
    secrets: Sequence[str] = (),
) -> Starlette:
    """The ASGI app of ``threadline serve`` (a Starlette app; run it with any ASGI server).

    * ``store`` — a store or a store URL (opened, set up at start-up and closed at shut-down
      by the app); ``None`` with ``memory=True`` is an in-memory store.
    * ``agents`` — an :class:`~threadline.Agent`, a list of them or a dict of served name →
      agent; a request's ``model`` picks one. ``None`` serves one agent, ``"assistant"``,
      with ``instructions``. Agents without a model get ``model``.
    * ``memory=False`` — a stateless pass-through: no conversation routes, nothing stored;
      ``conversation`` and ``previous_response_id`` are refused.
    * ``api_keys`` — each key → its tenant name (``None``: the key sees every session as it
      is). Without keys there is no authentication (bind to loopback only).
    * ``limits`` — body size, items per request, string length (:class:`Limits`).
    * ``cors_origins`` — origins allowed by CORS (none: CORS stays off).
    * ``secrets`` — strings never to show in a response (the upstream key, for example).
    """
    if not isinstance(memory, bool):
        raise UserError(f"memory must be True or False, got {memory!r}")
    served = ServedAgents(agents, model=model, instructions=instructions)
    owns = isinstance(store, str) or store is None
    opened: Any
    if isinstance(store, str):
        opened = open_store(store)
    elif store is None:
        opened = open_store("memory://") if memory else None
    else:
        opened = store
    if memory and not isinstance(opened, SessionStore):
        raise UserError(f"store must be a session store or a store URL, got {store!r}")
    context = ServerContext(
        store=opened,
        agents=served,
        auth=Auth(api_keys),
        limits=limits or Limits(),
        memory=memory,
        owns_store=owns,
        extra_secrets=tuple(secret for secret in secrets if secret),
        started=time.time(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if memory and context.store is not None:
            await context.store.setup()
        try:
            yield
        finally:
            await context.drain()
            await context.agents.aclose()
            if context.owns_store and context.store is not None:
                await context.store.aclose()

    middleware = [Middleware(_AuthMiddleware, context=context)]
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=[
                    "authorization",
                    "content-type",
                    "x-threadline-lease-wait",
                    "x-threadline-conversation-id",
                    "x-threadline-on-divergence",
                ],
                expose_headers=["x-threadline-conversation-id"],
            ),
        )
    app = Starlette(
        routes=_routes(memory),
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.threadline = context
    return app
