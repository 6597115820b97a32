"""The real embedded model, end to end through the ``openai`` client (needs the ``local`` extra).

The server starts once for the module (a few seconds); each answer takes well under a second
on one thread. Answers are checked for the facts they must contain, not for exact wording.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from threadline import Agent, Runner, SQLiteSession
from threadline.models import local
from threadline.models.base import ModelRequest, OutputSchema
from threadline.models.local._files import prepare_model_file
from threadline.models.local._prompt import PREAMBLE

pytestmark = pytest.mark.local_model

CITY = "What city is the Golden Gate Bridge in?"
STATE = "What state is it in?"
POPULATION = "What's the population?"


@pytest.fixture
async def model(real_server: local.LocalModelServer) -> AsyncIterator[local.LocalChatModel]:
    chat_model = local.local_model(real_server)
    yield chat_model
    await chat_model.openai_client.close()


def _answer(output: list[dict[str, Any]]) -> str:
    texts = [
        part["text"]
        for item in output
        if item.get("type") == "message"
        for part in item["content"]
        if part.get("type") == "output_text"
    ]
    assert len(texts) == 1, output
    return str(texts[0])


async def test_golden_gate_two_turns_then_population(model: local.LocalChatModel) -> None:
    history: list[dict[str, Any]] = [{"role": "user", "content": CITY}]
    first = await model.get_response(ModelRequest(instructions=None, input=history))
    city = _answer(first.output)
    assert "San Francisco" in city

    history += [*first.output, {"role": "user", "content": STATE}]
    second = await model.get_response(ModelRequest(instructions=None, input=history))
    state = _answer(second.output)
    assert "California" in state

    history += [*second.output, {"role": "user", "content": POPULATION}]
    third = await model.get_response(ModelRequest(instructions=None, input=history))
    population = _answer(third.output)
    assert any(ch.isdigit() for ch in population), population  # a number, one line
    assert "\n" not in population and "User:" not in population
    for answer in (city, state, population):
        assert answer == answer.strip()


async def test_a_runner_with_a_sqlite_session_remembers_the_city(
    real_server: local.LocalModelServer, model: local.LocalChatModel, tmp_path: Path
) -> None:
    agent: Agent[Any] = Agent(
        name="Assistant", instructions="You are a helpful assistant.", model=model
    )
    session = SQLiteSession("golden-gate", str(tmp_path / "history.db"))
    first = await Runner.run(agent, CITY, session=session)
    assert "San Francisco" in first.final_output

    streamed = Runner.run_streamed(agent, STATE, session=session)
    deltas = [
        event.data.delta
        async for event in streamed.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert "California" in streamed.final_output
    assert "".join(deltas) == streamed.final_output
    stored = await session.get_items()
    assert [item.get("role") for item in stored] == ["user", "assistant", "user", "assistant"]


async def test_structured_output_matches_the_schema(model: local.LocalChatModel) -> None:
    class Place(BaseModel):
        city: str
        state: str

    schema = OutputSchema(name="place", json_schema=Place.model_json_schema())
    question = "Where is the Golden Gate Bridge? Answer as JSON with the city and the state."
    request = ModelRequest(
        instructions=None, input=[{"role": "user", "content": question}], output_schema=schema
    )
    # The server turns the schema into a grammar: the shape is guaranteed, the facts are not
    # (this small model names the wrong city here), so only the shape is checked.
    place = Place.model_validate_json(_answer((await model.get_response(request)).output))
    assert place.city.strip() and place.state.strip()


def test_the_server_renders_history_as_a_plain_transcript(
    real_server: local.LocalModelServer,
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": CITY},
        {"role": "assistant", "content": "San Francisco."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "SF"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "Foggy, 15 C"},
        {"role": "user", "content": STATE},
    ]
    assert real_server.base_url is not None and real_server.api_key is not None
    request = urllib.request.Request(
        real_server.base_url.removesuffix("/v1") + "/apply-template",
        data=json.dumps({"messages": messages}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {real_server.api_key}",
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        prompt = json.loads(answer.read())["prompt"]
    assert prompt.startswith(PREAMBLE + "\n\nUser: ")
    assert prompt.endswith(
        "\n\nBe brief.\n\n"
        f"User: {CITY}\n"
        "Assistant: San Francisco.\n"
        "User: Weather?\n"
        "Tool result: Foggy, 15 C\n"
        f"User: {STATE}\n"
        "Assistant:"
    )


def test_the_assembled_model_file_is_reused(real_server: local.LocalModelServer) -> None:
    models = real_server.cache / "models"
    path = prepare_model_file(models)
    inode, mtime = path.stat().st_ino, path.stat().st_mtime_ns
    assert prepare_model_file(models) == path
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (inode, mtime)
    assert [p.name for p in models.iterdir()] == [path.name]


def test_close_stops_the_real_server(tmp_path: Path, real_server: local.LocalModelServer) -> None:
    # A second server beside the shared one: its own port, then gone after close().
    other = local.LocalModelServer(cache=real_server.cache)
    try:
        url = other.start()
        assert url != real_server.base_url
        pid = other.pid
        assert pid is not None
    finally:
        other.close()
    assert not other.running and other.pid is None
