"""A loopback TCP proxy that cuts a connection right after a request reached the server.

For the worst moment of a dropped connection: the server got the request and carried it out,
the client never sees the answer. ``async with CutProxy(host, port) as proxy`` listens on
``proxy.port`` (127.0.0.1) and forwards every connection to ``host:port``. After
``proxy.arm(marker)``, the first chunk a client sends that holds ``marker`` is forwarded to
the server, nothing the server sends on that connection is forwarded any more, and the
connection is closed on both sides once the server had ``pause`` seconds to act on it.
``proxy.cuts`` counts the connections cut so.
"""

from __future__ import annotations

import asyncio
import contextlib

from ._loopback_proxy import LoopbackProxy

__all__ = ["CutProxy"]


class CutProxy(LoopbackProxy):
    """See the module docstring."""

    def __init__(self, host: str, port: int, *, pause: float = 0.3) -> None:
        super().__init__(host, port)
        self.pause = pause
        self.cuts = 0
        self._marker: bytes | None = None

    def arm(self, marker: bytes) -> None:
        """Cut the next connection whose client sends ``marker`` (once)."""
        self._marker = marker

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_in, server_out = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_out.close()
            self._tasks.discard(task)
            return
        cut = asyncio.Event()

        async def upstream() -> None:
            while data := await client_in.read(65536):
                marker = self._marker
                hit = marker is not None and marker in data
                if hit:
                    self._marker = None
                    cut.set()  # before the server can answer: its answer is never forwarded
                server_out.write(data)
                await server_out.drain()
                if hit:
                    await asyncio.sleep(self.pause)
                    self.cuts += 1
                    return

        async def downstream() -> None:
            while data := await server_in.read(65536):
                if cut.is_set():
                    continue
                client_out.write(data)
                await client_out.drain()

        pumps = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_out, server_out):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
            self._tasks.discard(task)
