"""``--verbose`` / ``THREADLINE_LOG=debug``: what was sent, the window chosen, tool calls."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline import Agent, Runner, function_tool
from threadline.cli import main
from threadline.testing import ScriptedModel, ScriptedServer, reply


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def ask(server: ScriptedServer, db: Path, *extra: str) -> int:
    argv = ["ask", "hi", "--db", str(db), "--base-url", server.base_url, "--model", "m"]
    return main([*argv, "--session", "s", *extra])


@pytest.mark.parametrize("switch", ["--verbose", "-v before", "THREADLINE_LOG=debug"])
def test_debug_logs_show_the_request_and_the_window(
    switch: str,
    server: ScriptedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(reply("hello"))
    db = tmp_path / "l.db"
    if switch == "THREADLINE_LOG=debug":
        monkeypatch.setenv("THREADLINE_LOG", "debug")
        assert ask(server, db) == 0
    elif switch == "--verbose":
        assert ask(server, db, "--verbose") == 0
    else:
        argv = ["-v", "ask", "hi", "--db", str(db), "--base-url", server.base_url]
        assert main([*argv, "--model", "m", "--session", "s"]) == 0
    err = capsys.readouterr().err
    assert "threadline: session 's': window of 0 items (max_items=None" in err
    assert f"threadline: POST {server.base_url}" in err and "model=m messages=2" in err
    assert "threadline: answer: message (tokens in" in err


def test_without_the_switch_there_are_no_debug_logs(
    server: ScriptedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("THREADLINE_LOG", raising=False)
    server.add(reply("hello"))
    assert ask(server, tmp_path / "l.db") == 0
    assert "POST" not in capsys.readouterr().err


def test_tool_calls_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    @function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    call = {
        "type": "function_call",
        "call_id": "call_1",
        "name": "weather",
        "arguments": '{"city": "Paris"}',
    }
    model = ScriptedModel([[call], "It is sunny."])
    agent = Agent(name="A", model=model, tools=[weather])
    with caplog.at_level(logging.DEBUG, logger="threadline.run"):
        assert Runner.run_sync(agent, "weather?").final_output == "It is sunny."
    messages = [r.getMessage() for r in caplog.records if r.name == "threadline.run"]
    assert any(m.startswith('threadline: tool call weather({"city": "Paris"})') for m in messages)
    assert "threadline: tool weather returned sunny in Paris" in messages


def test_an_unknown_log_level_is_said_not_ignored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("THREADLINE_LOG", "loud")
    assert main(["db", "migrate", "--db", str(tmp_path / "x.db")]) == 0
    err = capsys.readouterr().err
    assert "THREADLINE_LOG='loud' is not a log level" in err


def test_main_leaves_the_threadline_logger_as_it_found_it(tmp_path: Path) -> None:
    root = logging.getLogger("threadline")
    before = (list(root.handlers), root.level)
    assert main(["db", "migrate", "--db", str(tmp_path / "x.db"), "-v"]) == 0
    assert (list(root.handlers), root.level) == before
