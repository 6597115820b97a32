"""``threadline sessions …`` and ``threadline db migrate`` through ``main(argv)``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from threadline import SQLiteStore
from threadline.cli import main
from threadline.items import assistant_message


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"

    async def fill() -> None:
        store = SQLiteStore(path)
        await store.session("alpha").add_items(
            [{"role": "user", "content": "Golden Gate?"}, assistant_message("San Francisco.")]
        )
        await store.session("beta").add_items([{"role": "user", "content": "Hello there"}])
        store.close()

    asyncio.run(fill())
    return path


def run(db: Path, *argv: str) -> int:
    return main(["sessions", "--db", str(db), *argv])


def test_ls_table_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "ls") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["session", "items", "updated", "(UTC)"]
    assert any(line.startswith("alpha") and " 2 " in line for line in table)
    assert run(db, "--json", "ls") == 0
    listed = json.loads(capsys.readouterr().out)
    assert {(s["session_id"], s["items"]) for s in listed} == {("alpha", 2), ("beta", 1)}


def test_show(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "show", "alpha") == 0
    assert capsys.readouterr().out.splitlines() == [
        "   1. user: Golden Gate?",
        "   2. assistant: San Francisco.",
    ]
    assert run(db, "--json", "show", "alpha") == 0
    assert json.loads(capsys.readouterr().out)[1]["content"][0]["text"] == "San Francisco."


def test_unknown_session_is_one_clear_error(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "show", "nope") == 1
    assert "no session 'nope'" in capsys.readouterr().err


def test_search(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "--json", "search", "francisco") == 0
    hits = json.loads(capsys.readouterr().out)
    assert [(h["session_id"], h["position"]) for h in hits] == [("alpha", 2)]
    assert run(db, "search", "nothing-like-this") == 1


def test_export_then_import_round_trips(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(db, "export", "alpha") == 0
    exported = capsys.readouterr().out
    file = tmp_path / "copy.jsonl"
    file.write_text(exported)
    assert run(db, "import", str(file)) == 0
    assert "imported 2 items into session copy" in capsys.readouterr().out
    assert run(db, "--json", "show", "copy") == 0
    header, *items = exported.splitlines()
    assert json.loads(header)["format"] == "threadline.session"
    assert json.loads(capsys.readouterr().out) == [json.loads(x) for x in items]


def test_import_rejects_bad_lines_and_writes_nothing(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"role": "user", "content": "ok"}\n{oops\n')
    assert run(db, "import", str(bad_json)) == 1
    assert "bad.jsonl:2 is not valid JSON" in capsys.readouterr().err
    bad_item = tmp_path / "bad2.jsonl"
    bad_item.write_text(
        '{"role": "user", "content": "ok"}\n{"role": 5, "content": "a number for a role"}\n'
    )
    assert run(db, "import", str(bad_item)) == 1
    assert "item 1" in capsys.readouterr().err
    assert run(db, "--json", "ls") == 0
    assert {s["session_id"] for s in json.loads(capsys.readouterr().out)} == {"alpha", "beta"}


def test_fork(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "fork", "alpha", "alpha-2") == 0
    capsys.readouterr()
    assert run(db, "--json", "show", "alpha-2") == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_rm(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "rm", "beta") == 0
    assert "deleted session beta" in capsys.readouterr().out
    assert run(db, "--json", "ls") == 0
    assert [s["session_id"] for s in json.loads(capsys.readouterr().out)] == ["alpha"]


def test_stats(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "--json", "stats") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["sessions"] == 2 and stats["items"] == 3 and stats["bytes_on_disk"] > 0


def test_db_migrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nested" / "new.db"
    assert main(["db", "migrate", "--db", str(path)]) == 0
    assert path.exists()
    assert "database ready" in capsys.readouterr().out


def test_rm_of_an_unknown_session_is_one_clear_error(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(db, "rm", "nope") == 1
    assert "no session 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------------- --store and THREADLINE_STORE


def test_store_url_and_environment(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["sessions", "--store", f"sqlite:///{db}", "--json", "ls"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["session_id"] for s in listed] == ["beta", "alpha"]
    monkeypatch.setenv("THREADLINE_STORE", f"sqlite:///{db}")
    assert main(["sessions", "--json", "ls"]) == 0
    assert [s["session_id"] for s in json.loads(capsys.readouterr().out)] == ["beta", "alpha"]
    monkeypatch.chdir(db.parent)
    assert main(["sessions", "--store", f"sqlite:///{db.name}", "show", "beta"]) == 0
    assert "Hello there" in capsys.readouterr().out


def test_store_url_errors_are_one_line(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--store", "mongodb://x/y", "ls"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown store URL scheme 'mongodb://'" in err
    assert main(["sessions", "--store", "sqlite:///x.db?bogus=1", "ls"]) == 1
    assert "unknown option 'bogus'" in capsys.readouterr().err
    assert main(["sessions", "--store", f"sqlite:///{db}", "--db", str(db), "ls"]) == 1
    assert "not both" in capsys.readouterr().err


def test_search_uses_the_store_index(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "--json", "search", "golden gate") == 0
    hits = json.loads(capsys.readouterr().out)
    assert [(h["session_id"], h["position"]) for h in hits] == [("alpha", 1)]
    assert hits[0]["snippet"] == "**Golden** **Gate**?"
    assert run(db, "search", "hello") == 0
    assert "**Hello** there" in capsys.readouterr().out


def test_memory_store_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--store", "memory://", "ls"]) == 0
    assert main(["db", "migrate", "--store", "memory://"]) == 0
    assert "ready" in capsys.readouterr().out


@pytest.mark.parametrize(
    "lines, problem",
    [
        (
            [
                '{"role": "user", "content": "hi"}',
                '{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}',
            ],
            "item 1 is a call (call_id 'c1') with no function_call_output after it",
        ),
        (
            ['{"type": "function_call_output", "call_id": "c9", "output": "x"}'],
            "item 0 is a function_call_output (call_id 'c9') with no call before it",
        ),
        (
            ['{"type": "custom_tool_call", "call_id": "c2", "name": "g", "input": "x"}'],
            "no custom_tool_call_output after it",
        ),
    ],
)
def test_import_refuses_a_history_not_valid_to_send(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], problem: str
) -> None:
    path = tmp_path / "gamma.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert run(db, "import", str(path)) == 1
    err = capsys.readouterr().err
    assert problem in err and "nothing was imported" in err
    assert run(db, "show", "gamma") == 1  # no such session


def test_import_refuses_bytes_that_are_not_utf8(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"role": "user", "content": "ok"}\n{"role": "user", "content": "caf\xe9"}\n')
    assert run(db, "import", str(path)) == 1
    assert "latin.jsonl:2 is not UTF-8 text (byte 0xe9 at column 33)" in capsys.readouterr().err
    assert run(db, "show", "latin") == 1


def test_import_refuses_a_lone_surrogate_and_deep_nesting(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"role": "user", "content": "\\ud800"}\n')
    assert run(db, "import", str(path)) == 1
    assert "not valid Unicode" in capsys.readouterr().err
    path.write_text('{"role": "user", "content": ' + "[" * 10_000 + "]" * 10_000 + "}\n")
    assert run(db, "import", str(path)) == 1
    assert "odd.jsonl:1 is not valid JSON (nested too deeply)" in capsys.readouterr().err
    path.write_text('{"role": "user", "content": ' + "[" * 150 + "]" * 150 + "}\n")
    assert run(db, "import", str(path)) == 1
    assert "deeper than 100 levels" in capsys.readouterr().err
    assert run(db, "show", "odd") == 1


def test_db_under_a_regular_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("")
    assert main(["sessions", "--db", str(tmp_path / "afile" / "x.db"), "ls"]) == 1
    err = capsys.readouterr().err
    assert "afile" in err and "Traceback" not in err


def _age(db: Path, session_id: str, days: float) -> None:
    """Move a session's last write ``days`` into the past (test-only SQL)."""
    import sqlite3
    import time

    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE threadline_sessions SET updated_at = ? WHERE session_id = ?",
            (time.time() - days * 86_400, session_id),
        )


def test_prune_dry_run_then_delete(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _age(db, "alpha", 40)
    assert run(db, "prune", "--idle", "30d", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would delete 1 sessions (2 items)" in out and "alpha" in out
    assert run(db, "--json", "ls") == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert run(db, "--json", "prune", "--idle", "4w") == 0
    assert json.loads(capsys.readouterr().out) == {
        "sessions": ["alpha"],
        "items": 2,
        "busy": [],
        "dry_run": False,
    }
    assert run(db, "--json", "ls") == 0
    assert [s["session_id"] for s in json.loads(capsys.readouterr().out)] == ["beta"]


@pytest.mark.parametrize("bad", ["30", "d", "3d-", "0d", "3x", "1d 2h"])
def test_prune_refuses_a_bad_duration(
    db: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    assert run(db, "prune", "--idle", bad) == 1
    assert "duration" in capsys.readouterr().err
    assert run(db, "--json", "ls") == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_prune_honours_a_session_ttl(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def set_ttl() -> None:
        store = SQLiteStore(db)
        await store.session("beta").set_ttl(3600)
        store.close()

    asyncio.run(set_ttl())
    _age(db, "beta", 1)
    _age(db, "alpha", 1)
    assert run(db, "prune") == 0  # no --idle: only sessions with a TTL expire
    assert "deleted 1 sessions (1 items)" in capsys.readouterr().out
    assert run(db, "--json", "ls") == 0
    assert [s["session_id"] for s in json.loads(capsys.readouterr().out)] == ["alpha"]


def test_fork_at_a_turn(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(db, "fork", "alpha", "alpha-0", "--at-turn", "0") == 0
    assert "forked alpha to alpha-0: 0 items" in capsys.readouterr().out
    assert run(db, "fork", "alpha", "alpha-1", "--at-turn", "1") == 0
    assert "2 items" in capsys.readouterr().out


def test_show_and_stats_print_usage(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from threadline import Agent, Runner
    from threadline.testing import ScriptedModel

    async def two_runs() -> None:
        store = SQLiteStore(db)
        agent = Agent(name="A", model=ScriptedModel(["Fine.", "Sure."]))
        await Runner.run(agent, "how are you", session=store.session("beta"))
        await Runner.run(agent, "and now", session=store.session("beta"))
        store.close()

    asyncio.run(two_runs())
    assert run(db, "show", "beta") == 0
    out = capsys.readouterr().out
    assert "usage: 2 requests," in out and "over 2 runs" in out
    table = out.split("usage:")[1].splitlines()
    assert table[1].split()[:2] == ["run", "requests"]
    assert [line.split()[:2] for line in table[3:5]] == [["1", "1"], ["2", "1"]]
    assert run(db, "show", "alpha") == 0
    assert "usage" not in capsys.readouterr().out  # no runs, no usage
    assert run(db, "--json", "stats") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["runs"] == 2 and stats["requests"] == 2 and stats["input_tokens"] > 0
