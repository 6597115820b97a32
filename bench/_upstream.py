"""A zero-latency OpenAI-compatible upstream for ``bench/serve.py``, in its own process.

    python bench/_upstream.py PORT_FILE              # the bare asyncio upstream
    python bench/_upstream.py --scripted PORT_FILE   # threadline.testing.ScriptedServer instead

Binds a free port on 127.0.0.1, writes it to PORT_FILE, and answers every
``POST …/chat/completions`` (and ``…/responses``) at once with one short assistant message, over
HTTP/1.1 keep-alive, on a bare asyncio protocol: the per-request cost is a header scan and a
``json.dumps``, so the server under test, not the upstream, is what the benchmark measures.
(``threadline.testing.ScriptedServer`` answers the same bodies but opens a thread and closes the
connection per request; ``bench/serve.py --upstream scripted`` measures with it instead.)
Bodies come from :mod:`threadline.testing._wire`, the ones the scripted server sends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from threadline.testing._wire import Answer, chat_completion, response_object

REPLY = "Noted."
_keys = itertools.count(1)


def _body(path: bytes, request: bytes) -> bytes:
    answer = Answer(
        key=str(next(_keys)),
        model="bench-upstream",
        text=REPLY,
        calls=(),
        input_tokens=max(1, len(request) // 4),
        output_tokens=1,
    )
    payload: dict[str, Any]
    if path.endswith(b"/responses"):
        payload = response_object(answer, {})
    else:
        payload = chat_completion(answer)
    return json.dumps(payload).encode()


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            body = bytes(self._buffer[end + 4 : total])
            del self._buffer[:total]
            self._answer(head.split(b" ", 2)[1], body)

    def _answer(self, path: bytes, body: bytes) -> None:
        assert self._transport is not None
        if b'"stream":true' in body.replace(b" ", b""):
            data = b'{"error":{"message":"the bench upstream does not stream","type":"invalid_request_error","param":null,"code":null}}'
            status = b"400 Bad Request"
        else:
            data, status = _body(path.split(b"?", 1)[0], body), b"200 OK"
        self._transport.write(
            b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: keep-alive\r\n\r\n%s" % (status, len(data), data)
        )


async def _serve(port_file: Path) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    port_file.write_text(str(port))  # noqa: ASYNC240 (once, before serving)
    async with server:
        await server.serve_forever()


def _serve_scripted(port_file: Path) -> None:
    import threading

    from threadline.testing.server import ScriptedServer, reply

    with ScriptedServer() as server:
        server.responder = lambda record: reply(REPLY)
        port_file.write_text(str(server.port))
        threading.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "--scripted":
        _serve_scripted(Path(sys.argv[2]))
    else:
        asyncio.run(_serve(Path(sys.argv[1])))
