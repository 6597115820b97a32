"""The web inspector on a ``threadline serve`` app: :func:`enable_inspector`.

The page (``/ui/``) is static HTML, CSS and JavaScript modules shipped inside the package
(``threadline/server/ui``); it loads nothing from anywhere else and talks only to the app's
own routes (:mod:`threadline.server.inspect_api`), sending the API key it is given as
``Authorization: Bearer``. Its files are public (they hold no data), so they are served before
authentication; every response carries a strict Content-Security-Policy (scripts, styles and
requests from the app's origin only, no inline script or style, no frames, no plugins).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import UserError
from ._inspect_http import InspectorSettings

__all__ = ["CONTENT_SECURITY_POLICY", "UI_PATH", "enable_inspector", "ui_files"]

UI_PATH = "/ui"
"""Where the page is served."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)
"""The policy of every ``/ui`` response."""

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class _File:
    body: bytes
    content_type: str


def ui_files() -> dict[str, bytes]:
    """The page's files by path below ``/ui/`` (``index.html``, ``js/app.js``, …)."""
    root = resources.files("threadline.server") / "ui"
    found: dict[str, bytes] = {}

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                walk(entry, name + "/")
            elif not entry.name.startswith("."):
                found[name] = entry.read_bytes()

    walk(root, "")
    return found


def _headers(content_type: str, length: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode()),
        (b"content-length", str(length).encode()),
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"cache-control", b"no-cache"),
    ]


class _UiMiddleware:
    """Serve ``/ui`` (GET and HEAD) from the packaged files; pass everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.files = {
            path: _File(
                body,
                _TYPES.get("." + path.rsplit(".", 1)[-1], "")
                or mimetypes.guess_type(path)[0]
                or "application/octet-stream",
            )
            for path, body in ui_files().items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path in ("", "/", UI_PATH):
            if path != "" and scope["method"] in ("GET", "HEAD"):
                await self._send(send, 307, b"", "text/plain", [(b"location", b"/ui/")])
                return
        elif path.startswith(UI_PATH + "/"):
            await self._serve(scope, send, path[len(UI_PATH) + 1 :] or "index.html")
            return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, send: Send, name: str) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await self._send(
                send, 405, b"Method Not Allowed", "text/plain", [(b"allow", b"GET, HEAD")]
            )
            return
        found = self.files.get(name)
        if found is None:
            await self._send(send, 404, b"Not Found", "text/plain")
            return
        body = b"" if scope["method"] == "HEAD" else found.body
        await self._send(send, 200, body, found.content_type, length=len(found.body))

    async def _send(
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: str,
        extra: list[tuple[bytes, bytes]] | None = None,
        length: int | None = None,
    ) -> None:
        headers = _headers(content_type, len(body) if length is None else length) + (extra or [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def enable_inspector(app: Starlette, *, write: bool = False, ui: bool = True) -> Starlette:
    """Turn on the inspector of an app made by :func:`~threadline.server.create_app`
    (before it starts serving): ``ui`` serves the page at ``/ui/`` (and redirects ``/`` to
    it); ``write`` lets the inspector's routes change sessions (otherwise they answer 403).
    Returns ``app``.
    """
    if not isinstance(write, bool) or not isinstance(ui, bool):
        raise UserError("enable_inspector: write and ui must be True or False")
    if app.middleware_stack is not None:
        raise UserError("enable_inspector: call it before the app starts serving")
    app.state.threadline_inspector = InspectorSettings(write=write, ui=ui)
    if ui:
        app.user_middleware.insert(0, Middleware(_UiMiddleware))
    return app
