"""Models: the provider-neutral interface and the OpenAI-compatible implementations.

The implementations import ``openai`` only when a model is first used.
"""

from .base import (
    Model,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    OutputSchema,
    ResponseCompleted,
    TextDelta,
    ToolSpec,
)
from .openai_chat import OpenAIChatCompletionsModel
from .openai_provider import DEFAULT_MODEL, OpenAIProvider
from .openai_responses import OpenAIResponsesModel
from .settings import ModelSettings

__all__ = [
    "DEFAULT_MODEL",
    "Model",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModelStreamEvent",
    "OpenAIChatCompletionsModel",
    "OpenAIProvider",
    "OpenAIResponsesModel",
    "OutputSchema",
    "ResponseCompleted",
    "TextDelta",
    "ToolSpec",
]
