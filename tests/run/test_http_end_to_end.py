"""Runs through the real openai client over real HTTP against the scripted server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent

from threadline import (
    Agent,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelNotConfiguredError,
    ModelRateLimitError,
    ModelTimeoutError,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    UserError,
    function_tool,
)
from threadline.run import model_resolution
from threadline.testing import ScriptedServer, error, reply, tool_calls


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def fresh_default_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_resolution, "_providers", {})
    monkeypatch.setattr(model_resolution, "_key", None)
    monkeypatch.setattr(model_resolution, "_client", None)
    monkeypatch.setattr(model_resolution, "_api", None)


def chat_model(server: ScriptedServer, **client_args: Any) -> OpenAIChatCompletionsModel:
    client_args.setdefault("max_retries", 0)
    client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, **client_args)
    return OpenAIChatCompletionsModel(model="test-model", openai_client=client)


@function_tool
def get_weather(city: str) -> str:
    """Get the weather for a city.

    Args:
        city: The city name.
    """
    return f"The weather in {city} is sunny."


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_tools_and_agent_as_tool_and_handoff_over_http(server: ScriptedServer) -> None:
    model = chat_model(server)
    math = Agent(name="Math Assistant", instructions="Solve math.", model=model)
    main = Agent(
        name="Helpful Assistant",
        instructions="Use tools when needed.",
        model=model,
        tools=[get_weather, math.as_tool("math_assistant", "Solves math.")],
        handoffs=[math],
    )
    server.add(
        tool_calls(("get_weather", {"city": "Tokyo"}), ("math_assistant", {"input": "2+2"})),
        reply("4"),  # the math agent, called as a tool
        tool_calls(("transfer_to_math_assistant", {})),
        reply("Sunny in Tokyo, and 2+2=4."),
    )
    result = await Runner.run(main, "Weather in Tokyo, and 2+2?")
    assert result.final_output == "Sunny in Tokyo, and 2+2=4."
    assert result.last_agent is math
    assert result.usage.requests == 4
    assert result.usage.input_tokens > 0
    # the weather and math outputs went back to the model in one request, as tool messages
    third = server.requests[2].body["messages"]
    tool_messages = [m for m in third if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["The weather in Tokyo is sunny.", "4"]
    assert {t["function"]["name"] for t in server.requests[0].body["tools"]} == {
        "get_weather",
        "math_assistant",
        "transfer_to_math_assistant",
    }
    assert server.requests[3].body["messages"][0] == {"role": "system", "content": "Solve math."}


async def test_malformed_tool_arguments_reach_the_model_as_an_error(server: ScriptedServer) -> None:
    server.add(tool_calls(("add", "{not json")), tool_calls(("add", {"a": 1, "b": 2})), reply("3"))
    result = await Runner.run(Agent(name="A", model=chat_model(server), tools=[add]), "1+2")
    assert result.final_output == "3"
    error_output = server.requests[1].body["messages"][-1]
    assert error_output["role"] == "tool" and "invalid arguments" in error_output["content"]
    assert server.requests[2].body["messages"][-1]["content"] == "3"


async def test_streaming_over_http(server: ScriptedServer) -> None:
    server.add(tool_calls(("get_weather", {"city": "Oslo"})), reply("It is sunny in Oslo today."))
    agent = Agent(name="A", model=chat_model(server), tools=[get_weather])
    result = Runner.run_streamed(agent, "Weather in Oslo?")
    deltas = [
        e.data.delta
        async for e in result.stream_events()
        if e.type == "raw_response_event" and isinstance(e.data, ResponseTextDeltaEvent)
    ]
    assert "".join(deltas) == "It is sunny in Oslo today."
    assert len(deltas) > 1
    assert result.final_output == "It is sunny in Oslo today."
    assert all(r.body.get("stream") is True for r in server.requests)


async def test_responses_api_over_http(server: ScriptedServer) -> None:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    model = OpenAIResponsesModel(model="test-model", openai_client=client)
    server.add(tool_calls(("get_weather", {"city": "Rome"})), reply("Sunny."))
    result = await Runner.run(Agent(name="A", model=model, tools=[get_weather]), "Rome?")
    assert result.final_output == "Sunny."
    assert server.requests[0].path.endswith("/responses")
    second_input = server.requests[1].body["input"]
    assert second_input[-1]["type"] == "function_call_output"


async def test_401_is_one_clear_error(server: ScriptedServer) -> None:
    server.add(error(401, "Incorrect API key provided"))
    with pytest.raises(ModelAuthenticationError, match="Incorrect API key") as info:
        await Runner.run(Agent(name="A", model=chat_model(server)), "hi")
    assert info.value.status_code == 401


async def test_429_is_retried_by_the_client(server: ScriptedServer) -> None:
    server.add(error(429, "slow down", retry_after=0), reply("finally"))
    result = await Runner.run(Agent(name="A", model=chat_model(server, max_retries=2)), "hi")
    assert result.final_output == "finally"
    assert len(server.requests) == 2


async def test_429_after_retries_is_a_rate_limit_error(server: ScriptedServer) -> None:
    server.add(*(error(429, "slow down", retry_after=0) for _ in range(2)))
    with pytest.raises(ModelRateLimitError):
        await Runner.run(Agent(name="A", model=chat_model(server, max_retries=1)), "hi")


async def test_500_is_a_model_error(server: ScriptedServer) -> None:
    server.add(error(500, "internal failure"))
    with pytest.raises(ModelError, match="internal failure") as info:
        await Runner.run(Agent(name="A", model=chat_model(server)), "hi")
    assert info.value.status_code == 500


async def test_timeout_is_a_model_timeout_error(server: ScriptedServer) -> None:
    server.add(reply("late", delay=1.5))
    with pytest.raises(ModelTimeoutError):
        await Runner.run(Agent(name="A", model=chat_model(server, timeout=0.3)), "hi")


async def test_unreachable_server_names_the_url() -> None:
    client = AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0)
    model = OpenAIChatCompletionsModel(model="m", openai_client=client)
    with pytest.raises(ModelConnectionError, match=r"127\.0\.0\.1:9"):
        await Runner.run(Agent(name="A", model=model), "hi")


async def test_model_provider_may_be_an_async_openai_client(server: ScriptedServer) -> None:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    server.add(reply("hello"))
    agent = Agent(name="A", model="some-model")
    result = await Runner.run(agent, "hi", run_config=RunConfig(model_provider=client))
    assert result.final_output == "hello"
    assert server.requests[0].body["model"] == "some-model"


async def test_default_provider_reads_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("THREADLINE_MODEL", "env-model")
    server.add(reply("from env"))
    result = await Runner.run(Agent(name="A"), "hi")
    assert result.final_output == "from env"
    assert server.requests[0].body["model"] == "env-model"
    assert server.requests[0].headers["authorization"] == "Bearer env-key"


async def test_no_model_configured_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_resolution, "_local_provider", lambda: None)
    with pytest.raises(ModelNotConfiguredError, match="OPENAI_API_KEY") as info:
        await Runner.run(Agent(name="A"), "hi")
    message = str(info.value)
    assert "Agent(model=" in message and "threadline[local]" in message


async def test_set_default_openai_client_and_api(server: ScriptedServer) -> None:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    model_resolution.set_default_openai_client(client)
    model_resolution.set_default_openai_api("responses")
    server.add(reply("via responses"))
    result = await Runner.run(Agent(name="A"), "hi")
    assert result.final_output == "via responses"
    assert server.requests[0].path.endswith("/responses")


def test_structured_output_request_shape(server: ScriptedServer) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    server.add(reply(json.dumps({"name": "San Francisco"})))
    agent = Agent(name="A", model=chat_model(server), output_type=City)
    result = Runner.run_sync(agent, "city?")
    assert result.final_output == City(name="San Francisco")
    fmt = server.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True


def responses_model(server: ScriptedServer) -> OpenAIResponsesModel:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    return OpenAIResponsesModel(model="test-model", openai_client=client)


async def test_previous_response_id_sends_only_new_items(server: ScriptedServer) -> None:
    server.add(tool_calls(("get_weather", {"city": "Rome"})), reply("Sunny."))
    agent = Agent(name="A", model=responses_model(server), tools=[get_weather])
    result = await Runner.run(agent, "Rome?", previous_response_id="resp_earlier")
    assert result.final_output == "Sunny."
    first, second = (r.body for r in server.requests)
    assert first["previous_response_id"] == "resp_earlier"
    assert first["input"] == [{"role": "user", "content": "Rome?"}]
    assert second["previous_response_id"] == result.raw_responses[0].response_id
    assert [i["type"] for i in second["input"]] == ["function_call_output"]
    assert result.last_response_id == result.raw_responses[1].response_id


async def test_conversation_id_sends_only_new_items(server: ScriptedServer) -> None:
    server.add(tool_calls(("get_weather", {"city": "Rome"})), reply("Sunny."))
    agent = Agent(name="A", model=responses_model(server), tools=[get_weather])
    await Runner.run(agent, "Rome?", conversation_id="conv_1")
    first, second = (r.body for r in server.requests)
    assert first["conversation"] == second["conversation"] == "conv_1"
    assert "previous_response_id" not in second
    assert [i["type"] for i in second["input"]] == ["function_call_output"]


async def test_server_state_needs_the_responses_api(server: ScriptedServer) -> None:
    with pytest.raises(UserError, match="Responses API"):
        await Runner.run(Agent(name="A", model=chat_model(server)), "hi", previous_response_id="r")
    assert server.requests == []


async def test_session_and_server_state_do_not_mix() -> None:
    from threadline import InMemorySession

    with pytest.raises(UserError, match="cannot be combined"):
        await Runner.run(
            Agent(name="A", model="m"), "hi", session=InMemorySession("s"), conversation_id="c"
        )
