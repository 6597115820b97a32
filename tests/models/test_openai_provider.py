"""OpenAIProvider: key resolution, one client per event loop, and the choice of API."""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI

from threadline.errors import ModelNotConfiguredError, UserError
from threadline.items import user_message
from threadline.models.base import Model, ModelProvider, ModelRequest
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.openai_provider import DEFAULT_MODEL, OpenAIProvider
from threadline.models.openai_responses import OpenAIResponsesModel
from threadline.testing.server import ScriptedServer, reply


def test_missing_key_is_one_line_naming_the_variable_and_alternatives() -> None:
    provider = OpenAIProvider()

    with pytest.raises(ModelNotConfiguredError) as caught:
        provider.get_model("gpt-4.1")

    message = str(caught.value)
    assert "OPENAI_API_KEY" in message
    assert "openai_client" in message
    assert "OpenAIChatCompletionsModel" in message
    assert "\n" not in message


def test_constructing_without_a_key_does_not_fail() -> None:
    assert isinstance(OpenAIProvider(), ModelProvider)


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")

    model = OpenAIProvider().get_model("gpt-4.1")

    assert isinstance(model, OpenAIResponsesModel)
    assert model.openai_client.api_key == "env-key"


def test_models_share_one_client() -> None:
    provider = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1")

    first = provider.get_model("a")
    second = provider.get_model("b")

    assert first.openai_client is second.openai_client
    assert (first.model, second.model) == ("a", "b")
    assert isinstance(first, Model)


@pytest.mark.parametrize(
    ("base_url", "use_responses", "expected"),
    [
        (None, None, OpenAIResponsesModel),
        ("https://api.openai.com/v1", None, OpenAIResponsesModel),
        ("http://127.0.0.1:8080/v1", None, OpenAIChatCompletionsModel),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            None,
            OpenAIChatCompletionsModel,
        ),
        (None, False, OpenAIChatCompletionsModel),
        ("http://127.0.0.1:8080/v1", True, OpenAIResponsesModel),
    ],
)
def test_use_responses_selection(
    base_url: str | None, use_responses: bool | None, expected: type
) -> None:
    provider = OpenAIProvider(api_key="k", base_url=base_url, use_responses=use_responses)

    assert type(provider.get_model("m")) is expected


def test_base_url_from_environment_selects_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1")

    model = OpenAIProvider(api_key="k").get_model("m")

    assert isinstance(model, OpenAIChatCompletionsModel)
    assert str(model.openai_client.base_url) == "http://127.0.0.1:1234/v1/"


def test_default_model_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OpenAIProvider(api_key="k").get_model(None).model == DEFAULT_MODEL == "gpt-4.1-mini"
    monkeypatch.setenv("THREADLINE_MODEL", "from-env")
    assert OpenAIProvider(api_key="k").get_model(None).model == "from-env"
    assert OpenAIProvider(api_key="k", default_model="explicit").get_model(None).model == "explicit"


async def test_given_client_is_used_and_decides_the_api(server: ScriptedServer) -> None:
    server.add(reply("through the given client"))
    async with AsyncOpenAI(api_key="mine", base_url=server.base_url) as client:
        provider = OpenAIProvider(openai_client=client)
        model = provider.get_model("local-model")

        response = await model.get_response(
            ModelRequest(instructions=None, input=[user_message("hi")])
        )

    assert isinstance(model, OpenAIChatCompletionsModel)
    assert model.openai_client is client
    assert response.output[0]["content"][0]["text"] == "through the given client"
    assert server.requests[0].headers["authorization"] == "Bearer mine"


def test_client_and_key_together_is_a_user_error() -> None:
    with pytest.raises(UserError, match="either openai_client or api_key/base_url"):
        OpenAIProvider(api_key="k", openai_client=AsyncOpenAI(api_key="k"))


async def test_aclose_closes_only_the_providers_own_client() -> None:
    provider = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1")
    own = provider.get_model("m").openai_client

    await provider.aclose()

    assert own.is_closed()
    assert provider.get_model("m").openai_client is not own
    await provider.aclose()


def test_each_event_loop_gets_its_own_client_closed_with_the_loop() -> None:
    provider = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1")

    async def client() -> AsyncOpenAI:
        model = provider.get_model("a")
        assert provider.get_model("b").openai_client is model.openai_client
        assert not model.openai_client.is_closed()
        return model.openai_client

    first = asyncio.run(client())
    second = asyncio.run(client())

    assert second is not first
    assert first.is_closed() and second.is_closed()  # closed before their loops closed


def test_a_given_client_is_used_on_every_loop_and_never_closed() -> None:
    given = AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")
    provider = OpenAIProvider(openai_client=given)

    async def client() -> AsyncOpenAI:
        await provider.aclose()
        return provider.get_model("m").openai_client

    assert asyncio.run(client()) is given
    assert asyncio.run(client()) is given
    assert provider.get_model("m").openai_client is given
    assert not given.is_closed()
    asyncio.run(given.close())
