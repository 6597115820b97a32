"""Replies rendered as Markdown on a terminal (rich), raw text when piped or with ``--plain``,
plain text when rich is missing; and ``/usage`` in the chat."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.cli import main
from threadline.cli._reply import MarkdownReply, PlainReply, choose_renderer
from threadline.testing import ScriptedServer, reply

ANSWER = "# Towers\n\nThe towers are **227 m** tall.\n\n```python\nprint('hi')\n```"


class Terminal(io.StringIO):
    """Standard output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def colour_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same terminal settings wherever the tests run."""
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        srv.responder = lambda request: reply(ANSWER)
        yield srv


def run(server: ScriptedServer, tmp_path: Path, *args: str) -> int:
    argv = ["--db", str(tmp_path / "r.db"), "--base-url", server.base_url, "--model", "m"]
    return main([*args, *argv])


def test_ask_renders_markdown_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, tmp_path: Path
) -> None:
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    assert run(server, tmp_path, "ask", "How tall?") == 0
    text = out.getvalue()
    assert "\x1b[" in text  # styled
    assert "**227 m**" not in text and "```" not in text and "# Towers" not in text
    assert "227 m" in text and "print" in text and "Towers" in text


def test_plain_keeps_the_raw_text_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, tmp_path: Path
) -> None:
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    assert run(server, tmp_path, "ask", "How tall?", "--plain") == 0
    assert out.getvalue() == ANSWER + "\n"


def test_a_pipe_gets_the_raw_text(
    server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(server, tmp_path, "ask", "How tall?") == 0
    assert capsys.readouterr().out == ANSWER + "\n"


def test_chat_streams_markdown_on_a_terminal_and_raw_text_with_plain(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, tmp_path: Path
) -> None:
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stdin", io.StringIO("How tall?\n"))
    assert run(server, tmp_path, "chat", "--session", "s") == 0
    assert "\x1b[" in out.getvalue() and "**227 m**" not in out.getvalue()
    plain = Terminal()
    monkeypatch.setattr(sys, "stdout", plain)
    monkeypatch.setattr(sys, "stdin", io.StringIO("And wide?\n"))
    assert run(server, tmp_path, "chat", "--session", "s", "--plain") == 0
    assert plain.getvalue() == ANSWER + "\n"


def test_a_dumb_terminal_gets_the_raw_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(choose_renderer(Terminal()), PlainReply)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(choose_renderer(Terminal()), MarkdownReply)


def test_without_rich_replies_are_plain_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "rich" or n.startswith("rich.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "rich", None)
    out = Terminal()
    renderer = choose_renderer(out)
    assert isinstance(renderer, PlainReply)
    renderer.show(ANSWER)
    assert out.getvalue() == ANSWER + "\n"


def test_the_markdown_renderer_streams_then_prints_the_whole_reply() -> None:
    out = io.StringIO()
    renderer = MarkdownReply(out, force_terminal=True)
    renderer.start()
    for piece in ("The **tow", "ers** are ", "tall."):
        renderer.feed(piece)
    renderer.finish(None)
    printed = out.getvalue().rsplit("\x1b[?25h", 1)[-1]  # after the live view ended
    assert "\x1b[1mtowers\x1b[0m are tall." in printed  # bold, the markers gone
    assert renderer._live is None


def test_a_cancelled_reply_keeps_what_arrived() -> None:
    out = io.StringIO()
    renderer = MarkdownReply(out, force_terminal=True)
    renderer.start()
    renderer.feed("half a *rep")
    renderer.abort()
    assert renderer._live is None
    assert "half a" in out.getvalue().rsplit("\x1b[?25h", 1)[-1]


def test_the_cli_does_not_import_rich_until_it_renders() -> None:
    # `threadline --help` stays fast (bench/cli_startup.py measures it) by importing nothing
    # heavy: rich, the runner, openai and pydantic come with the commands that use them.
    heavy = ["rich", "openai", "pydantic", "threadline.run", "asyncio", "typing"]
    code = (
        "import sys, contextlib, io\n"
        "from threadline.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_usage_shows_each_turn_and_the_totals(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.add(
        reply("one", usage={"input_tokens": 11, "output_tokens": 3}),
        reply("two", usage={"input_tokens": 20, "output_tokens": 7}),
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO("/usage\nfirst\nsecond\n/usage\n"))
    assert run(server, tmp_path, "chat") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("no turns yet")
    table = [line.split() for line in out[3:]]
    assert table[0] == ["turn", "requests", "input", "output", "total"]
    assert table[2] == ["1", "1", "11", "3", "14"]
    assert table[3] == ["2", "1", "20", "7", "27"]
    assert table[4] == ["total", "2", "31", "10", "41"]
