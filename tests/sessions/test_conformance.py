"""The shipped conformance suites, run against every backend configuration and spelling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline.sessions import InMemorySession, SQLiteSession
from threadline.sessions.testing import SessionConformance, SessionFactory, StoreConformance

from ..backends import BACKENDS, Backend


def _store_suite(backend: Backend) -> type[StoreConformance]:
    class Suite(StoreConformance):
        @pytest.fixture
        def make_store(self, store_lifespan: Any, tmp_path: Path) -> Any:
            return backend.factory(tmp_path)

        async def corrupt_item(self, store: Any, session_id: str, position: int) -> None:
            if backend.corrupt_item is None:
                await super().corrupt_item(store, session_id, position)
            else:
                await backend.corrupt_item(store, session_id, position)

        async def make_schema_newer(self, store: Any) -> None:
            if backend.make_schema_newer is None:
                await super().make_schema_newer(store)
            else:
                await backend.make_schema_newer(store)

    name = "Test" + "".join(part.title() for part in backend.name.split("-")) + "Store"
    Suite.__name__ = Suite.__qualname__ = name
    return pytestmark_for(Suite, backend)


def pytestmark_for(cls: type[StoreConformance], backend: Backend) -> type[StoreConformance]:
    if backend.marks:
        cls.pytestmark = list(backend.marks)  # type: ignore[attr-defined]
    return cls


for _backend in BACKENDS:
    _suite = _store_suite(_backend)
    globals()[_suite.__name__] = _suite
del _backend, _suite


class TestInMemorySession(SessionConformance):
    """``InMemorySession(id)``: each object has a private store of its own."""

    @pytest.fixture
    def make_session(self) -> SessionFactory:
        return InMemorySession


class TestSQLiteSessionInMemory(SessionConformance):
    """``SQLiteSession(id)``: each handle has its own private ``:memory:`` database."""

    @pytest.fixture
    def make_session(self) -> Iterator[SessionFactory]:
        made: list[SQLiteSession] = []

        def make(session_id: str) -> SQLiteSession:
            session = SQLiteSession(session_id)
            made.append(session)
            return session

        yield make
        for session in made:
            session.close()


class TestSQLiteSessionFile(SessionConformance):
    """``SQLiteSession(id, path)`` on a temporary file (the process-wide store of the file)."""

    @pytest.fixture
    def make_session(self, tmp_path: Path) -> Iterator[SessionFactory]:
        made: list[SQLiteSession] = []

        def make(session_id: str) -> SQLiteSession:
            session = SQLiteSession(session_id, tmp_path / "sessions.db")
            made.append(session)
            return session

        yield make
        for session in made:
            session.close()
