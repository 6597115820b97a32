"""``threadline serve`` on the command line: argument checks, and the real thing in a
subprocess (an upstream, keys and tenants, agents from a module)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest

import threadline
from threadline.cli import main
from threadline.cli.serve_cmd import is_loopback
from threadline.testing.server import ScriptedServer, reply

SRC = str(Path(threadline.__file__).parent.parent)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_refuses_a_public_host_without_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--store", "memory://"]) == 1
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without API keys" in err
    assert "--api-key-env" in err and "--keys-file" in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_store_that_cannot_be_opened_is_an_error_not_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # the folder exists (the command checks that first) but no file can be made in it, even
    # by root: SQLite fails as the store is first opened, which the server used to do in its
    # start-up, logging a traceback after it said it was serving
    store = "sqlite:////proc/threadline-test.db"
    upstream = ["--upstream", "http://127.0.0.1:9/v1", "--model", "m", "--port", "0"]
    assert main(["serve", "--store", store, *upstream]) == 1
    err = capfd.readouterr().err
    assert "error: cannot create the session store" in err
    assert "Traceback" not in err
    assert "threadline serve: http://" not in err  # it never said it was serving


def test_argument_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TL_TEST_UNSET", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--api-key-env", "TL_TEST_UNSET"]) == 1
    assert "TL_TEST_UNSET (from --api-key-env) is not set" in capsys.readouterr().err
    assert main(["serve", "--upstream", "http://127.0.0.1:9/v1", "--store", "memory://"]) == 1
    assert "give --model NAME with --upstream" in capsys.readouterr().err
    assert (
        main(
            [
                "serve",
                "--upstream",
                "http://127.0.0.1:9/v1",
                "--model",
                "m",
                "--upstream-key-env",
                "TL_TEST_UNSET",
                "--store",
                "memory://",
            ]
        )
        == 1
    )
    assert "TL_TEST_UNSET (from --upstream-key-env) is not set" in capsys.readouterr().err
    assert main(["serve", "--agents", "no_such_module_xyz:AGENTS", "--store", "memory://"]) == 1
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--instructions", "x", "--agents", "m:a"])  # one or the other


@contextmanager
def serving(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``threadline serve ARGS --port 0`` in a subprocess; yields its base URL."""
    environment = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "threadline.cli", "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=cwd,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"(http://\S+/v1)", line)
        assert found, line + process.stderr.read()
        yield found.group(1).replace("0.0.0.0", "127.0.0.1")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that hangs on exit
            process.kill()
            raise
        finally:
            if process.stderr is not None:
                process.stderr.close()


def test_serve_in_a_subprocess_remembers(upstream: ScriptedServer, tmp_path: Path) -> None:
    upstream.add(reply("San Francisco."), reply("California."))
    store = f"sqlite:///{tmp_path / 'chat.db'}"
    with serving("--store", store, "--upstream", upstream.base_url, "--model", "gemini-x") as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        conv = client.conversations.create(metadata={"user": "u1"})
        client.responses.create(model="assistant", input="What city?", conversation=conv.id)
        second = client.responses.create(
            model="assistant", input="What state?", conversation=conv.id
        )
        assert second.output_text == "California."
        client.close()
    assert upstream.requests[-1].body["model"] == "gemini-x"
    assert [m["content"] for m in upstream.requests[-1].body["messages"]][1:] == [
        "What city?",
        "San Francisco.",
        "What state?",
    ]


def test_keys_file_and_tenants_in_a_subprocess(upstream: ScriptedServer, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"sk-acme-key-123456": "acme", "sk-beta-key-123456": "beta"}))
    args = ("--store", "memory://", "--upstream", upstream.base_url, "--model", "m")
    with serving(*args, "--host", "0.0.0.0", "--keys-file", str(keys)) as url:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="sk-nobody-123456", max_retries=0).models.list()
        acme = openai.OpenAI(base_url=url, api_key="sk-acme-key-123456", max_retries=0)
        beta = openai.OpenAI(base_url=url, api_key="sk-beta-key-123456", max_retries=0)
        conv = acme.conversations.create()
        with pytest.raises(openai.NotFoundError):
            beta.conversations.retrieve(conv.id)
        acme.close()
        beta.close()


def test_agents_from_a_module(upstream: ScriptedServer, tmp_path: Path) -> None:
    (tmp_path / "my_agents.py").write_text(
        "from threadline import Agent\n"
        "AGENTS = [Agent(name='pirate', instructions='Talk like a pirate.'),\n"
        "          Agent(name='poet', instructions='Answer in verse.')]\n"
    )
    upstream.add(reply("Arr."))
    args = ("--store", "memory://", "--upstream", upstream.base_url, "--model", "m")
    with serving(*args, "--agents", "my_agents:AGENTS", cwd=tmp_path) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        assert [model.id for model in client.models.list()] == ["pirate", "poet"]
        assert client.responses.create(model="pirate", input="Hi").output_text == "Arr."
        client.close()
    assert upstream.requests[-1].body["messages"][0]["content"] == "Talk like a pirate."


def test_ui_and_write_need_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--no-memory", "--ui"]) == 1
    assert "drop --no-memory" in capsys.readouterr().err


@pytest.mark.parametrize("write", [False, True])
def test_serve_ui_and_write(upstream: ScriptedServer, tmp_path: Path, write: bool) -> None:
    """``--ui`` serves the inspector page; ``--write`` lets its routes change sessions."""
    import urllib.error
    import urllib.request

    def fetch(path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(root + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as failed:
            return failed.code, dict(failed.headers), failed.read()

    upstream.add(reply("Hello."))
    args = ["--store", f"sqlite:///{tmp_path / 'chat.db'}", "--upstream", upstream.base_url]
    args += ["--model", "m", "--ui", *(["--write"] if write else [])]
    with serving(*args) as url:
        root = url.removesuffix("/v1")
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        conv = client.conversations.create()
        client.responses.create(model="assistant", input="Hi", conversation=conv.id)
        status, headers, _ = fetch("/ui/")
        assert status == 200 and "text/html" in headers["content-type"]
        assert "script-src 'self'" in headers["content-security-policy"]
        paths = json.loads(fetch("/openapi.json")[2])["paths"]
        assert "/v1/inspect/session/undo" in paths
        status, _, body = fetch(f"/v1/inspect/session/undo?id={conv.id}", "POST")
        items = list(client.conversations.items.list(conv.id))
        client.close()
    if write:
        assert status == 200, body
        assert items == []
    else:
        assert status == 403 and json.loads(body)["error"]["code"] == "read_only"
        assert len(items) == 2
