"""Shared pieces for the real-client tests of ``threadline serve`` (Node, the Agents SDK, schemathesis).

* :func:`echo_responder` answers every upstream request with ``echo: <newest user text>``, so a
  reply names the turn it answers and the test can see which request carried what history.
* :func:`requests_for` finds the upstream requests whose newest user text holds a marker.
* :class:`UvicornThread` serves an ASGI app on a free loopback port in a daemon thread (the socket
  is bound before uvicorn starts, so there is no port race).
* :func:`served_cli` runs ``threadline serve`` in a subprocess and waits until it answers.
* :func:`build_app` makes the app over a store URL with its default agent on an upstream.
* :func:`serve_scripted` puts it all together: an echoing scripted upstream, a SQLite file
  store, the app under uvicorn here or ``threadline serve`` in a subprocess; yields a
  :class:`Served`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadline.testing.server import RecordedRequest, ScriptedServer, ServerStep, reply

__all__ = [
    "MODEL",
    "UPSTREAM_MODEL",
    "Served",
    "UvicornThread",
    "build_app",
    "echo_responder",
    "free_port",
    "last_user_text",
    "published_openapi",
    "requests_for",
    "serve_scripted",
    "served_cli",
    "upstream_messages",
]

MODEL = "assistant"
"""The name the served default agent answers to (``model=`` in client requests)."""

UPSTREAM_MODEL = "scripted-upstream"
"""The model name the server sends upstream (``--model``)."""


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def upstream_messages(record: RecordedRequest) -> list[dict[str, Any]]:
    """The conversation an upstream request carried, as ``{"role", "text"}`` dicts in order.

    Chat-completions ``messages`` and Responses ``input`` (a string or a list of items) both
    come out the same way; items without a role (function calls and outputs) keep their type.
    """
    body = record.body
    raw: object = body.get("messages") if "messages" in body else body.get("input")
    if isinstance(raw, str):
        return [{"role": "user", "text": raw}]
    out: list[dict[str, Any]] = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, Mapping):
            continue
        role = entry.get("role") or entry.get("type")
        out.append({"role": role, "text": _text(entry.get("content"))})
    return out


def last_user_text(record: RecordedRequest) -> str:
    """The newest user text in an upstream request ("" when it has none)."""
    for message in reversed(upstream_messages(record)):
        if message["role"] == "user":
            return str(message["text"])
    return ""


def echo_responder(record: RecordedRequest) -> ServerStep:
    """Answer any request with ``echo: <newest user text>``."""
    return reply(f"echo: {last_user_text(record)}")


def requests_for(server: ScriptedServer, marker: str) -> list[RecordedRequest]:
    """The upstream requests whose newest user text contains ``marker``, in arrival order."""
    return [r for r in list(server.requests) if marker in last_user_text(r)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a subprocess to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_app(store_url: str, upstream_url: str, *, memory: bool = True) -> Any:
    """The ``threadline serve`` ASGI app over ``store_url``, its default agent on ``upstream_url``.

    The model comes from an ``OpenAIProvider``, as ``--upstream URL --model NAME`` makes it.
    """
    from threadline.models.openai_provider import OpenAIProvider
    from threadline.server import create_app

    provider = OpenAIProvider(api_key="upstream-test-key", base_url=upstream_url)
    return create_app(
        store=store_url,
        model=provider.get_model(UPSTREAM_MODEL),
        memory=memory,
        secrets=["upstream-test-key"],
    )


def published_openapi() -> dict[str, Any]:
    """The OpenAPI document the app publishes at ``GET /openapi.json`` (read in process)."""
    import schemathesis

    app = build_app("memory://", "http://127.0.0.1:9/v1")
    document: dict[str, Any] = schemathesis.openapi.from_asgi("/openapi.json", app).raw_schema
    return document


class UvicornThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def __enter__(self) -> UvicornThread:
        import uvicorn

        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="auto", ws="none", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start the threadline app (see the log above)")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=20)
        self._sock.close()


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"threadline serve exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/openapi.json", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if not with that route
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"threadline serve did not answer at {url} within 60 s:\n{log.read_text()}")


@contextlib.contextmanager
def served_cli(
    store_url: str,
    upstream_url: str,
    log: Path,
    *,
    memory: bool = True,
    extra: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run ``threadline serve`` on a free port; yields its ``http://127.0.0.1:PORT`` URL.

    Its output goes to ``log``; the process is terminated (then killed) on exit.
    """
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "threadline.cli",
        "serve",
        "--store",
        store_url,
        "--upstream",
        upstream_url,
        "--upstream-key-env",
        "THREADLINE_TEST_UPSTREAM_KEY",
        "--model",
        UPSTREAM_MODEL,
        "--port",
        str(port),
        *(() if memory else ("--no-memory",)),
        *extra,
    ]
    child_env = {**os.environ, "THREADLINE_TEST_UPSTREAM_KEY": "upstream-test-key", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Served:
    """A running ``threadline serve`` over a SQLite file, with a scripted upstream."""

    url: str
    """``http://127.0.0.1:PORT``"""
    store_url: str
    db_path: Path
    upstream: ScriptedServer
    log: Path

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"


@contextlib.contextmanager
def serve_scripted(directory: Path, *, memory: bool = True, cli: bool = False) -> Iterator[Served]:
    """The server on ``directory/serve.db`` with an echoing scripted upstream.

    In this process under uvicorn (:class:`UvicornThread`), or with ``cli`` as
    ``threadline serve`` in a subprocess.
    """
    db_path = directory / "serve.db"
    store_url = f"sqlite:///{db_path}"
    log = directory / "serve.log"
    with ScriptedServer() as upstream:
        upstream.responder = echo_responder
        if cli:
            with served_cli(store_url, upstream.base_url, log, memory=memory) as url:
                yield Served(url, store_url, db_path, upstream, log)
        else:
            log.write_text("(served in the test process: its log is the test's output)\n")
            with UvicornThread(build_app(store_url, upstream.base_url, memory=memory)) as served:
                yield Served(served.url, store_url, db_path, upstream, log)
