"""``threadline inspect``: the inspector on 127.0.0.1 from the command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.cli import main

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _made(path: Path) -> str:
    """An existing, empty SQLite store at ``path``."""
    import sqlite3

    sqlite3.connect(path).close()
    return str(path)


def test_the_store_is_named_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "a.db")
    assert main(["inspect", db, "--store", f"sqlite:///{db}"]) == 1
    assert "give the store once" in capsys.readouterr().err


def test_a_missing_sqlite_file_is_refused_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (
        [str(tmp_path / "typo.db")],
        ["--db", str(tmp_path / "typo.db")],
        [f"sqlite:///{tmp_path / 'typo.db'}"],
        ["--store", f"sqlite:///{tmp_path / 'typo.db'}"],
        [str(tmp_path / "no" / "folder.db")],
    ):
        assert main(["inspect", *args, "--port", "0"]) == 1, args
        err = capsys.readouterr().err
        assert "no session store at" in err and ("typo.db" in err or "folder.db" in err), err
        assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # neither a file nor a folder was made


def test_a_bad_port_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", _made(tmp_path / "a.db"), "--port", "70000"]) == 1
    assert "--port must be 0 to 65535" in capsys.readouterr().err


def test_a_port_in_use_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["inspect", _made(tmp_path / "a.db"), "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.fixture
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """``threadline inspect DB --port 0 [ARGS]`` in a process; yields the URL it printed."""
    args = getattr(request, "param", [])
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "threadline.cli",
            "inspect",
            _made(tmp_path / "i.db"),
            "--port",
            "0",
            *args,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("threadline inspect: http://127.0.0.1:"), line
        yield line.split()[2]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.status, answer.read(), dict(answer.headers)


def test_it_serves_the_page_read_only(running: str) -> None:
    assert running.endswith("/ui/")
    status, body, headers = _get(running)
    assert status == 200 and b'src="js/app.js"' in body
    assert "script-src 'self'" in headers["content-security-policy"]
    info = json.loads(_get(running.replace("/ui/", "/v1/inspect"))[1])
    assert info["write"] is False


@pytest.mark.parametrize("running", [["--write"]], indirect=True)
def test_write_allows_changes(running: str) -> None:
    info = json.loads(_get(running.replace("/ui/", "/v1/inspect"))[1])
    assert info["write"] is True
