"""The first ten minutes: which session a chat is in, --continue, ask, and argument positions."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline import SQLiteStore, __version__
from threadline.agent import Agent
from threadline.cli import main
from threadline.cli.chat import ChatApp, run_repl
from threadline.cli.demo import continue_command, run_demo
from threadline.testing import ScriptedModel, ScriptedServer, reply


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def endpoint(server: ScriptedServer) -> list[str]:
    return ["--base-url", server.base_url, "--model", "m"]


def chat(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, db: Path, stdin: str, *extra: str
) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["chat", "--db", str(db), *endpoint(server), *extra])


def test_chat_says_whether_a_session_is_new_or_continued(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "c.db"
    server.add(reply("one"), reply("two"))
    assert chat(monkeypatch, server, db, "hello\n", "--session", "conv_x") == 0
    first = capsys.readouterr().err
    assert first.startswith("new session: conv_x (no session of that name in ")
    assert chat(monkeypatch, server, db, "again\n", "--session", "conv_x") == 0
    assert capsys.readouterr().err.startswith("continuing conv_x: 2 items, last ")
    assert chat(monkeypatch, server, db, "", "--session", "conv_y") == 0  # a typo: said so
    assert "new session: conv_y (no session of that name" in capsys.readouterr().err
    assert chat(monkeypatch, server, db, "/switch conv_z\n/switch conv_x\n", "-c") == 0
    err = capsys.readouterr().err.splitlines()
    assert err[1].startswith("new session: conv_z (no session of that name")
    assert err[2].startswith("continuing conv_x: 4 items")


def test_continue_picks_the_most_recent_session(
    monkeypatch: pytest.MonkeyPatch,
    server: ScriptedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "c.db"
    assert chat(monkeypatch, server, db, "", "-c") == 0
    assert "no sessions yet in " in capsys.readouterr().err
    server.add(reply("older"), reply("newer"), reply("continued"))
    assert chat(monkeypatch, server, db, "a\n", "--session", "older") == 0
    assert chat(monkeypatch, server, db, "b\n", "--session", "newer") == 0
    capsys.readouterr()
    assert chat(monkeypatch, server, db, "c\n/history\n", "--continue") == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("continuing newer: 2 items")
    assert "   3. user: c" in captured.out
    assert [m["content"] for m in server.requests[2].body["messages"][1:]] == ["b", "newer", "c"]


def test_the_banner_names_the_session_and_the_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    err = io.StringIO()
    app = ChatApp(
        agent=Agent(name="A", model=ScriptedModel()),
        store=SQLiteStore(tmp_path / "b.db"),
        session_id="s",
        out=io.StringIO(),
        err=err,
        interactive=True,
        model_name="gemma-3-270m (local, offline)",
    )
    assert run_repl(app) == 0
    assert err.getvalue().splitlines()[0] == (
        "session s · model gemma-3-270m (local, offline) · /help for commands · exit to leave"
    )


def test_demo_prints_the_command_that_continues_it(tmp_path: Path) -> None:
    model = ScriptedModel(["San Francisco.", "California.", "Many."])
    out = io.StringIO()
    asyncio.run(run_demo(model, tmp_path / "demo.db", out))
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("Continue this conversation:  ")
    assert last.endswith(f" chat --db {tmp_path / 'demo.db'} --session golden-gate-demo")


def test_the_continue_command_uses_the_program_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # threadline is not on the PATH
    assert continue_command(Path("d.db"), ".venv/bin/threadline") == (
        f".venv/bin/threadline chat --db {tmp_path / 'd.db'} --session golden-gate-demo"
    )
    assert continue_command(Path("d.db"), "-c").startswith("threadline chat --db ")


def test_ask_prints_the_answer_and_stores_the_turn(
    server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "a.db"
    server.add(reply("San Francisco."), reply("California."))
    argv = ["--db", str(db), *endpoint(server)]
    assert main(["ask", "Golden Gate city?", "--session", "q", *argv]) == 0
    assert capsys.readouterr().out == "San Francisco.\n"
    assert main(["ask", "State?", "-c", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.out == "California.\n"
    assert captured.err.startswith("continuing q: 2 items, last ")
    assert "continue it with" not in captured.err
    assert [m["role"] for m in server.requests[1].body["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert main(["sessions", "--db", str(db), "show", "q"]) == 0
    assert "   4. assistant: California." in capsys.readouterr().out


def test_ask_without_a_session_says_how_to_continue(
    server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add(reply("Hi."))
    assert main(["ask", "hello", "--db", str(tmp_path / "a.db"), *endpoint(server)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "Hi.\n"
    assert "new session: chat-" in captured.err and "continue it with --session chat-" in (
        captured.err
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"

    async def fill() -> None:
        store = SQLiteStore(path)
        await store.session("alpha").add_items([{"role": "user", "content": "Golden Gate?"}])
        store.close()

    asyncio.run(fill())
    return path


def test_store_and_json_flags_work_after_the_action_too(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "ls", "--json", "--db", str(db)]) == 0
    assert [s["session_id"] for s in json.loads(capsys.readouterr().out)] == ["alpha"]
    assert main(["sessions", "--db", str(db), "show", "alpha", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["content"] == "Golden Gate?"
    assert main(["sessions", "--json", "--db", str(db), "ls"]) == 0  # before still works
    assert len(json.loads(capsys.readouterr().out)) == 1
    assert main(["sessions", "stats", "--store", f"sqlite:///{db}"]) == 0
    assert "sessions: 1" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"threadline {__version__}"


def test_export_to_a_file(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "alpha.jsonl"
    assert main(["sessions", "--db", str(db), "export", "alpha", "-o", str(target)]) == 0
    assert capsys.readouterr().err.strip() == f"wrote 1 items to {target}"
    header, item = target.read_text().splitlines()
    assert json.loads(header)["format"] == "threadline.session"
    assert json.loads(item)["content"] == "Golden Gate?"


def test_empty_ls_and_search_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "empty.db"
    assert main(["db", "migrate", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["sessions", "--db", str(db), "ls"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (f"no sessions yet in {db}; start one with `threadline chat`")
    assert main(["sessions", "--db", str(db), "search", "bridge"]) == 1
    assert capsys.readouterr().err.strip() == f"no items hold every word of 'bridge' in {db}"
    assert main(["sessions", "--db", str(db), "ls", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_import_refuses_a_non_empty_session_unless_told(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "alpha.jsonl"
    source.write_text('{"role": "user", "content": "imported"}\n')
    base = ["sessions", "--db", str(db)]
    assert main([*base, "import", str(source)]) == 1
    assert "already has items" in capsys.readouterr().err
    assert main([*base, "import", str(source), "--append"]) == 0
    assert main([*base, "show", "alpha"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "   1. user: Golden Gate?",
        "   2. user: imported",
    ]
    assert main([*base, "import", str(source), "--replace"]) == 0
    assert main([*base, "show", "alpha"]) == 0
    assert capsys.readouterr().out.splitlines()[-1:] == ["   1. user: imported"]
    assert main([*base, "import", str(source), "--session", "fresh"]) == 0
    assert "imported 1 items into session fresh" in capsys.readouterr().out


@pytest.mark.parametrize(
    "action",
    [
        ["ls"],
        ["show", "a"],
        ["search", "x"],
        ["export", "a"],
        ["fork", "a", "b"],
        ["rm", "a"],
        ["prune", "--idle", "1d"],
        ["stats"],
        ["--json", "ls"],
    ],
)
def test_a_mistyped_db_path_is_an_error_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: list[str]
) -> None:
    db = tmp_path / "typo" / "chat.db"
    assert main(["sessions", "--db", str(db), *action]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"threadline: error: no session store at {db}: the file does not exist")
    assert not (tmp_path / "typo").exists()  # neither the file nor its folder was made
    url = f"sqlite:///{tmp_path}/typo/chat.db"
    assert main(["sessions", "--store", url, *action]) == 1
    assert "no session store at" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_before_the_first_chat_the_default_store_is_empty_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("THREADLINE_DB", raising=False)
    monkeypatch.delenv("THREADLINE_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    default = tmp_path / "data" / "threadline" / "threadline.db"
    assert main(["sessions", "ls"]) == 0
    assert capsys.readouterr().err.strip() == (
        f"no sessions yet: {default} does not exist; start one with `threadline chat`"
    )
    assert main(["sessions", "--json", "ls"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["sessions", "--json", "stats"]) == 0
    assert json.loads(capsys.readouterr().out)["sessions"] == 0
    assert main(["sessions", "search", "bridge"]) == 1
    assert main(["sessions", "show", "chat-1"]) == 1
    assert "no sessions yet" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_import_creates_the_store_it_names(tmp_path: Path) -> None:
    source = tmp_path / "alpha.jsonl"
    source.write_text('{"role": "user", "content": "hello"}\n')
    db = tmp_path / "new" / "chat.db"
    assert main(["sessions", "--db", str(db), "import", str(source)]) == 0
    assert db.is_file()
    assert main(["sessions", "--db", str(db), "show", "alpha"]) == 0
