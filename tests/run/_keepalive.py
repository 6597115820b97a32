"""A keep-alive HTTP/1.1 front for the scripted server, as real endpoints behave.

``ScriptedServer`` answers every request with ``Connection: close``, so a client's pool never
keeps a connection and bugs that need a pooled connection (one reused on another event loop)
stay hidden. :class:`KeepAliveFront` forwards each request to the scripted server and answers
with a ``Content-Length`` and no ``Connection: close``, so the client keeps the connection open
between requests. Streamed answers are buffered: the events arrive together, still as events.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from threadline.testing import ScriptedServer

_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FrontServer

    def do_POST(self) -> None:
        self._forward()

    def do_GET(self) -> None:
        self._forward()

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream.port, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            answer_headers = answer.getheaders()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer_headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.served += 1

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


class _FrontServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: ScriptedServer) -> None:
        self.upstream = upstream
        self.served = 0
        self.opened = 0
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
            self.opened += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that reset its connection is not the front's error; anything else is."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.connections.discard(request)
        super().shutdown_request(request)


class KeepAliveFront:
    """Serves ``upstream``'s script on its own port, keeping client connections alive.

    ``connections_opened`` counts the TCP connections clients opened; ``served`` the requests.
    """

    def __init__(self, upstream: ScriptedServer) -> None:
        self._httpd = _FrontServer(upstream)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """The URL to give the openai client: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def served(self) -> int:
        """How many requests were answered."""
        return self._httpd.served

    @property
    def connections_opened(self) -> int:
        """How many TCP connections clients opened."""
        return self._httpd.opened

    def __enter__(self) -> KeepAliveFront:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        with self._httpd.lock:
            open_connections = list(self._httpd.connections)
        for conn in open_connections:  # wake handlers parked on an idle keep-alive connection
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join()
