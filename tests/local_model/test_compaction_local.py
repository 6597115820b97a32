"""Compaction on the local model's path (the offline chat), against its stand-in server."""

from __future__ import annotations

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
