"""Every CLI failure is one line on stderr and a non-zero exit status, never a traceback.

Each command runs with broken inputs through ``main(argv)`` and again as a real process.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from threadline import SQLiteStore
from threadline.cli import main
from threadline.testing import ScriptedServer, reply

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A folder with a store holding session ``alpha``, a regular file and bad import files."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"role": "user", "content": "caf\xe9"}\n')
    (tmp_path / "broken.jsonl").write_text('{"role": "user"\n')
    (tmp_path / "not-an-item.jsonl").write_text("[1, 2]\n")
    (tmp_path / "alpha.jsonl").write_text('{"role": "user", "content": "again"}\n')
    (tmp_path / "a-folder.jsonl").mkdir()

    async def fill() -> None:
        store = SQLiteStore(tmp_path / "s.db")
        await store.session("alpha").add_items([{"role": "user", "content": "hello"}])
        store.close()

    asyncio.run(fill())
    return tmp_path


ENDPOINT = ["--base-url", "http://127.0.0.1:9/v1", "--model", "m"]  # never reached

CASES: list[tuple[str, list[str], str]] = [
    ("db under a file", ["sessions", "--db", "{p}/a-file/sub/x.db", "ls"], "is a file"),
    ("db under a file, json after", ["sessions", "ls", "--db", "{p}/a-file/x.db"], "is a file"),
    ("store url under a file", ["sessions", "--store", "sqlite:///{p}/a-file/x.db", "ls"], "file"),
    ("bad store url", ["sessions", "--store", "bogus://x", "ls"], "bogus://"),
    ("db is not a database", ["sessions", "--db", "{p}/broken.jsonl", "ls"], "not a database"),
    ("db is a folder", ["sessions", "--db", "{p}", "ls"], "session store"),
    ("store and db", ["sessions", "--db", "{p}/s.db", "--store", "memory://", "ls"], "not both"),
    ("show unknown", ["sessions", "--db", "{p}/s.db", "show", "nope"], "no session 'nope'"),
    ("export unknown", ["sessions", "--db", "{p}/s.db", "export", "nope"], "no session"),
    (
        "export to a bad path",
        ["sessions", "--db", "{p}/s.db", "export", "alpha", "-o", "{p}/a-file/out.jsonl"],
        "cannot write",
    ),
    ("fork unknown", ["sessions", "--db", "{p}/s.db", "fork", "nope", "x"], "no session"),
    ("rm unknown", ["sessions", "--db", "{p}/s.db", "rm", "nope"], "no session"),
    ("import missing", ["sessions", "--db", "{p}/s.db", "import", "{p}/none.jsonl"], "no such"),
    ("import folder", ["sessions", "--db", "{p}/s.db", "import", "{p}/a-folder.jsonl"], "no such"),
    ("import non-UTF-8", ["sessions", "--db", "{p}/s.db", "import", "{p}/latin1.jsonl"], "UTF-8"),
    ("import bad JSON", ["sessions", "--db", "{p}/s.db", "import", "{p}/broken.jsonl"], "JSON"),
    ("import non-item", ["sessions", "--db", "{p}/s.db", "import", "{p}/not-an-item.jsonl"], ""),
    (
        "import into a non-empty session",
        ["sessions", "--db", "{p}/s.db", "import", "{p}/alpha.jsonl"],
        "--append",
    ),
    ("migrate under a file", ["db", "migrate", "--db", "{p}/a-file/x.db"], "is a file"),
    ("chat under a file", ["chat", "--db", "{p}/a-file/x.db", *ENDPOINT], "is a file"),
    ("ask under a file", ["ask", "hi", "--db", "{p}/a-file/x.db", *ENDPOINT], "is a file"),
    ("demo under a file", ["demo", "--db", "{p}/a-file/x.db"], "is a file"),
    (
        "chat, session and continue",
        ["chat", "--db", "{p}/s.db", "--session", "a", "-c", *ENDPOINT],
        "not both",
    ),
    ("ask nothing", ["ask", " ", "--db", "{p}/s.db", *ENDPOINT], "needs a question"),
    (
        "import to an empty id",
        ["sessions", "--db", "{p}/s.db", "import", "{p}/alpha.jsonl", "--session", ""],
        "non-empty",
    ),
    (
        "missing key variable",
        ["ask", "hi", "--db", "{p}/s.db", "--api-key-env", "THREADLINE_TEST_UNSET"],
        "THREADLINE_TEST_UNSET",
    ),
]
IDS = [name for name, _, _ in CASES]


def _argv(argv: list[str], place: Path) -> list[str]:
    return [arg.replace("{p}", str(place)) for arg in argv]


def _check(err: str, expected: str) -> None:
    assert "Traceback" not in err
    assert "unexpected error" not in err  # each known case has its own message
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("threadline: error: ")
    assert expected in lines[0]


@pytest.mark.parametrize(("name", "argv", "expected"), CASES, ids=IDS)
def test_broken_inputs_through_main(
    name: str,
    argv: list[str],
    expected: str,
    place: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("THREADLINE_TEST_UNSET", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(_argv(argv, place)) != 0
    _check(capsys.readouterr().err, expected)


def _environment(place: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OPENAI_"))}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["HOME"] = str(place)
    env["XDG_DATA_HOME"] = str(place / "data")
    return env


def run_cli(*argv: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``threadline ARGV`` in a new process, the way the console script runs it."""
    code = "from threadline.cli import entrypoint; entrypoint()"
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_broken_inputs_in_a_process(place: Path) -> None:
    env = _environment(place)
    for name, argv, expected in CASES:
        done = run_cli(*_argv(argv, place), env=env)
        assert done.returncode != 0, name
        _check(done.stderr, expected)


def test_a_chat_that_cannot_export_goes_on(
    place: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = f"/export {place}/a-file/x.jsonl\n/export {place}/no/such/x.jsonl\n/export {place}\n"
    with ScriptedServer() as server:
        server.add(reply("still here"))
        monkeypatch.setattr(sys, "stdin", io.StringIO(script + "hello\n"))
        argv = ["chat", "--db", str(place / "s.db"), "--base-url", server.base_url, "--model", "m"]
        assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and all("cannot write" in line for line in errors)
    assert captured.out.strip() == "still here"


def test_an_unexpected_error_is_one_line_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from threadline.cli import sessions_cmd

    def broken(*_: object) -> int:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(sessions_cmd, "sessions_command", broken)
    assert main(["sessions", "--db", str(tmp_path / "x.db"), "ls"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "threadline: unexpected error: RuntimeError: something nobody expected "
        "(run with THREADLINE_LOG=debug for details)"
    ]
    monkeypatch.setenv("THREADLINE_LOG", "debug")
    assert main(["sessions", "--db", str(tmp_path / "x.db"), "ls"]) == 1
    assert "Traceback" in capsys.readouterr().err  # the details, when asked for


def test_ctrl_c_is_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from threadline.cli import sessions_cmd

    def interrupted(*_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(sessions_cmd, "sessions_command", interrupted)
    assert main(["sessions", "--db", str(tmp_path / "x.db"), "ls"]) == 130
    assert capsys.readouterr().err.strip() == "threadline: interrupted"


def test_a_closed_pipe_is_no_traceback(tmp_path: Path) -> None:
    async def fill() -> None:
        store = SQLiteStore(tmp_path / "big.db")
        items = [{"role": "user", "content": f"line {n} " + "x" * 60} for n in range(3000)]
        await store.session("big").add_items(items)
        store.close()

    asyncio.run(fill())
    code = "from threadline.cli import entrypoint; entrypoint()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "sessions", "--db", str(tmp_path / "big.db"), "show", "big"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(tmp_path),
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"   1. user: line 0")
    process.stdout.close()  # like `| head -1`
    with process.stderr:
        err = process.stderr.read().decode()
    assert process.wait(timeout=60) != 0
    assert "Traceback" not in err and "Exception ignored" not in err
