"""The listening socket of ``threadline serve`` and ``threadline inspect``."""

from __future__ import annotations

import socket

from ..errors import UserError

__all__ = ["listen"]


def listen(host: str, port: int, *, hint: str = "") -> socket.socket:
    """A TCP socket listening on ``host:port`` (``port`` 0: any free port), for uvicorn.

    Made with ``IPPROTO_TCP``, not 0: asyncio sets ``TCP_NODELAY`` on accepted connections only
    when the listening socket says TCP, and without it every keep-alive response waits for the
    client's delayed ACK (~40 ms). A port that cannot be bound is a :class:`UserError` (with
    ``hint`` appended to its message).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
