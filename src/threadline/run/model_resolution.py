"""Which model serves an agent in a run."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..models.base import Model, ModelProvider
from .config import RunConfig

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["default_provider", "resolve_model", "resolve_provider"]

_default: ModelProvider | None = None
_default_lock = threading.Lock()


def default_provider() -> ModelProvider:
    """The process-wide provider used when a run names none (configured from the environment)."""
    global _default
    with _default_lock:
        if _default is None:
            from ..models.openai_provider import OpenAIProvider

            _default = OpenAIProvider()
        return _default


def resolve_provider(value: Any) -> ModelProvider:
    """A provider from ``RunConfig.model_provider``: a provider, an ``AsyncOpenAI``, or ``None``."""
    if value is None:
        return default_provider()
    if isinstance(value, ModelProvider):
        return value
    if hasattr(value, "chat") and hasattr(value, "base_url"):
        from ..models.openai_provider import OpenAIProvider

        return OpenAIProvider(openai_client=value)
    raise UserError(
        f"RunConfig.model_provider must be a ModelProvider or an AsyncOpenAI client, "
        f"got {type(value).__name__}"
    )


def resolve_model(agent: Agent[Any], config: RunConfig) -> Model:
    """``config.model`` if set, else the agent's model; names go through the provider."""
    chosen = config.model if config.model is not None else agent.model
    if chosen is not None and not isinstance(chosen, str):
        if isinstance(chosen, Model):
            return chosen
        raise UserError(
            f"agent {agent.name!r}: model must be a model name or a Model, "
            f"got {type(chosen).__name__}"
        )
    return resolve_provider(config.model_provider).get_model(chosen)
