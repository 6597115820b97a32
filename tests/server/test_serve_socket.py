"""The socket ``threadline serve`` and ``threadline inspect`` listen on hands out connections with Nagle's algorithm off.

uvicorn writes a response's head and body in separate writes; on a connection with Nagle on,
the body waits for the client's delayed ACK of the head (about 40 ms on Linux) on every
keep-alive request. asyncio turns ``TCP_NODELAY`` on for each accepted connection, but only when
the listening socket says it is TCP (``proto == IPPROTO_TCP``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from threadline.cli import inspect_cmd
from threadline.cli._listen import listen


@pytest.mark.parametrize(
    "bind",
    [lambda: listen("127.0.0.1", 0), lambda: inspect_cmd._bind(0)],
    ids=["serve", "inspect"],
)
async def test_accepted_connections_have_nodelay(bind: Callable[[], socket.socket]) -> None:
    listening = bind()
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(handle, sock=listening)
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        try:
            nodelay = await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert nodelay != 0, "Nagle is on for accepted connections: create the socket with IPPROTO_TCP"
