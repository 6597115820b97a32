"""The model interface the runner talks to, independent of any provider.

A :class:`Model` takes a :class:`ModelRequest` (instructions, Responses-format input items,
tools, settings, optional output schema) and returns a :class:`ModelResponse` whose ``output``
is a list of Responses-format items, or streams :class:`TextDelta` events followed by one
:class:`ResponseCompleted`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..items import Item
from ..usage import Usage
from .settings import ModelSettings

__all__ = [
    "Model",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "ModelStreamEvent",
    "OutputSchema",
    "ResponseCompleted",
    "TextDelta",
    "ToolSpec",
]


@dataclass(frozen=True)
class ToolSpec:
    """A function tool as the model sees it: name, description and JSON schema.

    ``handoff`` marks the tool that hands the conversation to another agent (a model that
    treats handoffs apart, as the OpenAI Agents SDK's interface does, is told which).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = True
    handoff: bool = False


@dataclass(frozen=True)
class OutputSchema:
    """A JSON schema the final answer must follow (structured output)."""

    name: str
    json_schema: dict[str, Any]
    strict: bool = True


@dataclass
class ModelRequest:
    """Everything one model call needs."""

    instructions: str | None
    input: Sequence[Item]
    settings: ModelSettings = field(default_factory=ModelSettings)
    tools: Sequence[ToolSpec] = ()
    output_schema: OutputSchema | None = None
    previous_response_id: str | None = None
    """Server-side state (Responses API): continue after this response; ``input`` is new items only."""
    conversation_id: str | None = None
    """Server-side state (Responses API): a stored conversation; ``input`` is new items only."""


@dataclass
class ModelResponse:
    """One model call's result: output items, usage, and the provider's raw response."""

    output: list[Item]
    usage: Usage = field(default_factory=Usage)
    response_id: str | None = None
    raw: Any = None


@dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's text as it is generated."""

    delta: str
    item_id: str | None = None
    type: str = "response.output_text.delta"


@dataclass(frozen=True)
class ResponseCompleted:
    """The last event of a stream: the complete response."""

    response: ModelResponse
    type: str = "response.completed"


ModelStreamEvent = TextDelta | ResponseCompleted


@runtime_checkable
class Model(Protocol):
    """A model the runner can call, with and without streaming."""

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        """Call the model once and return its complete response."""
        ...

    def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Call the model once, yielding text deltas, then one :class:`ResponseCompleted`."""
        ...


@runtime_checkable
class ModelProvider(Protocol):
    """Turns a model name into a :class:`Model`."""

    def get_model(self, model_name: str | None) -> Model:
        """The model called ``model_name``, or the provider's default when ``None``."""
        ...
