"""``threadline sessions …`` and ``threadline chat`` with ``--store redis://…`` (and a Cluster)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator

import pytest

from threadline.cli import main
from threadline.testing import ScriptedServer, reply

from ..redis_servers import cluster_url, drop_prefix, new_prefix, redis_url

pytestmark = pytest.mark.redis


@pytest.fixture(params=["redis", "redis-cluster"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    base = redis_url() if request.param == "redis" else cluster_url()
    prefix = new_prefix()
    yield f"{base}?prefix={prefix}"
    drop_prefix(base, prefix)


def sessions(url: str, *argv: str) -> int:
    return main(["sessions", "--store", url, *argv])


def test_sessions_commands_on_redis(
    store_url: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"role": "user", "content": "Golden Gate?"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "SF"}],
        },
    ]
    exported = f"{tmp_path}/alpha.jsonl"
    with open(exported, "w", encoding="utf-8") as file:
        for line in lines:
            file.write(json.dumps(line) + "\n")
    capsys.readouterr()
    assert sessions(store_url, "import", exported) == 0, capsys.readouterr().err
    assert sessions(store_url, "fork", "alpha", "alpha-2") == 0
    capsys.readouterr()
    assert sessions(store_url, "--json", "ls") == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(entry["session_id"] for entry in listed) == ["alpha", "alpha-2"]
    assert sessions(store_url, "--json", "show", "alpha-2") == 0
    assert "Golden Gate?" in capsys.readouterr().out
    assert sessions(store_url, "rm", "alpha") == 0
    capsys.readouterr()
    assert sessions(store_url, "--json", "stats") == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["sessions"], stats["items"]) == (1, 2)
    assert sessions(store_url, "search", "golden") == 1
    error = capsys.readouterr().err.strip()
    assert "cannot search" in error and len(error.splitlines()) == 1


def test_an_unreachable_redis_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert sessions("redis://:topsecret@127.0.0.1:1/0?connect_timeout=1", "ls") == 1
    error = capsys.readouterr().err.strip()
    assert "Redis at 127.0.0.1:1/0" in error and len(error.splitlines()) == 1
    assert "topsecret" not in error


def test_chat_remembers_through_redis(
    store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer() as server:
        server.add(reply("San Francisco."), reply("California."))
        monkeypatch.setenv("TEST_KEY", "secret")
        argv = ["chat", "--store", store_url, "--base-url", server.base_url]
        argv += ["--api-key-env", "TEST_KEY", "--model", "m", "--session", "s1"]
        for line in ("What city is the Golden Gate Bridge in?\n", "What state is it in?\n"):
            monkeypatch.setattr(sys, "stdin", io.StringIO(line))
            assert main(argv) == 0
        assert capsys.readouterr().out.splitlines() == ["San Francisco.", "California."]
        second = server.requests[1].body["messages"]
        assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
