"""The local model's chat-completions path, against a stand-in server (no model needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from threadline.errors import ModelNotConfiguredError, UserError
from threadline.models import local
from threadline.models.base import ModelRequest, ResponseCompleted, TextDelta, ToolSpec
from threadline.models.local._prompt import DEFAULT_MAX_TOKENS, STOP_SEQUENCES
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.settings import ModelSettings

from .conftest import FakeServer

HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "What city is the Golden Gate Bridge in?"},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "San Francisco."}],
    },
    {"role": "user", "content": "What state is it in?"},
]


@pytest.fixture
async def model(fake: FakeServer) -> AsyncIterator[local.LocalChatModel]:
    chat_model = local.local_model(fake.server)
    yield chat_model
    await chat_model.openai_client.close()


def _text(output: list[dict[str, Any]]) -> list[str]:
    return [
        str(part["text"])
        for item in output
        if item.get("type") == "message"
        for part in item["content"]
    ]


async def test_the_first_request_starts_the_server_and_sends_the_history(
    fake: FakeServer, model: local.LocalChatModel
) -> None:
    assert isinstance(model, OpenAIChatCompletionsModel)
    assert not fake.server.running  # local_model() itself starts nothing
    response = await model.get_response(ModelRequest(instructions="Be brief.", input=HISTORY))
    assert fake.server.running
    assert _text(response.output) == ["Hello there."]  # whitespace around the answer removed
    assert response.usage.total_tokens == 10
    body = fake.requests()[-1]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What city is the Golden Gate Bridge in?"},
        {"role": "assistant", "content": "San Francisco."},
        {"role": "user", "content": "What state is it in?"},
    ]
    assert body["model"] == local.LOCAL_MODEL_NAME
    assert body["temperature"] == 0
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["stop"] == list(STOP_SEQUENCES)
    assert str(model.openai_client.base_url).rstrip("/") == fake.server.base_url


async def test_the_callers_settings_win_and_their_stops_are_added(
    fake: FakeServer, model: local.LocalChatModel
) -> None:
    settings = ModelSettings(temperature=0.5, max_tokens=12, stop=["END"])
    await model.get_response(ModelRequest(instructions=None, input=HISTORY, settings=settings))
    body = fake.requests()[-1]
    assert (body["temperature"], body["max_tokens"]) == (0.5, 12)
    assert body["stop"] == [*STOP_SEQUENCES, "END"]


async def test_streaming_drops_the_surrounding_whitespace(
    fake: FakeServer, model: local.LocalChatModel
) -> None:
    deltas: list[str] = []
    completed: list[ResponseCompleted] = []
    async for event in model.stream_response(ModelRequest(instructions=None, input=HISTORY)):
        if isinstance(event, TextDelta):
            deltas.append(event.delta)
        else:
            completed.append(event)
    assert "".join(deltas) == "Hello there."
    assert deltas[0] == "Hel"
    assert all(delta for delta in deltas)
    assert len(completed) == 1
    assert _text(completed[0].response.output) == ["Hello there."]
    assert fake.requests()[-1]["stream"] is True


async def test_tools_are_refused_before_anything_starts(
    fake: FakeServer, model: local.LocalChatModel
) -> None:
    tool = ToolSpec(name="get_weather", description="Weather", parameters={"type": "object"})
    request = ModelRequest(instructions=None, input=HISTORY, tools=[tool])
    with pytest.raises(UserError, match="cannot call tools") as caught:
        await model.get_response(request)
    assert "get_weather" in str(caught.value) and "OPENAI_API_KEY" in str(caught.value)
    assert not fake.server.running


async def test_the_model_follows_the_server_across_a_restart(
    fake: FakeServer, model: local.LocalChatModel
) -> None:
    await model.get_response(ModelRequest(instructions=None, input=HISTORY))
    first_client = model.openai_client
    fake.server.close()
    response = await model.get_response(ModelRequest(instructions=None, input=HISTORY))
    assert _text(response.output) == ["Hello there."]
    assert str(model.openai_client.base_url).rstrip("/") == fake.server.base_url
    assert model.openai_client is not first_client
    assert first_client.is_closed()


async def test_a_running_server_is_bound_at_once(fake: FakeServer) -> None:
    fake.server.start()
    chat_model = local.local_model(fake.server)
    assert str(chat_model.openai_client.base_url).rstrip("/") == fake.server.base_url
    assert chat_model.openai_client.api_key == fake.server.api_key
    await chat_model.openai_client.close()


async def test_local_model_can_start_now_with_progress(fake: FakeServer) -> None:
    stages: list[str] = []
    chat_model = local.local_model(fake.server, progress=lambda s: stages.append(s.stage))
    assert fake.server.running and stages[-1] == "ready"
    await chat_model.openai_client.close()


def test_server_client_needs_a_running_server(fake: FakeServer) -> None:
    with pytest.raises(UserError, match="not running"):
        fake.server.client()


async def test_the_provider_serves_the_local_model_and_refuses_other_names(
    fake: FakeServer, make_fake: Callable[..., FakeServer]
) -> None:
    provider = local.LocalModelProvider(fake.server)
    for name in (None, "local", local.LOCAL_MODEL_NAME):
        chat_model = provider.get_model(name)
        assert isinstance(chat_model, local.LocalChatModel)
        assert chat_model.server is fake.server
        await chat_model.openai_client.close()
    with pytest.raises(ModelNotConfiguredError) as caught:
        provider.get_model("gpt-4o")
    assert "'gpt-4o'" in str(caught.value) and "OPENAI_API_KEY" in str(caught.value)


async def test_a_failed_request_points_to_the_servers_log(
    fake: FakeServer, model: local.LocalChatModel
) -> None:
    from threadline.errors import ModelError

    await model.get_response(ModelRequest(instructions=None, input=HISTORY))
    model.openai_client.api_key = "not-the-servers-key"  # the stand-in answers 401
    with pytest.raises(ModelError) as caught:
        await model.get_response(ModelRequest(instructions=None, input=HISTORY))
    assert str(caught.value).endswith(f"the local model server's log is at {fake.server.log_path}")
    with pytest.raises(ModelError, match="local model server's log is at"):
        async for _ in model.stream_response(ModelRequest(instructions=None, input=HISTORY)):
            pass
