"""``--max-history-tokens`` for ``chat`` and ``ask``, and a context overflow as one line."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.cli import main
from threadline.testing import ScriptedServer, raw, reply

LONG = "Tell me more about the towers of the bridge. " * 10


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        srv.responder = lambda request: reply("ok")
        yield srv


def argv(server: ScriptedServer, db: Path, *extra: str) -> list[str]:
    return ["--db", str(db), "--base-url", server.base_url, "--model", "m", *extra]


def test_chat_sends_at_most_the_history_it_is_given(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, tmp_path: Path
) -> None:
    db = tmp_path / "c.db"
    lines = "".join(f"{i}: {LONG}\n" for i in range(12))
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["chat", *argv(server, db, "--session", "s", "--max-history-tokens", "400")]) == 0
    last = server.requests[-1].body["messages"]
    history = [m for m in last if m["role"] != "system"][:-1]
    # N provider tokens; the session's calibration converts them (within a factor of two here)
    assert 0 < sum(len(json.dumps(m)) for m in history) // 4 <= 800
    assert len(history) < 22
    monkeypatch.setattr(sys, "stdin", io.StringIO("again\n"))
    assert main(["chat", *argv(server, db, "--session", "s")]) == 0
    assert len(server.requests[-1].body["messages"]) == 1 + 24 + 1  # no limit: all of it


def test_ask_takes_the_flag_too(
    server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.db"
    for i in range(6):
        assert main(["ask", f"{i}: {LONG}", *argv(server, db, "--session", "s")]) == 0
    assert (
        main(["ask", "last", *argv(server, db, "--session", "s", "--max-history-tokens", "150")])
        == 0
    )
    history = server.requests[-1].body["messages"][1:-1]
    assert 0 < len(history) < 12
    assert capsys.readouterr().out.splitlines()[-1] == "ok"


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_value_is_refused_by_the_parser(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ask", "q", "--max-history-tokens", value])
    assert exited.value.code == 2
    assert "--max-history-tokens" in capsys.readouterr().err


def test_an_overflow_is_one_line_that_names_the_flag(
    server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your "
            "messages resulted in 9000 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    server.add(raw(json.dumps(body), status=400))
    assert main(["ask", "hi", *argv(server, tmp_path / "o.db")]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("threadline: error:")]
    assert len(errors) == 1 and "--max-history-tokens" in errors[0]
    assert "Traceback" not in err
