"""The shipped conformance suite, run against every threadline backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.sessions import InMemorySession, SQLiteSession, SQLiteStore
from threadline.sessions.testing import SessionConformance, SessionFactory


class TestInMemorySession(SessionConformance):
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


class TestSQLiteStoreInMemory(SessionConformance):
    """Handles of one shared ``:memory:`` store."""

    @pytest.fixture
    def make_session(self) -> Iterator[SessionFactory]:
        store = SQLiteStore(":memory:")
        yield store.session
        store.close()


class TestSQLiteSessionFile(SessionConformance):
    """``SQLiteSession(id, path)`` on a temporary file (durable ``synchronous=FULL``)."""

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
