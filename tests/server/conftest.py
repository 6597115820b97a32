"""A real ``threadline serve`` app under uvicorn on 127.0.0.1, with a scripted upstream.

``serve(**create_app_options)`` starts the app in a thread on a free port and returns a
:class:`Served` with its ``base_url`` and official ``openai`` clients pointed at it; the
default agent's model is the scripted upstream (``upstream``), through the same
``OpenAIProvider`` path the ``--upstream`` flag uses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

from openai import AsyncOpenAI, OpenAI  # noqa: E402

from threadline.models.openai_provider import OpenAIProvider  # noqa: E402
from threadline.server import create_app  # noqa: E402
from threadline.testing.server import ScriptedServer  # noqa: E402

UPSTREAM_KEY = "sk-upstream-secret-0123456789"


@dataclass
class Served:
    """A running app."""

    base_url: str
    app: Any
    api_key: str = "unused"
    _clients: list[Any] = field(default_factory=list)

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``)."""
        return self.base_url.removesuffix("/v1")

    @property
    def context(self) -> Any:
        return self.app.state.threadline

    def client(self, api_key: str | None = None, **options: Any) -> OpenAI:
        client = OpenAI(
            base_url=self.base_url, api_key=api_key or self.api_key, max_retries=0, **options
        )
        self._clients.append(client)
        return client

    def async_client(self, api_key: str | None = None, **options: Any) -> AsyncOpenAI:
        return AsyncOpenAI(
            base_url=self.base_url, api_key=api_key or self.api_key, max_retries=0, **options
        )


class _Server(uvicorn.Server):  # type: ignore[misc,name-defined]
    def install_signal_handlers(self) -> None:
        """A server in a thread leaves the signals alone."""


def _start(app: Any) -> tuple[_Server, threading.Thread, int]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = _Server(config)
    thread = threading.Thread(target=server.run, name="threadline-serve-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, int(port)


@pytest.fixture
def upstream() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'serve.db'}"


_PROVIDERS: list[OpenAIProvider] = []


def upstream_model(server: ScriptedServer, name: str = "upstream-model") -> Any:
    """The model the CLI's ``--upstream URL --model NAME`` makes: from an ``OpenAIProvider``,
    outside any event loop (as at start-up), so its client belongs to the server's loop."""
    provider = OpenAIProvider(api_key=UPSTREAM_KEY, base_url=server.base_url)
    _PROVIDERS.append(provider)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(provider.get_model, name).result()


@pytest.fixture
def serve(upstream: ScriptedServer, store_url: str) -> Iterator[Callable[..., Served]]:
    running: list[tuple[_Server, threading.Thread, Served]] = []

    def start(**options: Any) -> Served:
        options.setdefault("store", store_url)
        if "agents" not in options:
            options.setdefault("model", upstream_model(upstream))
        options.setdefault("secrets", [UPSTREAM_KEY])
        api_key = options.pop("client_key", None)
        app = create_app(**options)
        server, thread, port = _start(app)
        served = Served(base_url=f"http://127.0.0.1:{port}/v1", app=app)
        if api_key is not None:
            served.api_key = api_key
        elif options.get("api_keys"):
            served.api_key = next(iter(options["api_keys"]))
        running.append((server, thread, served))
        return served

    yield start
    for server, thread, served in running:
        for client in served._clients:
            client.close()
        server.should_exit = True
        thread.join(timeout=30)


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh loop (for async-client tests written as sync functions)."""
    return asyncio.run(coro)


@dataclass
class Reply:
    """A raw HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 30,
) -> Reply:
    """One HTTP request with the standard library (no client library in between)."""
    import json
    import urllib.error
    import urllib.request

    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Reply(
                answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
            )
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
