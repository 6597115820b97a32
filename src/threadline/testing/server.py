"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests.

Tests queue what the "model" answers, point the real ``openai`` client at ``server.base_url``
and inspect what was sent::

    from threadline.testing.server import ScriptedServer, reply, tool_calls, error

    with ScriptedServer() as server:
        server.add(tool_calls(("get_weather", {"city": "Tokyo"})), reply("Sunny in Tokyo"))
        client = AsyncOpenAI(api_key="test", base_url=server.base_url)
        ...
        assert server.requests[0].body["model"] == "gpt-4.1-mini"

It answers ``POST /v1/chat/completions`` and ``POST /v1/responses``, with and without
``"stream": true``. Each request consumes one queued step, first in first out; when the queue is
empty, ``server.responder`` (if set) makes one, else the request fails with HTTP 500 saying the
script ran out. Besides healthy answers (``reply``, ``tool_calls``) and HTTP errors (``error``),
a step can misbehave on purpose: ``cut_off`` stops a stream mid-answer and ``raw`` sends any
body at all. Only the standard library is used; the server runs in a daemon thread.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from threadline.errors import UserError
from threadline.testing._steps import (
    STEP_TYPES,
    RecordedRequest,
    Responder,
    ScriptedCompletion,
    ScriptedCutOff,
    ScriptedError,
    ScriptedRaw,
    ServerStep,
    cut_off,
    error,
    raw,
    reply,
    tool_calls,
)
from threadline.testing._wire import (
    Answer,
    calls_tokens,
    chat_chunks,
    chat_completion,
    count_tokens,
    encode_sse,
    error_body,
    response_events,
    response_object,
)

__all__ = [
    "RecordedRequest",
    "Responder",
    "ScriptedCompletion",
    "ScriptedCutOff",
    "ScriptedError",
    "ScriptedRaw",
    "ScriptedServer",
    "ServerStep",
    "cut_off",
    "error",
    "raw",
    "reply",
    "tool_calls",
]

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"


_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_POST(self) -> None:
        self.server.script._handle(self)

    def do_GET(self) -> None:
        self.server.script._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read ``server.requests`` instead of a log."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: ScriptedServer) -> None:
        self.script = script
        super().__init__(("127.0.0.1", 0), _Handler)


class ScriptedServer:
    """An OpenAI-compatible HTTP server that answers from a queue of scripted steps.

    Use it as a context manager (sync or async) or call :meth:`start` and :meth:`stop`.
    ``requests`` lists every request received; ``responder`` answers when the queue is empty.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.responder: Responder | None = None
        self._queue: deque[ServerStep] = deque()
        self._lock = threading.Lock()
        self._keys = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ScriptedServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            raise UserError("this ScriptedServer is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ScriptedServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; delayed answers still sleeping are abandoned."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedServer:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._httpd is None:
            raise UserError("the ScriptedServer is not running: call start() or use 'with'")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give the openai client: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # --- script ------------------------------------------------------------------------------

    def add(self, *steps: ServerStep) -> None:
        """Queue steps; each request consumes the oldest one."""
        for index, step in enumerate(steps):
            if not isinstance(step, STEP_TYPES):
                raise UserError(
                    f"ScriptedServer.add() step {index} must come from reply(), tool_calls(), "
                    f"error(), cut_off() or raw(), got {type(step).__name__}"
                )
        with self._lock:
            self._queue.extend(steps)

    @property
    def pending(self) -> int:
        """How many queued steps have not been used yet."""
        with self._lock:
            return len(self._queue)

    # --- request handling (runs in the server's threads) --------------------------------------

    def _handle(self, handler: _Handler) -> None:
        handler.close_connection = True
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"_raw": body}
        record = RecordedRequest(
            path=path, body=body, headers={k.lower(): v for k, v in handler.headers.items()}
        )
        with self._lock:
            self.requests.append(record)
        # A client that gave up (a timeout test) has nothing left to be told.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(handler, record)

    def _answer(self, handler: _Handler, record: RecordedRequest) -> None:
        if handler.command != "POST" or record.path not in (CHAT_PATH, RESPONSES_PATH):
            message = f"ScriptedServer serves POST {CHAT_PATH} and {RESPONSES_PATH} only"
            self._send_json(handler, 404, error_body(message, error_type="not_found_error"))
            return
        try:
            step = self._next_step(record)
        except Exception as exc:
            message = f"ScriptedServer: the responder raised {type(exc).__name__}: {exc}"
            self._send_json(
                handler, 500, error_body(message, error_type="server_error"), final=True
            )
            return
        if step is None:
            message = (
                f"ScriptedServer: the script ran out at request {len(self.requests)} "
                f"({record.path}); queue more steps with server.add(...) or set server.responder"
            )
            self._send_json(
                handler, 500, error_body(message, error_type="server_error"), final=True
            )
            return
        if step.delay > 0 and self._stopping.wait(step.delay):
            return
        if isinstance(step, ScriptedError):
            self._send_error(handler, step)
        elif isinstance(step, ScriptedRaw):
            self._send_raw(handler, step)
        elif isinstance(step, ScriptedCutOff):
            body = self._body(record, step.completion)
            if isinstance(body, dict):
                data = json.dumps(body).encode()[: step.after]
                self._send_cut_json(handler, data, chunked=step.chunked)
            else:
                self._send_sse(handler, body[: step.after], chunked=step.chunked, complete=False)
        else:
            body = self._body(record, step)
            if isinstance(body, dict):
                self._send_json(handler, 200, body)
            else:
                self._send_sse(handler, body)

    def _body(
        self, record: RecordedRequest, step: ScriptedCompletion
    ) -> dict[str, Any] | list[bytes]:
        """What a healthy endpoint sends for ``step``: a JSON body, or a list of SSE events."""
        answer = self._make_answer(record, step)
        streaming = record.body.get("stream") is True
        if record.path == CHAT_PATH and not streaming:
            return chat_completion(answer)
        if record.path == CHAT_PATH:
            options = record.body.get("stream_options") or {}
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            events = [encode_sse(c) for c in chat_chunks(answer, include_usage=include_usage)]
            return [*events, encode_sse("[DONE]")]
        if not streaming:
            return response_object(answer, record.body)
        return [
            encode_sse(event, event=event["type"]) for event in response_events(answer, record.body)
        ]

    def _next_step(self, record: RecordedRequest) -> ServerStep | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            responder = self.responder
        if responder is None:
            return None
        step = responder(record)
        if not isinstance(step, STEP_TYPES):
            raise TypeError(f"responder returned {type(step).__name__}, not a script step")
        return step

    def _make_answer(self, record: RecordedRequest, step: ScriptedCompletion) -> Answer:
        body = record.body
        if step.usage is not None:
            input_tokens, output_tokens = step.usage
        else:
            prompt: Iterable[object] = (
                [body.get("messages")]
                if record.path == CHAT_PATH
                else [body.get("instructions"), body.get("input")]
            )
            input_tokens = max(1, sum(count_tokens(part) for part in prompt))
            output_tokens = max(1, count_tokens(step.text or "") + calls_tokens(step.calls))
        model = body.get("model")
        return Answer(
            key=str(next(self._keys)),
            model=model if isinstance(model, str) else "scripted",
            text=step.text,
            calls=step.calls,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )

    @staticmethod
    def _send_json(
        handler: _Handler, status: int, payload: Mapping[str, Any], *, final: bool = False
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        if final:
            # A broken script must fail at once, not after the client's retries.
            handler.send_header("x-should-retry", "false")
        handler.end_headers()
        handler.wfile.write(data)

    @classmethod
    def _send_error(cls, handler: _Handler, step: ScriptedError) -> None:
        error_type, code = _ERROR_TYPES.get(
            step.status, ("server_error" if step.status >= 500 else "invalid_request_error", None)
        )
        data = json.dumps(error_body(step.message, error_type=error_type, code=code)).encode()
        handler.send_response(step.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        if step.retry_after is not None:
            millis = max(1, round(step.retry_after * 1000))
            handler.send_header("retry-after-ms", str(millis))
            handler.send_header("retry-after", str(math.ceil(step.retry_after)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _send_raw(handler: _Handler, step: ScriptedRaw) -> None:
        handler.send_response(step.status)
        handler.send_header("Content-Type", step.content_type)
        handler.send_header("Content-Length", str(len(step.body)))
        handler.send_header("Connection", "close")
        handler.send_header("x-should-retry", "false")
        handler.end_headers()
        handler.wfile.write(step.body)

    @staticmethod
    def _send_cut_json(handler: _Handler, data: bytes, *, chunked: bool) -> None:
        """A JSON body that stops after ``data``: no length (or no last chunk); then close."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked and data else data)

    @staticmethod
    def _send_sse(
        handler: _Handler, events: list[bytes], *, chunked: bool = False, complete: bool = True
    ) -> None:
        """Send ``events``; chunked and not ``complete``, the closing zero-length chunk is left out."""
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for event in events:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
            handler.wfile.flush()
        if chunked and complete:
            handler.wfile.write(b"0\r\n\r\n")
