"""Fixtures of the runner tests: stores of every backend configuration (tests/backends.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ..backends import BACKEND_PARAMS, Backend

SessionFactory = Callable[[str], Any]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def open_store(backend: Backend, tmp_path: Path) -> AsyncIterator[Callable[[], Any]]:
    """Opens stores on this test's storage (another one is like another process)."""
    factory = backend.factory(tmp_path)
    opened: list[Any] = []

    def open_one() -> Any:
        opened.append(factory())
        return opened[-1]

    yield open_one
    for each in opened:
        await each.aclose()


@pytest.fixture
def store(open_store: Callable[[], Any]) -> Any:
    return open_store()


@pytest.fixture
def make_session(store: Any) -> SessionFactory:
    return store.session  # type: ignore[no-any-return]
