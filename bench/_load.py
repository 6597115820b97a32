"""A small HTTP/1.1 keep-alive client on bare asyncio streams, for ``bench/serve.py``.

One :class:`Connection` per simulated client; a request is one write and a read of the status
line, the headers and a ``Content-Length`` or chunked body. Nothing is validated beyond the
status and the JSON of the body, so the load generator spends little of the shared CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class HTTPError(RuntimeError):
    """A response with a status other than 2xx."""


class Connection:
    """A keep-alive connection to ``127.0.0.1:port``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=1 << 22
        )

    async def close(self) -> None:
        """Close the connection (a no-op when closed)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body (raises :class:`HTTPError` on non-2xx)."""
        if self._writer is None:
            await self._open()
        assert self._reader is not None and self._writer is not None
        body = b"" if payload is None else json.dumps(payload).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Authorization: Bearer bench\r\n{extra}\r\n"
        ).encode()
        self._writer.write(head + body)
        status, response_headers = await self._read_head()
        data = await self._read_body(response_headers)
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
        if not 200 <= status < 300:
            raise HTTPError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        assert self._reader is not None
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def _read_body(self, headers: dict[str, str]) -> bytes:
        assert self._reader is not None
        if "content-length" in headers:
            return await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self._reader.readuntil(b"\r\n")
                    return b"".join(parts)
                parts.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
        return await self._reader.read()
