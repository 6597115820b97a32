"""The default model provider: OpenAI, or any OpenAI-compatible endpoint.

One provider owns one ``AsyncOpenAI`` client, created on the first :meth:`OpenAIProvider.get_model`
call and shared by every model it returns; models themselves are cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from threadline.errors import ModelNotConfiguredError, UserError
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.openai_responses import OpenAIResponsesModel

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["DEFAULT_MODEL", "OpenAIProvider"]

DEFAULT_MODEL = "gpt-4.1-mini"
"""The model used when neither the agent, ``default_model`` nor ``THREADLINE_MODEL`` names one."""

_OPENAI_HOST = "api.openai.com"


class OpenAIProvider:
    """A :class:`~threadline.models.base.ModelProvider` for OpenAI-compatible endpoints.

    * ``api_key`` — else ``OPENAI_API_KEY``; ``base_url`` — else ``OPENAI_BASE_URL``, else OpenAI.
    * ``openai_client`` — use this client instead of building one (then ``api_key`` and
      ``base_url`` must not be given).
    * ``use_responses`` — ``True`` for the Responses API, ``False`` for chat completions;
      ``None`` picks the Responses API for api.openai.com and chat completions elsewhere.
    * ``default_model`` — the model for ``get_model(None)``; else ``THREADLINE_MODEL``, else
      :data:`DEFAULT_MODEL`.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        openai_client: AsyncOpenAI | None = None,
        use_responses: bool | None = None,
        default_model: str | None = None,
    ) -> None:
        if openai_client is not None and (api_key is not None or base_url is not None):
            raise UserError(
                "OpenAIProvider: pass either openai_client or api_key/base_url, not both "
                "(configure the key and URL on the client you pass)"
            )
        self._api_key = api_key
        self._base_url = base_url
        self._client = openai_client
        self._owns_client = False
        self._use_responses = use_responses
        self._default_model = default_model

    def get_model(
        self, model_name: str | None
    ) -> OpenAIChatCompletionsModel | OpenAIResponsesModel:
        """The model called ``model_name`` (the default model when ``None``) on the shared client.

        Raises :class:`~threadline.errors.ModelNotConfiguredError` when no API key is available.
        """
        name = model_name or self.default_model
        client = self.openai_client
        if self.uses_responses:
            return OpenAIResponsesModel(model=name, openai_client=client)
        return OpenAIChatCompletionsModel(model=name, openai_client=client)

    @property
    def default_model(self) -> str:
        """The model name used for ``get_model(None)``."""
        return self._default_model or os.environ.get("THREADLINE_MODEL") or DEFAULT_MODEL

    @property
    def uses_responses(self) -> bool:
        """Whether models from this provider use the Responses API (else chat completions)."""
        if self._use_responses is not None:
            return self._use_responses
        if self._client is not None:
            base_url: str | None = str(self._client.base_url)
        else:
            base_url = self._base_url or os.environ.get("OPENAI_BASE_URL") or None
        return base_url is None or urlsplit(base_url).hostname == _OPENAI_HOST

    @property
    def openai_client(self) -> AsyncOpenAI:
        """The provider's client, created on first use from the key and base URL."""
        if self._client is None:
            self._client = self._make_client()
            self._owns_client = True
        return self._client

    def _make_client(self) -> AsyncOpenAI:
        api_key = self._api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ModelNotConfiguredError(
                "no OpenAI API key: set OPENAI_API_KEY, pass OpenAIProvider(api_key=...) or "
                "openai_client=AsyncOpenAI(...), or give the agent an explicit model such as "
                "OpenAIChatCompletionsModel(model=..., openai_client=...)"
            )
        from openai import AsyncOpenAI

        base_url = self._base_url or os.environ.get("OPENAI_BASE_URL") or None
        return AsyncOpenAI(api_key=api_key, base_url=base_url)

    async def aclose(self) -> None:
        """Close the client if this provider created it (a client passed in stays open)."""
        if self._client is not None and self._owns_client:
            await self._client.close()
            self._client = None
            self._owns_client = False
