"""A stand-in for the local server child process, run as a script by the tests.

It speaks the same protocol as ``threadline.models.local._server`` (one JSON settings line on
stdin, one reply line on stdout, serve until stdin closes) without loading any model.
``argv[1]`` picks the behaviour:

* ``ok``: serve ``/health`` and ``/v1/chat/completions`` (plain and streamed). The reply
  text is ``" Hello there.\\n"`` (whitespace on purpose); every request body is appended to
  the file ``argv[2]`` as one JSON line. Requests without the right bearer key get 401.
* ``slow``: like ``ok`` after a 0.6 s "load".
* ``ctx``: like ``ok``, but a request whose prompt (about four characters a token, plus the
  chat template) and ``max_tokens`` exceed the ``context_size`` it was started with gets
  llama.cpp's HTTP 400 ``exceed_context_size_error``; the usage it reports counts the prompt
  that way.
* ``dense``: like ``ctx`` with a tokenizer that needs a token for every two characters (as
  real ones do for code).
* ``error``: reply with an error and exit 1.
* ``exit``: exit 3 without a reply.
* ``hang``: never reply.

It writes its pid to ``<argv[2]>.pid`` (so tests can check it is gone) and the settings it
was sent to ``<argv[2]>.settings``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "threadline-local-server "
REPLY = " Hello there.\n"
TEMPLATE_TOKENS = 420  # about what the real chat template's preamble and examples take


def _prompt_tokens(body: dict[str, Any], chars_per_token: int = 4) -> int:
    chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
    return TEMPLATE_TOKENS + chars // chars_per_token


def _usage(body: dict[str, Any], mode: str) -> dict[str, int]:
    if mode not in ("ctx", "dense"):
        return {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    prompt = _prompt_tokens(body, 2 if mode == "dense" else 4)
    return {"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3}


def _completion(body: dict[str, Any], mode: str = "ok") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(body, mode),
    }


def _chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def main() -> int:
    mode = sys.argv[1]
    record = sys.argv[2] if len(sys.argv) > 2 else None
    if record:
        with open(record + ".pid", "w") as f:
            f.write(str(os.getpid()))
    settings = json.loads(sys.stdin.readline())
    if record:
        with open(record + ".settings", "w") as f:
            json.dump(settings, f)
    out = sys.stdout
    if mode == "error":
        out.write(PREFIX + json.dumps({"error": "RuntimeError: cannot load the model"}) + "\n")
        out.flush()
        return 1
    if mode == "exit":
        return 3
    if mode == "hang":
        time.sleep(3600)
        return 0
    if mode == "slow":
        time.sleep(0.6)
    key = settings["api_key"]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            if self.headers.get("Authorization") != f"Bearer {key}":
                self._send(401, {"error": {"message": "Invalid API Key", "code": 401}})
                return
            if record:
                with open(record, "a") as f:
                    f.write(json.dumps(body) + "\n")
            n_ctx = int(settings.get("context_size", 8192))
            per_token = 2 if mode == "dense" else 4
            prompt = _prompt_tokens(body, per_token)
            if mode in ("ctx", "dense") and prompt + int(body.get("max_tokens") or 0) > n_ctx:
                message = (
                    f"request ({prompt} tokens) exceeds the available context size "
                    f"({n_ctx} tokens), try increasing it"
                )
                error = {"code": 400, "message": message, "type": "exceed_context_size_error"}
                self._send(400, {"error": {**error, "n_prompt_tokens": prompt, "n_ctx": n_ctx}})
                return
            if not body.get("stream"):
                self._send(200, _completion(body, mode))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in (" ", " Hel", "lo", " there", ".\n", ""):
                self.wfile.write(f"data: {json.dumps(_chunk(piece))}\n\n".encode())
            self.wfile.write(f"data: {json.dumps(_chunk(None, 'stop'))}\n\n".encode())
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {**_chunk(None), "choices": [], "usage": _usage(body, mode)}
                self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    out.write(
        PREFIX + json.dumps({"address": f"http://127.0.0.1:{port}", "pid": os.getpid()}) + "\n"
    )
    out.flush()
    while sys.stdin.read(4096):
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
