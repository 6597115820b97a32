"""The README's examples run, and its --help texts match the program."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.cli import build_parser
from threadline.run import model_resolution
from threadline.testing import ScriptedServer, reply

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
HELP_BLOCKS = re.findall(r"```text\n\$ threadline ?([a-z]*) ?--help\n(.*?)```", README, re.S)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ScriptedServer]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(model_resolution, "_providers", {})
    with ScriptedServer() as srv:
        yield srv


def test_the_readme_has_the_blocks_this_test_checks() -> None:
    assert len(PYTHON_BLOCKS) == 2
    assert [command for command, _ in HELP_BLOCKS] == ["", "chat", "sessions"]


def test_quick_start(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    server.add(reply("San Francisco."), reply("California."), reply("About 808,000."))
    exec(compile(PYTHON_BLOCKS[0], "README quick start", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.splitlines() == [
        "San Francisco.",
        "California.",
        "About 808,000.",
    ]
    assert len(server.requests[2].body["messages"]) == 6  # system + two turns + the question


def test_models_example(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test")
    code = PYTHON_BLOCKS[1].replace(
        "https://generativelanguage.googleapis.com/v1beta/openai/", server.base_url
    )
    server.add(reply("Hello!"))
    exec(compile(code, "README models example", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip() == "Hello!"
    assert server.requests[0].body["model"] == "gemini-1.5-flash"


@pytest.mark.parametrize(("command", "shown"), HELP_BLOCKS, ids=lambda v: v or "top")
def test_help_text_matches(command: str, shown: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    parser = build_parser()
    if command:
        subparsers = next(a for a in parser._actions if a.dest == "command")
        parser = subparsers.choices[command]  # type: ignore[attr-defined]
    assert parser.format_help() == shown
