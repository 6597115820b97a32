"""A database written by the real OpenAI Agents SDK opens with its history (issue 9)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from threadline import Agent, Runner
from threadline.errors import SessionError, UserError
from threadline.sessions import SQLiteSession, SQLiteStore
from threadline.testing import ScriptedModel

TURN = [
    {"role": "user", "content": "What city is the Golden Gate Bridge in?"},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "San Francisco."}],
    },
]


async def _sdk_file(path: Path, **tables: str) -> None:
    from agents import SQLiteSession as SdkSession

    session = SdkSession("user_123", str(path), **tables)
    await session.add_items(TURN)
    other = SdkSession("user_456", str(path), **tables)
    await other.add_items([{"role": "user", "content": "hi"}])
    session.close()
    other.close()


def _tables(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}
    finally:
        conn.close()


async def test_an_sdk_file_is_adopted_on_first_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "conversations.db"
    await _sdk_file(path)
    before = _tables(path)
    with caplog.at_level(logging.WARNING, logger="threadline.sessions"):
        session = SQLiteSession("user_123", path)
        assert await session.get_items() == TURN
    adopted = [r.getMessage() for r in caplog.records if "adopted" in r.getMessage()]
    assert len(adopted) == 1 and "2 sessions (3 items)" in adopted[0]
    agent = Agent(name="A", model=ScriptedModel(["California."]))
    await Runner.run(agent, "What state is it in?", session=session)
    assert len(await session.get_items()) == 4
    listed = await session.store.list_sessions()
    assert sorted(i.session_id for i in listed) == ["user_123", "user_456"]
    session.close()
    after = _tables(path)
    assert {k: after[k] for k in before} == before  # the SDK's tables are untouched
    again = SQLiteSession("user_123", path)  # adopted once: no second copy
    assert len(await again.get_items()) == 4
    again.close()


async def test_the_sdks_table_names_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "custom.db"
    await _sdk_file(path, sessions_table="my_sessions", messages_table="my_messages")
    session = SQLiteSession(
        "user_123", path, sessions_table="my_sessions", messages_table="my_messages"
    )
    assert await session.get_items() == TURN
    session.close()
    with pytest.raises(UserError, match="plain table name"):
        SQLiteSession("x", tmp_path / "y.db", sessions_table="bad; DROP")


async def test_import_sdk_copies_what_is_new(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    store = SQLiteStore(path)
    await store.session("user_123").add_items([{"role": "user", "content": "threadline first"}])
    await store.aclose()
    await _sdk_file(path)  # the SDK writes the same file afterwards
    store = SQLiteStore(path)
    try:
        copied, items, skipped = await store.import_sdk()
        assert (copied, items, skipped) == (1, 1, ["user_123"])
        assert await store.session("user_456").get_items() == [{"role": "user", "content": "hi"}]
        assert await store.import_sdk() == (0, 0, ["user_123", "user_456"])
        with pytest.raises(UserError, match="no OpenAI Agents SDK tables"):
            await store.import_sdk(("nope_sessions", "nope_messages"))
    finally:
        await store.aclose()


async def test_an_item_threadline_cannot_store_stops_the_adoption(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    await _sdk_file(path)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO agent_messages (session_id, message_data) VALUES ('user_123', 'not json')"
    )
    conn.commit()
    conn.close()
    session = SQLiteSession("user_123", path)
    with pytest.raises(SessionError, match=r"not JSON \(session 'user_123', id 4\)"):
        await session.get_items()
    session.close()
    assert "threadline_items" not in _tables(path)  # nothing was created or copied


def test_the_finaliser_still_closes_a_dropped_store(tmp_path: Path) -> None:
    import gc
    import weakref

    store = SQLiteStore(tmp_path / "dropped.db")
    engine: Any = store._engine
    alive = weakref.ref(store)
    del store
    gc.collect()
    assert alive() is None and engine.closed
