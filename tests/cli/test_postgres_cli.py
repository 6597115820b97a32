"""The command line on a PostgreSQL store: ``db migrate``, ``chat`` and every ``sessions``
action with ``--store postgresql://...`` (a fresh schema of the test server per test)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.cli import main
from threadline.testing import ScriptedServer, reply

from ..backends import POSTGRES_URL, new_postgres_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def url() -> str:
    return f"{POSTGRES_URL}?schema={new_postgres_schema()}"


def chat(monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, url: str, stdin: str) -> int:
    monkeypatch.setenv("TEST_KEY", "secret")
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    argv = ["chat", "--store", url, "--base-url", server.base_url, "--api-key-env", "TEST_KEY"]
    return main([*argv, "--model", "m", "--session", "trip"])


def test_migrate_then_chat_then_every_sessions_action(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Before the schema exists: one line naming the command that makes it.
    assert main(["sessions", "--store", url, "ls"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "threadline db migrate --store postgresql://" in err

    assert main(["db", "migrate", "--store", url]) == 0
    assert "database ready" in capsys.readouterr().out
    assert main(["db", "migrate", "--store", url]) == 0  # again: nothing to do, still fine
    capsys.readouterr()

    server.add(reply("San Francisco."), reply("California."))
    assert chat(monkeypatch, server, url, "What city is the Golden Gate Bridge in?\n") == 0
    assert chat(monkeypatch, server, url, "What state is it in?\n") == 0
    assert capsys.readouterr().out.splitlines() == ["San Francisco.", "California."]
    second = server.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]

    assert main(["sessions", "--store", url, "--json", "ls"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["session_id"], s["items"]) for s in listed] == [("trip", 4)]

    assert main(["sessions", "--store", url, "show", "trip"]) == 0
    assert "Golden Gate" in capsys.readouterr().out

    assert main(["sessions", "--store", url, "--json", "search", "golden gate"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [(h["session_id"], h["position"]) for h in hits] == [("trip", 1)]  # 1-based

    exported = tmp_path / "trip.jsonl"
    assert main(["sessions", "--store", url, "export", "trip", "-o", str(exported)]) == 0
    header, *lines = exported.read_text().splitlines()
    assert json.loads(header)["format"] == "threadline.session" and len(lines) == 4
    assert main(["sessions", "--store", url, "import", str(exported), "--session", "copy"]) == 0
    assert main(["sessions", "--store", url, "fork", "trip", "branch"]) == 0
    capsys.readouterr()
    assert main(["sessions", "--store", url, "--json", "stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["sessions"], stats["items"]) == (3, 12)
    assert main(["sessions", "--store", url, "rm", "copy"]) == 0
    capsys.readouterr()
    assert main(["sessions", "--store", url, "--json", "ls"]) == 0
    assert sorted(s["session_id"] for s in json.loads(capsys.readouterr().out)) == [
        "branch",
        "trip",
    ]


def test_a_bad_server_is_one_line_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://app:hunter2@127.0.0.1:1/chat?retry_for=0&connect_timeout=1"
    assert main(["sessions", "--store", url, "ls"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "127.0.0.1:1/chat" in err and "hunter2" not in err
