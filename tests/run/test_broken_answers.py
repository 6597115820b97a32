"""A cut-off or malformed model answer fails the run and leaves nothing of its step stored.

The runner saves the user input first, then each completed step as one batch after the model
call returns (DESIGN §4, invariant 1); so a model that raises before its answer is complete
leaves the session holding exactly what it held before the step began.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline import (
    Agent,
    ModelError,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
)
from threadline.testing import ScriptedServer, ServerStep, cut_off, raw, reply, tool_calls

SessionFactory = Callable[[str], Any]
TEXT = "The fog rolls in over the bay every evening"


@function_tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"The weather in {city} is sunny."


@pytest.fixture
def server() -> Any:
    with ScriptedServer() as srv:
        yield srv


def agent_for(server: ScriptedServer, api: str) -> Agent[Any]:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    model: Any = (
        OpenAIChatCompletionsModel(model="m", openai_client=client)
        if api == "chat"
        else OpenAIResponsesModel(model="m", openai_client=client)
    )
    return Agent(name="A", instructions="Be brief.", model=model, tools=[get_weather])


async def run(agent: Agent[Any], session: Any, streamed: bool) -> None:
    if streamed:
        result = Runner.run_streamed(agent, "Weather in Oslo?", session=session)
        async for _ in result.stream_events():
            pass
    else:
        await Runner.run(agent, "Weather in Oslo?", session=session)


BROKEN: dict[str, Callable[[], ServerStep]] = {
    "cut-mid-text": lambda: cut_off(reply(TEXT), after=4),
    "cut-before-end": lambda: cut_off(reply(TEXT), after=-3),
    "cut-mid-call": lambda: cut_off(tool_calls(("get_weather", {"city": "Oslo"})), after=3),
    "broken-transfer": lambda: cut_off(reply(TEXT), after=4, chunked=True),
    "garbage": lambda: raw("<html>502 Bad Gateway</html>", content_type="text/html"),
    "bad-json": lambda: raw('{"id": "chatcmpl-1", "choices": [{"message": '),
}


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("streamed", [True, False], ids=["run_streamed", "run"])
@pytest.mark.parametrize("broken", sorted(BROKEN))
async def test_a_broken_first_answer_stores_only_the_user_input(
    server: ScriptedServer, make_session: SessionFactory, api: str, streamed: bool, broken: str
) -> None:
    session = make_session("s1")
    server.add(BROKEN[broken]())

    with pytest.raises(ModelError):
        await run(agent_for(server, api), session, streamed)

    assert await session.get_items() == [{"role": "user", "content": "Weather in Oslo?"}]


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("streamed", [True, False], ids=["run_streamed", "run"])
async def test_a_broken_second_answer_keeps_the_completed_first_step(
    server: ScriptedServer, make_session: SessionFactory, api: str, streamed: bool
) -> None:
    session = make_session("s2")
    server.add(
        tool_calls(("get_weather", {"city": "Oslo"})),
        cut_off(reply(TEXT), after=-3) if streamed else raw('{"choices": [{"mess'),
    )

    with pytest.raises(ModelError):
        await run(agent_for(server, api), session, streamed)

    items = await session.get_items()
    assert [item.get("type", "message") for item in items] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    assert items[2]["output"] == "The weather in Oslo is sunny."
    assert all(item.get("role") != "assistant" for item in items)
