"""Custom models written against the OpenAI Agents SDK's ``Model`` interface (issue 9).

The runner recognises the SDK's positional ``get_response(system_instructions, input,
model_settings, tools, output_schema, handoffs, tracing, *, previous_response_id,
conversation_id, prompt)`` and wraps such a model, so a custom model ports unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

from threadline import Agent, ModelBehaviorError, Runner, function_tool
from threadline.models.sdk_adapter import SDKModelAdapter, adapt_model, is_sdk_style_model
from threadline.testing import ScriptedModel

from .conftest import SessionFactory


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@dataclass
class Answer:
    """What the SDK's ``ModelResponse`` holds (no SDK import needed)."""

    output: list[Any]
    usage: Any
    response_id: str | None


@dataclass
class Counts:
    requests: int = 1
    input_tokens: int = 3
    output_tokens: int = 2
    total_tokens: int = 5


def message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


@dataclass
class EchoModel:
    """A custom model as an SDK user writes it: positional arguments, Responses items out."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    script: list[list[dict[str, Any]]] = field(default_factory=list)

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> Answer:
        self.calls.append(
            {
                "instructions": system_instructions,
                "input": input,
                "temperature": model_settings.temperature,
                "tools": [(t.name, t.params_json_schema["properties"]) for t in tools],
                "handoffs": [h.tool_name for h in handoffs],
                "schema": None if output_schema is None else output_schema.name(),
                "tracing_disabled": tracing.is_disabled(),
                "previous_response_id": previous_response_id,
                "prompt": prompt,
            }
        )
        output = self.script.pop(0) if self.script else [message("echo")]
        return Answer(output=output, usage=Counts(), response_id=f"resp_{len(self.calls)}")

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> Any:
        for piece in ("Hel", "lo"):
            yield {"type": "response.output_text.delta", "delta": piece, "item_id": "msg_1"}
        yield {
            "type": "response.completed",
            "response": {
                "id": "resp_s",
                "output": [message("Hello")],
                "usage": {"input_tokens": 4, "output_tokens": 1, "total_tokens": 5},
            },
        }


def test_an_sdk_style_model_is_recognised_and_a_threadline_one_is_not() -> None:
    assert is_sdk_style_model(EchoModel())
    assert isinstance(adapt_model(EchoModel()), SDKModelAdapter)
    scripted = ScriptedModel()
    assert not is_sdk_style_model(scripted) and adapt_model(scripted) is scripted


async def test_a_custom_sdk_model_runs_tools_handoffs_and_sessions(
    make_session: SessionFactory,
) -> None:
    helper = Agent(name="Helper", instructions="help", model=EchoModel())
    model = EchoModel(
        script=[
            [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": json.dumps({"city": "Oslo"}),
                }
            ],
            [message("It is sunny in Oslo.")],
        ]
    )
    from threadline import ModelSettings

    agent = Agent(
        name="Main",
        instructions="be brief",
        model=model,
        tools=[get_weather],
        handoffs=[helper],
        model_settings=ModelSettings(temperature=0.2),
    )
    session = make_session("custom-model")
    result = await Runner.run(agent, "weather in Oslo?", session=session)
    assert result.final_output == "It is sunny in Oslo."
    first, second = model.calls
    assert first["instructions"] == "be brief"
    assert first["input"] == [{"role": "user", "content": "weather in Oslo?"}]
    assert first["temperature"] == 0.2
    assert [(name, list(properties)) for name, properties in first["tools"]] == [
        ("get_weather", ["city"])
    ]
    assert first["handoffs"] == ["transfer_to_helper"]
    assert first["tracing_disabled"] is True and first["prompt"] is None
    assert second["input"][-1] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": "sunny in Oslo",
    }
    assert result.usage.requests == 2 and result.usage.total_tokens == 10
    assert [item.get("type", "message") for item in await session.get_items()] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]


async def test_a_custom_sdk_model_streams() -> None:
    streamed = Runner.run_streamed(Agent(name="A", model=EchoModel()), "hi")
    deltas = [
        event.data.delta
        async for event in streamed.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert deltas == ["Hel", "lo"]
    assert streamed.final_output == "Hello"


async def test_structured_output_reaches_the_model_as_the_sdks_schema_object() -> None:
    class City(BaseModel):
        name: str

    model = EchoModel(script=[[message('{"name": "Oslo"}')]])
    result = await Runner.run(Agent(name="A", model=model, output_type=City), "city?")
    assert result.final_output == City(name="Oslo")
    assert model.calls[0]["schema"]


async def test_an_unusable_answer_is_a_model_behavior_error() -> None:
    model = EchoModel(script=[[{"type": "function_call", "call_id": "c", "name": 5}]])
    with pytest.raises(ModelBehaviorError, match="EchoModel"):
        await Runner.run(Agent(name="A", model=model), "hi")


async def test_a_subclass_of_the_sdks_model_runs() -> None:
    from agents import ModelResponse as SdkResponse
    from agents import ModelSettings as SdkSettings
    from agents import Usage as SdkUsage
    from agents.models.interface import Model as SdkModel
    from agents.models.interface import ModelTracing as SdkTracing
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    seen: dict[str, Any] = {}

    class Subclassed(SdkModel):
        async def get_response(  # type: ignore[override]
            self,
            system_instructions: Any,
            input: Any,
            model_settings: Any,
            tools: Any,
            output_schema: Any,
            handoffs: Any,
            tracing: Any,
            *,
            previous_response_id: Any,
            conversation_id: Any,
            prompt: Any,
        ) -> Any:
            seen.update(settings=model_settings, tracing=tracing, input=input)
            text = ResponseOutputText(type="output_text", text="from the SDK", annotations=[])
            item = ResponseOutputMessage(
                id="msg_9", type="message", role="assistant", status="completed", content=[text]
            )
            return SdkResponse(
                output=[item], usage=SdkUsage(requests=1, input_tokens=1), response_id="r9"
            )

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    from threadline import ModelSettings

    agent = Agent(name="A", model=Subclassed(), model_settings=ModelSettings(temperature=0.5))
    result = await Runner.run(agent, "hi")
    assert result.final_output == "from the SDK"
    assert isinstance(seen["settings"], SdkSettings) and seen["settings"].temperature == 0.5
    assert seen["tracing"] is SdkTracing.DISABLED
    assert result.last_response_id == "r9"


async def test_a_custom_model_that_keeps_responses_is_chained() -> None:
    class Chained(EchoModel):
        supports_previous_response_id = True

    call_item = {
        "type": "function_call",
        "call_id": "c1",
        "name": "get_weather",
        "arguments": '{"city": "Rome"}',
    }
    chained = Chained(script=[[call_item], [message("Sunny.")]])
    agent = Agent(name="A", model=chained, tools=[get_weather])
    await Runner.run(agent, "Rome?", auto_previous_response_id=True)
    first, second = chained.calls
    assert first["previous_response_id"] is None
    assert second["previous_response_id"] == "resp_1"
    assert [item["type"] for item in second["input"]] == ["function_call_output"]
    plain = EchoModel(script=[[call_item], [message("Sunny.")]])
    await Runner.run(
        Agent(name="A", model=plain, tools=[get_weather]), "Rome?", auto_previous_response_id=True
    )
    assert plain.calls[1]["previous_response_id"] is None and len(plain.calls[1]["input"]) == 3


def test_detection_reads_the_signature_not_the_name() -> None:
    class Seven:
        async def get_response(self, a: Any, b: Any, c: Any, d: Any, e: Any, f: Any, g: Any) -> Any:
            raise NotImplementedError

    class OneRequest:
        async def get_response(self, request: Any, extra: Any = None) -> Any:
            raise NotImplementedError

    class Static:
        @staticmethod
        async def get_response(system_instructions: Any, *rest: Any, **kw: Any) -> Any:
            raise NotImplementedError

    instance = OneRequest()
    instance.get_response = EchoModel().get_response  # type: ignore[method-assign]
    assert is_sdk_style_model(Seven()) and is_sdk_style_model(Static())
    assert not is_sdk_style_model(OneRequest())
    assert is_sdk_style_model(instance)  # a method set on the instance is looked at
