"""openai client failures surface as threadline errors with status, URL and the server's message."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI

from threadline.errors import (
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from threadline.items import user_message
from threadline.models.base import ModelRequest
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.openai_responses import OpenAIResponsesModel
from threadline.testing.server import ScriptedServer, error, reply

REQUEST = ModelRequest(instructions=None, input=[user_message("hi")])


def chat(client: AsyncOpenAI) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(model="m", openai_client=client)


@pytest.fixture
async def retrying_client(server: ScriptedServer) -> AsyncIterator[AsyncOpenAI]:
    openai_client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=2)
    yield openai_client
    await openai_client.close()


async def test_401_is_an_authentication_error_naming_the_key_variable(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(error(401, "Incorrect API key provided: sk-wrong"))

    with pytest.raises(ModelAuthenticationError) as caught:
        await chat(client).get_response(REQUEST)

    err = caught.value
    assert err.status_code == 401
    assert err.url == f"{server.base_url}/chat/completions"
    assert "Incorrect API key provided: sk-wrong" in str(err)
    assert "OPENAI_API_KEY" in str(err)
    assert isinstance(err.__cause__, openai.AuthenticationError)
    assert "\n" not in str(err)


async def test_403_is_an_authentication_error(server: ScriptedServer, client: AsyncOpenAI) -> None:
    server.add(error(403, "project has no access to model m"))

    with pytest.raises(ModelAuthenticationError, match="project has no access") as caught:
        await chat(client).get_response(REQUEST)

    assert caught.value.status_code == 403


async def test_429_then_success_is_retried_by_the_client(
    server: ScriptedServer, retrying_client: AsyncOpenAI
) -> None:
    server.add(error(429, "slow down", retry_after=0), reply("made it"))

    response = await chat(retrying_client).get_response(REQUEST)

    assert response.output[0]["content"][0]["text"] == "made it"
    assert len(server.requests) == 2


async def test_429_after_all_retries_is_a_rate_limit_error(
    server: ScriptedServer, retrying_client: AsyncOpenAI
) -> None:
    server.add(*[error(429, "quota exceeded for m", retry_after=0)] * 3)

    with pytest.raises(ModelRateLimitError) as caught:
        await chat(retrying_client).get_response(REQUEST)

    err = caught.value
    assert err.status_code == 429
    assert "quota exceeded for m" in str(err)
    assert "2 retries" in str(err)
    assert len(server.requests) == 3
    assert server.pending == 0


async def test_500_is_a_model_error_with_status(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(error(500, "the engine overheated"))

    with pytest.raises(ModelError) as caught:
        await chat(client).get_response(REQUEST)

    err = caught.value
    assert type(err) is ModelError
    assert err.status_code == 500
    assert err.url == f"{server.base_url}/chat/completions"
    assert "HTTP 500: the engine overheated" in str(err)


async def test_errors_while_streaming_are_mapped_too(
    server: ScriptedServer, client: AsyncOpenAI
) -> None:
    server.add(error(401, "bad key"), error(503, "overloaded"))

    with pytest.raises(ModelAuthenticationError):
        [event async for event in chat(client).stream_response(REQUEST)]
    with pytest.raises(ModelError, match="HTTP 503: overloaded"):
        model = OpenAIResponsesModel(model="m", openai_client=client)
        [event async for event in model.stream_response(REQUEST)]


async def test_timeout_names_the_timeout_and_url(server: ScriptedServer) -> None:
    server.add(reply("too late", delay=2.0))
    async with AsyncOpenAI(
        api_key="k", base_url=server.base_url, timeout=0.3, max_retries=0
    ) as slow_client:
        with pytest.raises(ModelTimeoutError) as caught:
            await chat(slow_client).get_response(REQUEST)

    err = caught.value
    assert "0.3 s" in str(err)
    assert f"{server.base_url}/chat/completions" in str(err)
    assert isinstance(err.__cause__, openai.APITimeoutError)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_names_the_base_url() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    async with AsyncOpenAI(api_key="k", base_url=base_url, max_retries=0) as dead_client:
        with pytest.raises(ModelConnectionError) as caught:
            await chat(dead_client).get_response(REQUEST)

    err = caught.value
    assert base_url in str(err)
    assert err.url == f"{base_url}/chat/completions"
    assert err.status_code is None
    assert isinstance(err.__cause__, openai.APIConnectionError)


async def test_empty_script_fails_loudly_without_retries(
    server: ScriptedServer, retrying_client: AsyncOpenAI
) -> None:
    with pytest.raises(ModelError, match="the script ran out"):
        await chat(retrying_client).get_response(REQUEST)

    assert len(server.requests) == 1
