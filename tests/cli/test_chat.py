"""``threadline chat`` through ``main(argv)``, against the scripted server (piped stdin)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.cli import main
from threadline.testing import ScriptedServer, error, reply


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "chat.db"


def chat(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, db: Path, stdin: str, *extra: str
) -> int:
    monkeypatch.setenv("TEST_KEY", "secret")
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    argv = ["chat", "--db", str(db), "--base-url", server.base_url, "--api-key-env", "TEST_KEY"]
    return main([*argv, "--model", "m", *extra])


def test_chat_streams_and_remembers_across_restarts(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(reply("San Francisco."), reply("California."))
    assert (
        chat(
            monkeypatch, server, db, "What city is the Golden Gate Bridge in?\n", "--session", "s1"
        )
        == 0
    )
    assert chat(monkeypatch, server, db, "What state is it in?\nexit\n", "--session", "s1") == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["San Francisco.", "California."]  # no prompt decoration when piped
    second = server.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert server.requests[0].headers["authorization"] == "Bearer secret"
    assert server.requests[0].body["stream"] is True


def test_new_session_id_is_printed(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(reply("hi"))
    assert chat(monkeypatch, server, db, "hello\n") == 0
    assert "new session: chat-" in capsys.readouterr().err


def test_an_error_is_one_line_and_the_repl_goes_on(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(error(401, "Incorrect API key provided"), reply("Recovered."))
    assert chat(monkeypatch, server, db, "first\nsecond\n", "--session", "e") == 0
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Incorrect API key" in errors[0]
    assert "Traceback" not in captured.err
    assert captured.out.strip() == "Recovered."


def test_slash_commands(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(reply("one"), reply("two"), reply("three"))
    export = tmp_path / "out.jsonl"
    script = "\n".join(
        [
            "first",
            "second",
            "/history",
            "/undo",
            "/history",
            "/fork branch",
            "third",
            "/sessions",
            f"/export {export}",
            "/switch main",
            "/clear",
            "/history",
            "/help",
            "/nope",
            "quit",
            "never sent",
        ]
    )
    assert chat(monkeypatch, server, db, script + "\n", "--session", "main") == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "   4. assistant: two" in out
    assert "removed the last turn (2 items)" in out
    assert "forked to branch" in out
    assert "* branch" in out and "  main" in out
    assert "wrote 4 items" in out
    assert "cleared session main" in out
    assert "(no items)" in out
    assert "/fork NAME" in out  # help
    assert "unknown command /nope" in captured.err
    exported = [json.loads(line) for line in export.read_text().splitlines()]
    assert [i.get("role") for i in exported] == ["user", "assistant", "user", "assistant"]
    assert exported[2]["content"] == "third"
    assert len(server.requests) == 3  # "never sent" came after quit


def test_missing_api_key_variable_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n"))
    code = main(["chat", "--db", str(db), "--api-key-env", "NOT_SET_ANYWHERE"])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "threadline: error: the environment variable NOT_SET_ANYWHERE (from --api-key-env) is not set"
    )


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("chat", "sessions", "demo", "db"):
        assert command in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: threadline" in capsys.readouterr().out


def test_ctrl_c_cancels_the_reply_in_flight_and_keeps_history_valid(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import signal
    import threading

    server.add(reply("too late", delay=2.0), reply("Second answer."))
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        code = chat(monkeypatch, server, db, "first\nsecond\n/history\n", "--session", "c")
    finally:
        timer.cancel()
    assert code == 0
    captured = capsys.readouterr()
    assert "[cancelled]" in captured.err
    assert "too late" not in captured.out
    assert "Second answer." in captured.out
    # the cancelled turn left its question and nothing half-written; the next turn saw it
    assert "   1. user: first" in captured.out
    assert "   2. user: second" in captured.out
    assert "   3. assistant: Second answer." in captured.out


def test_no_model_configured_fails_before_the_repl(
    monkeypatch: pytest.MonkeyPatch, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from threadline.run import model_resolution

    monkeypatch.setattr(model_resolution, "_providers", {})
    monkeypatch.setattr(model_resolution, "_local_provider", lambda: None)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n"))
    assert main(["chat", "--db", str(db)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "OPENAI_API_KEY" in err[0] and "threadline[local]" in err[0]


def test_a_line_that_is_not_utf8_is_skipped_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(reply("Still here."))
    raw = io.TextIOWrapper(io.BytesIO(b"\xff\xfe broken\nhello\n"), encoding="utf-8")
    monkeypatch.setenv("TEST_KEY", "secret")
    monkeypatch.setattr(sys, "stdin", raw)
    argv = ["chat", "--db", str(db), "--base-url", server.base_url, "--api-key-env", "TEST_KEY"]
    assert main([*argv, "--model", "m", "--session", "bytes"]) == 0
    captured = capsys.readouterr()
    assert "not UTF-8 text; it was skipped" in captured.err
    assert "Still here." in captured.out


def test_a_chat_whose_every_turn_failed_exits_1(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(error(401, "Incorrect API key provided"), error(401, "Incorrect API key provided"))
    assert chat(monkeypatch, server, db, "first\nsecond\n", "--session", "f") == 1
    assert capsys.readouterr().err.count("error:") == 2


def test_a_held_session_says_who_holds_it(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio
    import sqlite3
    import time

    from threadline.sessions import SQLiteStore

    store = SQLiteStore(db)
    asyncio.run(store.setup())
    store.close()
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO threadline_leases (session_id, owner, expires_at, epoch) VALUES (?, ?, ?, 1)",
        ("held", "pid 4242 on elsewhere (abc)", time.time() + 1.0),
    )
    conn.commit()
    conn.close()
    server.add(reply("After the wait."))
    assert chat(monkeypatch, server, db, "hello\n", "--session", "held") == 0
    captured = capsys.readouterr()
    assert "held by pid 4242 on elsewhere" in captured.err and "runs out in" in captured.err
    assert "After the wait." in captured.out
