"""Tests that need a database server: skip when it is missing, or fail in CI.

:func:`require_service` is what such a test (or its fixture) calls once it knows whether the
server answers. With ``THREADLINE_REQUIRE_SERVICES=1`` (``.ci/run`` sets it) an unreachable
server fails the test; elsewhere the test is skipped with a reason that names what is missing
and how to provide it.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["require_service", "services_required"]


def services_required() -> bool:
    """Whether a missing server is a failure (``THREADLINE_REQUIRE_SERVICES=1``)."""
    return os.environ.get("THREADLINE_REQUIRE_SERVICES", "") not in ("", "0")


def require_service(available: bool, what: str, how: str) -> None:
    """Skip (or, when servers are required, fail) the running test unless ``available``.

    ``what`` names the server (``"Redis at 127.0.0.1:6379"``), ``how`` says how to provide it.
    """
    if available:
        return
    message = f"{what} is not reachable: {how}"
    if services_required():
        pytest.fail(f"{message} (THREADLINE_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)
