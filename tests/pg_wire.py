"""A loopback TCP proxy that counts a PostgreSQL client's round trips.

``async with RoundTripCounter(host, port) as proxy`` listens on ``proxy.port`` (127.0.0.1)
and forwards every connection to ``host:port`` unchanged, reading the frontend protocol on the
way: after the start-up (an SSL or GSS request, then the startup message, which carry no type
byte), every client message is a type byte and a length. A round trip is a message the client
must wait on the server's answer for: ``Q`` (a simple query) or ``S`` (the Sync that ends an
extended-protocol exchange, whatever number of Parse / Bind / Execute came before it).
``proxy.round_trips`` counts them over every connection; ``proxy.queries`` keeps the simple
queries' text and ``proxy.parsed`` the statements prepared (``P``), in order.

It is driver-agnostic (asyncpg, psycopg and libpq all speak this protocol), so a test can pin
how many times a store waits on the server per operation without patching the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from ._loopback_proxy import LoopbackProxy

__all__ = ["RoundTripCounter"]

_UNTYPED = {80877103, 80877104}  # SSLRequest, GSSENCRequest: another untyped message follows


class RoundTripCounter(LoopbackProxy):
    """See the module docstring."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.round_trips = 0
        self.queries: list[str] = []
        self.parsed: list[str] = []

    def reset(self) -> None:
        """Start counting again from zero."""
        self.round_trips = 0
        self.queries.clear()
        self.parsed.clear()

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_out.close()
            return
        self._track(self._pipe(server_in, client_out))
        self._track(self._client(client_in, server_out, client_out))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    async def _client(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        reply: asyncio.StreamWriter,
    ) -> None:
        try:
            while True:  # start-up: untyped messages
                head = await source.readexactly(8)
                length, code = struct.unpack("!ii", head)
                body = await source.readexactly(length - 8)
                sink.write(head + body)
                await sink.drain()
                if code not in _UNTYPED:
                    break
            while True:
                head = await source.readexactly(5)
                kind = head[:1]
                (length,) = struct.unpack("!i", head[1:])
                body = await source.readexactly(length - 4)
                if kind == b"Q":
                    self.round_trips += 1
                    self.queries.append(body.rstrip(b"\0").decode("utf-8", "replace"))
                elif kind == b"S":
                    self.round_trips += 1
                elif kind == b"P":
                    name_end = body.index(b"\0")
                    text_end = body.index(b"\0", name_end + 1)
                    self.parsed.append(body[name_end + 1 : text_end].decode("utf-8", "replace"))
                sink.write(head + body)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()
            with contextlib.suppress(Exception):
                reply.close()
