"""Compaction through the real ``openai`` client against the scripted server (chat
completions and the Responses API)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline import (
    Agent,
    CompactionSettings,
    InMemoryStore,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    SessionSettings,
)
from threadline.sessions import read_summary
from threadline.sessions._summary import SUMMARY_PREFIX
from threadline.testing import ScriptedServer, error, reply

WORDS = "word " * 60


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def client(server: ScriptedServer) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_the_summary_is_sent_as_a_system_message(server: ScriptedServer, api: str) -> None:
    openai_client = client(server)
    model: Any = (
        OpenAIChatCompletionsModel(model="m", openai_client=openai_client)
        if api == "chat"
        else OpenAIResponsesModel(model="m", openai_client=openai_client)
    )
    agent = Agent(name="A", instructions="Be brief.", model=model)
    session = InMemoryStore().session(
        "s", session_settings=SessionSettings(max_tokens=1200, compact_at=650)
    )
    run_config = RunConfig(compaction=CompactionSettings(keep_tokens=200))
    for index in range(4):
        server.add(reply(f"answer {index}: {WORDS}"))
    server.add(reply("The user asked questions 0 to 3."))  # the summariser: the agent's model
    outcomes = []
    for index in range(4):
        result = await Runner.run(
            agent, f"question {index}: {WORDS}", session=session, run_config=run_config
        )
        assert result.compaction is not None
        outcomes.append(await result.compaction)
    assert [o.status for o in outcomes][-1] == "compacted"
    summariser_body = server.requests[4].body
    assert "question 0:" in str(summariser_body) and "running summary" in str(summariser_body)
    server.add(reply("next answer"))
    await Runner.run(agent, "next", session=session, run_config=run_config)
    body = server.requests[5].body
    sent = body["messages"] if api == "chat" else body["input"]
    summary = await read_summary(session)
    assert summary is not None
    expected = SUMMARY_PREFIX + "The user asked questions 0 to 3."
    if api == "chat":
        assert sent[0] == {"role": "system", "content": "Be brief."}
        assert sent[1] == {"role": "system", "content": expected}
    else:
        assert body["instructions"] == "Be brief."
        assert sent[0]["role"] == "system" and sent[0]["content"] == expected
    assert "question 0:" not in str(sent)  # the covered turns are not sent again
    await openai_client.close()


async def test_a_provider_error_during_compaction_leaves_the_run_alone(
    server: ScriptedServer,
) -> None:
    openai_client = client(server)
    agent = Agent(
        name="A", model=OpenAIChatCompletionsModel(model="m", openai_client=openai_client)
    )
    session = InMemoryStore().session("s", session_settings=SessionSettings(compact_at=500))
    for index in range(3):
        server.add(reply(f"answer {index}: {WORDS}"))
    server.add(error(500, "the summariser broke"))
    results = []
    for index in range(3):
        results.append(await Runner.run(agent, f"question {index}: {WORDS}", session=session))
    outcomes = [await r.compaction for r in results if r.compaction is not None]
    assert outcomes[-1].status == "failed"
    assert [r.final_output for r in results] == [f"answer {i}: {WORDS}" for i in range(3)]
    assert await read_summary(session) is None and len(await session.get_items()) == 6
    await openai_client.close()
