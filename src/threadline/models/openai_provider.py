"""The default model provider: OpenAI, or any OpenAI-compatible endpoint.

A provider owns the ``AsyncOpenAI`` clients it makes: one per running event loop, made on the
first :meth:`OpenAIProvider.get_model` call in that loop, shared by every model it returns there,
and closed when that loop shuts down (``asyncio.run`` ending, or ``Runner.run_sync``'s loop when
its thread ends). A client's connections belong to one loop, so a client never outlives it: the
README's ``asyncio.run(...)`` followed by ``Runner.run_sync(...)`` uses two clients. Models are
cheap; the runner asks for one on every model call, inside the running loop. A client passed in
(``openai_client=``) is the caller's and is used on every loop as it is.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from threadline.errors import ModelNotConfiguredError, UserError
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.openai_responses import OpenAIResponsesModel
from threadline.sessions._per_loop import PerLoop

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
      ``base_url`` must not be given). It is yours: used as it is on whichever loop runs, never
      replaced or closed by the provider; see :attr:`openai_client` for using it across loops.
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
        self._client = openai_client  # the caller's
        self._loop_clients: PerLoop[AsyncOpenAI] = PerLoop(self._make_client, _close_client)
        self._unbound: AsyncOpenAI | None = None  # made by get_model() outside any loop
        self._use_responses = use_responses
        self._default_model = default_model

    def get_model(
        self, model_name: str | None
    ) -> OpenAIChatCompletionsModel | OpenAIResponsesModel:
        """The model called ``model_name`` (the default model when ``None``).

        It uses :attr:`openai_client`: inside an event loop, that loop's client, shared by every
        model made there.

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
        """The client for the running event loop.

        * A client passed as ``openai_client`` is always that client. Its connections belong
          to the loop that opened them, so use it on one loop: create it inside the loop that
          uses it (and close it there, ``async with AsyncOpenAI(...) as client``), or keep to
          one loop (``Runner.run_sync`` keeps one per thread). Reused after ``asyncio.run``
          closed its loop, it fails with ``RuntimeError: Event loop is closed``.
        * Otherwise the provider's client for the running loop, made from the key and base URL
          on first use there and closed when that loop shuts down (or on :meth:`aclose`).
        * Outside any loop (``get_model()`` called from synchronous code), one client kept for
          such calls: like a client you pass, it belongs to the first loop that uses it.
        """
        if self._client is not None:
            return self._client
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._unbound is None:
                self._unbound = self._make_client()
            return self._unbound
        return self._loop_clients.get()

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
        """Close the clients this provider made that this loop can close (yours stays open).

        That is the running loop's client and the one made outside any loop; the clients of
        other loops close when those loops shut down. The provider stays usable: the next
        :meth:`get_model` makes a new client.
        """
        await self._loop_clients.aclose()
        unbound, self._unbound = self._unbound, None
        if unbound is not None:
            await unbound.close()


async def _close_client(client: AsyncOpenAI) -> None:
    await client.close()
