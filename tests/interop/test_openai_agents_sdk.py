"""Interop with the OpenAI Agents SDK, both directions, through real HTTP.

The SDK's Runner keeps its memory in a threadline session, and threadline's Runner keeps its
memory in the SDK's SQLiteSession; the histories each writes are read back by the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import agents  # openai-agents, a dev (test-only) dependency
import pytest

from threadline import Agent, InMemorySession, Runner, SQLiteSession
from threadline.testing import ScriptedModel, ScriptedServer, reply, tool_calls


@pytest.fixture(autouse=True)
def sdk_tracing_off() -> Iterator[None]:
    agents.set_tracing_disabled(True)
    yield


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def sdk_agent(server: ScriptedServer, **kwargs: Any) -> Any:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    model = agents.OpenAIChatCompletionsModel(model="m", openai_client=client)
    return agents.Agent(name="Assistant", instructions="Be brief.", model=model, **kwargs)


@pytest.mark.parametrize("backend", ["sqlite-file", "memory"])
async def test_sdk_runner_on_a_threadline_session(
    server: ScriptedServer, tmp_path: Path, backend: str
) -> None:
    session: Any = (
        SQLiteSession("interop", tmp_path / "t.db")
        if backend == "sqlite-file"
        else InMemorySession("interop")
    )

    @agents.function_tool
    def weather(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    agent = sdk_agent(server, tools=[weather])
    server.add(
        reply("San Francisco."),
        tool_calls(("weather", {"city": "San Francisco"})),
        reply("Sunny, in California."),
    )
    first = await agents.Runner.run(
        agent, "What city is the Golden Gate Bridge in?", session=session
    )
    second = await agents.Runner.run(
        agent, "What state is it in, and the weather?", session=session
    )
    assert (first.final_output, second.final_output) == ("San Francisco.", "Sunny, in California.")
    sent = server.requests[1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    stored = await session.get_items()
    kinds = [i.get("type", "message") if "role" not in i else i["role"] for i in stored]
    assert kinds == [
        "user",
        "assistant",
        "user",
        "function_call",
        "function_call_output",
        "assistant",
    ]
    # and threadline's Runner continues the SDK's conversation from the same session
    model = ScriptedModel(["About 808,000."])
    third = await Runner.run(
        Agent(name="A", model=model), "What's the population?", session=session
    )
    assert third.final_output == "About 808,000."
    assert len(model.requests[0].input) == len(stored) + 1


async def test_threadline_runner_on_the_sdk_session(tmp_path: Path) -> None:
    sdk_session = agents.SQLiteSession("interop", str(tmp_path / "sdk.db"))
    model = ScriptedModel(["San Francisco.", "California."])
    agent = Agent(name="Assistant", model=model)
    await Runner.run(agent, "What city is the Golden Gate Bridge in?", session=sdk_session)
    await Runner.run(agent, "What state is it in?", session=sdk_session)
    assert [i.get("role") for i in model.requests[1].input] == ["user", "assistant", "user"]
    stored = await sdk_session.get_items()
    assert len(stored) == 4
    assert stored[3]["content"][0]["text"] == "California."
    sdk_session.close()


async def test_sdk_runner_continues_a_threadline_history(
    server: ScriptedServer, tmp_path: Path
) -> None:
    session = SQLiteSession("handover", tmp_path / "t.db")
    await Runner.run(
        Agent(name="A", model=ScriptedModel(["San Francisco."])),
        "What city is the Golden Gate Bridge in?",
        session=session,
    )
    server.add(reply("California."))
    result = await agents.Runner.run(sdk_agent(server), "What state is it in?", session=session)
    assert result.final_output == "California."
    sent = server.requests[0].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[2]["content"] in ("San Francisco.", [{"type": "text", "text": "San Francisco."}])
