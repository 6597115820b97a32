"""Compaction on the local model's path (the offline chat), against its stand-in server."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from threadline import Agent, CompactionSettings, InMemoryStore, RunConfig, Runner, SessionSettings
from threadline.models import local
from threadline.sessions import read_summary
from threadline.sessions._summary import SUMMARY_PREFIX

from .conftest import FakeServer


async def test_compaction_on_the_local_models_path(fake: FakeServer) -> None:
    model = local.local_model(fake.server)
    agent = Agent(name="Assistant", instructions="Reply very concisely.", model=model)
    session = InMemoryStore().session("demo", session_settings=SessionSettings(compact_at=40))
    run_config = RunConfig(compaction=CompactionSettings(keep_tokens=10))
    outcomes = []
    for question in (
        "Hi, my name is Ada.",
        "What city is the Golden Gate Bridge in?",
        "And the state?",
    ):
        result = await Runner.run(agent, question, session=session, run_config=run_config)
        assert result.compaction is not None
        outcomes.append(await result.compaction)
    assert any(o.compacted for o in outcomes)
    summary = await read_summary(session)
    assert summary is not None and summary.text == "Hello there."
    bodies = [b for b in fake.requests() if b.get("messages")]
    summariser = [b for b in bodies if "running summary" in str(b["messages"][0])]
    assert summariser and "[user] Hi, my name is Ada." in summariser[0]["messages"][1]["content"]
    await Runner.run(agent, "What's my name?", session=session, run_config=run_config)
    last = fake.requests()[-1]["messages"]
    assert {"role": "system", "content": SUMMARY_PREFIX + "Hello there."} in last
    await model.openai_client.close()


def test_threadline_chat_on_the_local_model_compacts_and_says_so(
    fake: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The offline path: no model configured, so `threadline chat` runs the local model."""
    from threadline.cli import main
    from threadline.run import model_resolution

    monkeypatch.setattr(local, "is_available", lambda: True)
    monkeypatch.setattr(local.LocalModelServer, "_shared", fake.server)
    monkeypatch.setattr(model_resolution, "_providers", {})
    monkeypatch.setattr(model_resolution, "_key", None)
    monkeypatch.setattr(model_resolution, "_client", None)
    lines = "Hi, my name is Ada.\nWhat city is the Golden Gate Bridge in?\nAnd the state?\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    db = tmp_path / "chat.db"
    assert main(["chat", "--db", str(db), "--session", "demo", "--compact-at", "40"]) == 0
    captured = capsys.readouterr()
    notices = [line for line in captured.err.splitlines() if line.startswith("· compacted")]
    assert notices, captured.err
    assert captured.out.splitlines() == ["Hello there."] * 3
    sent = [b["messages"] for b in fake.requests() if b.get("messages")]
    assert any({"role": "system", "content": SUMMARY_PREFIX + "Hello there."} in m for m in sent)
