"""Servers some tests need (PostgreSQL, Redis): reachable, or a skip that names what is missing.

``require_service(name, host, port)`` returns when something accepts TCP connections there.
Otherwise the test is skipped with a reason naming the server, or fails when
``THREADLINE_REQUIRE_SERVICES=1`` (CI sets it: there a missing server is a broken setup, not
a reason to run fewer tests).
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["require_service", "services_required"]

_reachable: dict[tuple[str, int], bool] = {}


def services_required() -> bool:
    """Whether ``THREADLINE_REQUIRE_SERVICES`` asks for every service to be there."""
    return os.environ.get("THREADLINE_REQUIRE_SERVICES", "") not in ("", "0")


def _probe(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, with ``THREADLINE_REQUIRE_SERVICES=1``, fail) unless ``host:port`` answers."""
    key = (host, port)
    if key not in _reachable:
        _reachable[key] = _probe(host, port)
    if _reachable[key]:
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if services_required():
        pytest.fail(f"{reason}, and THREADLINE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{reason} (start it, or set THREADLINE_REQUIRE_SERVICES=1 to make this fail)")
