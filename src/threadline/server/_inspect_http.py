"""Request helpers of the inspector's routes: its settings on the app, the write switch, the
session a request names (``?id=``, scoped to the request's tenant), query numbers.

Sessions are named by a query parameter rather than a path segment so that any session id
works, ``/`` included (a path segment is decoded before routing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..sessions.base import SessionInfo
from ._context import context_of, conversation_session_id, tenant_of
from ._errors import ApiError, bad_request, not_found
from ._ids import is_chain

__all__ = [
    "InspectorSettings",
    "Target",
    "query_int",
    "require_write",
    "settings_of",
    "target",
    "visible_of",
]


@dataclass(frozen=True)
class InspectorSettings:
    """How an app serves the inspector: ``write`` enables the routes that change a session;
    ``ui`` serves the web page at ``/ui``."""

    write: bool = False
    ui: bool = False


def settings_of(request: Request) -> InspectorSettings:
    """The app's inspector settings (read-only, no page, unless the app enabled them)."""
    found = getattr(request.app.state, "threadline_inspector", None)
    return found if isinstance(found, InspectorSettings) else InspectorSettings()


def require_write(request: Request) -> None:
    """A 403 ``read_only`` unless the app was started with writes enabled."""
    if not settings_of(request).write:
        raise ApiError(
            403,
            "this inspector is read-only: restart it with --write (threadline inspect --write, "
            "or threadline serve --ui --write) to change sessions",
            code="read_only",
        )


def visible_of(request: Request) -> Any:
    """A function: session id → the id this request's tenant knows it by, or ``None`` when
    the session is not the tenant's (or is a hidden response chain)."""
    tenant = tenant_of(request)

    def visible(session_id: str) -> str | None:
        found = tenant.visible_id(session_id)
        return None if found is None or is_chain(found) else found

    return visible


@dataclass(frozen=True)
class Target:
    """The session a request names: its visible id, session id, and listing entry."""

    visible_id: str
    session_id: str
    info: SessionInfo


async def target(request: Request, param: str = "id") -> Target:
    """The tenant's session named by the query parameter ``param`` (400 without it, 404 when
    there is no such session)."""
    visible_id = request.query_params.get(param)
    if not visible_id:
        raise bad_request(f"Missing required query parameter: '{param}'.", param=param)
    session_id = conversation_session_id(request, visible_id)
    info = await context_of(request).store.session_info(session_id)
    if info is None:
        raise not_found(f"No session found with id '{visible_id}'.", param=param)
    return Target(visible_id, session_id, info)


def query_int(
    request: Request, name: str, default: int | None, low: int = 0, high: int | None = None
) -> int | None:
    """The integer query parameter ``name`` within ``[low, high]`` (``default`` when absent)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise bad_request(f"Invalid '{name}': an integer {bound} expected, got {raw!r}.", name)
    return value
