"""The inspector in a real browser: Debian's chromium driven by Playwright for Python.

One browser per test module (``browser``), a fresh page per test (``page``, 1280×800) that
records every request it makes and every script error: a test fails if the page asked for
anything outside the app's origin or threw. ``inspector`` starts two apps on one SQLite file
(read-only and ``--write``) under uvicorn on 127.0.0.1; ``inspector.seed(fn)`` runs
``await fn(store)`` on a store of its own over the same file (in a thread: the sync Playwright
API owns this thread's event loop).

Without chromium or the playwright package the tests skip, saying which is missing; with
``THREADLINE_REQUIRE_SERVICES=1`` (CI) they fail instead.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..services import require_available

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """The system's chromium, if installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_available(False, "the playwright package", "pip install -e '.[dev]'")
        raise
    path = chromium_path()
    require_available(path is not None, "chromium", "apt-get install chromium (Debian)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` in a thread of its own and return (or raise) what it did."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed back to the caller
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@dataclass
class Inspector:
    """The running apps: ``root`` (read-only) and ``write_root`` (``--write``)."""

    db: Path
    root: str = ""
    write_root: str = ""
    servers: list[tuple[Any, threading.Thread]] = field(default_factory=list)

    def seed(self, fn: Callable[[Any], Any]) -> Any:
        from threadline.sessions import open_store

        async def go() -> Any:
            store = open_store(f"sqlite:///{self.db}?synchronous=NORMAL")
            try:
                return await fn(store)
            finally:
                await store.aclose()

        return in_thread(lambda: asyncio.run(go()))


def _start(app: Any) -> tuple[Any, threading.Thread, int]:
    import uvicorn

    class Server(uvicorn.Server):  # type: ignore[misc]
        def install_signal_handlers(self) -> None:
            """A server in a thread leaves the signals alone."""

    server = Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the inspector did not start")
        time.sleep(0.01)
    return server, thread, int(server.servers[0].sockets[0].getsockname()[1])


def summariser() -> Any:
    """The model "compact now" uses in the tests."""
    from threadline.testing import ScriptedModel

    return ScriptedModel(responder=lambda request: "They settled the bridge's city and state.")


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inspector]:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from threadline.server import create_app
    from threadline.server.inspector import enable_inspector

    db = tmp_path_factory.mktemp("inspector") / "inspect.db"
    found = Inspector(db)
    for write in (False, True):
        app = enable_inspector(create_app(f"sqlite:///{db}", model=summariser()), write=write)
        server, thread, port = _start(app)
        found.servers.append((server, thread))
        if write:
            found.write_root = f"http://127.0.0.1:{port}"
        else:
            found.root = f"http://127.0.0.1:{port}"
    yield found
    for server, thread in found.servers:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Watched:
    """A page and what it did: every request's URL, every script error."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    """Origins besides the inspector's two that this test's page may ask."""


@pytest.fixture
def watched(browser: Any, inspector: Inspector) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    found = Watched(page)
    page.on("request", lambda request: found.requests.append(request.url))
    page.on("pageerror", lambda error: found.errors.append(str(error)))

    def console(message: Any) -> None:
        # A refused request is logged by the browser itself; the page reports those in place.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            found.errors.append(message.text)

    page.on("console", console)
    try:
        yield found
    finally:
        context.close()
    origins = tuple(f"{root}/" for root in (inspector.root, inspector.write_root, *found.origins))
    strangers = [
        url
        for url in found.requests
        if not url.startswith(origins) and not url.startswith(("data:", "blob:"))
    ]
    assert strangers == [], f"the page asked for something outside the app: {strangers}"
    assert found.errors == [], f"the page reported errors: {found.errors}"


@pytest.fixture
def page(watched: Watched) -> Any:
    return watched.page
