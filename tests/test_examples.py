"""Every example runs, against the scripted OpenAI-compatible server (real HTTP)."""

from __future__ import annotations

import io
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.run import model_resolution
from threadline.testing import RecordedRequest, ScriptedServer, reply, tool_calls

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(model_resolution, "_providers", {})


def run_example(name: str) -> None:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def last_user_text(request: RecordedRequest) -> str:
    return str([m for m in request.body["messages"] if m["role"] == "user"][-1]["content"])


def test_quickstart_remembers_across_turns(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    server.add(reply("San Francisco."), reply("California."), reply("About 808,000."))
    run_example("quickstart.py")
    out = capsys.readouterr().out.splitlines()
    assert out == ["San Francisco.", "California.", "About 808,000."]
    second = server.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[1]["content"] == "What city is the Golden Gate Bridge in?"
    assert second[2]["content"] == "San Francisco."
    third = server.requests[2].body["messages"]
    assert len(third) == 6  # the sync run on a fresh handle sees both earlier turns
    assert Path("conversations.db").exists()


def test_chatbot_streams_uses_tools_and_remembers(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test")
    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Weather in Tokyo?\nAnd 2+2?\n\n"))
    server.add(
        tool_calls(("get_weather", {"city": "Tokyo"})),
        reply("It is sunny in Tokyo."),
        tool_calls(("math_assistant", {"input": "2+2"})),
        reply("4"),
        reply("2+2 is 4."),
    )
    run_example("chatbot.py")
    out = capsys.readouterr().out
    assert "It is sunny in Tokyo." in out and "2+2 is 4." in out
    assert server.requests[0].body["model"] == "gemini-1.5-flash"
    # the main agent streams; the math agent, run as a tool inside the turn, does not
    assert [r.body.get("stream") is True for r in server.requests] == [
        True,
        True,
        True,
        False,
        True,
    ]
    # the second question's first request carries the whole first turn from the session
    assert last_user_text(server.requests[2]) == "And 2+2?"
    contents = [m.get("content") for m in server.requests[2].body["messages"]]
    assert "Weather in Tokyo?" in contents and "It is sunny in Tokyo." in contents


def test_memory_demo_shows_memory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    module = runpy.run_path(str(EXAMPLES / "memory_demo.py"))
    import asyncio

    assert asyncio.run(module["main"](str(tmp_path / "demo.db"))) == 0
    out = capsys.readouterr().out
    assert "Assistant: San Francisco." in out
    assert "Assistant: California." in out
    assert "808,000" in out
    assert "6. assistant:" in out  # the stored history is printed
