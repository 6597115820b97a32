"""``threadline chat --compact-at`` / ``/compact`` against the scripted server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.sessions import SQLiteStore, read_summary
from threadline.testing import ScriptedServer, reply

from .test_chat import chat

WORDS = "word " * 60


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def summary_of(db: Path, session_id: str) -> object:
    async def read() -> object:
        store = SQLiteStore(db)
        try:
            return await read_summary(store.session(session_id))
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_chat_prints_one_line_when_it_compacts(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "chat.db"
    # per turn ~200 tokens: the third turn passes 500, and the model then writes the summary
    server.add(*(reply(f"answer {i}: {WORDS}") for i in range(3)), reply("They talked."))
    server.add(reply("last answer"))
    lines = "".join(f"question {i}: {WORDS}\n" for i in range(4))
    assert chat(monkeypatch, server, db, lines, "--session", "s", "--compact-at", "500") == 0
    captured = capsys.readouterr()
    notices = [line for line in captured.err.splitlines() if line.startswith("· compacted")]
    assert len(notices) == 1 and "into the summary" in notices[0]
    assert captured.out.splitlines()[-1] == "last answer"
    assert "They talked." in str(server.requests[4].body["messages"])  # the next turn sends it
    summary = summary_of(db, "s")
    assert summary is not None and summary.text == "They talked."


def test_slash_compact_compacts_now(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "chat.db"
    server.add(*(reply(f"answer {i}: {WORDS}") for i in range(3)), reply("Three questions."))
    lines = "".join(f"question {i}: {WORDS}\n" for i in range(3)) + "/compact\n"
    assert chat(monkeypatch, server, db, lines, "--session", "s") == 0
    out = capsys.readouterr().out
    assert "compacted items 0-" in out
    assert summary_of(db, "s").text == "Three questions."


def test_a_bad_compact_at_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        chat(monkeypatch, server, tmp_path / "c.db", "", "--compact-at", "0")
    assert "expected a number of tokens >= 1" in capsys.readouterr().err
    monkeypatch.setenv("THREADLINE_COMPACT_AT", "lots")
    assert chat(monkeypatch, server, tmp_path / "c.db", "hi\n") != 0
    assert "THREADLINE_COMPACT_AT must be a number" in capsys.readouterr().err
