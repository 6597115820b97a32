"""A model spoken to through the chat-completions API of any OpenAI-compatible endpoint.

OpenAI, Gemini, Ollama, vLLM, llama.cpp and most hosted providers serve
``POST {base_url}/chat/completions``; give :class:`OpenAIChatCompletionsModel` an
``AsyncOpenAI`` client pointed at one::

    client = AsyncOpenAI(api_key="...", base_url="https://generativelanguage.googleapis.com/v1beta/openai/")
    model = OpenAIChatCompletionsModel(model="gemini-2.5-flash", openai_client=client)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from threadline.errors import UserError
from threadline.models._chat_convert import (
    chat_settings,
    chat_tools,
    items_to_messages,
    new_item_id,
    response_format,
)
from threadline.models._chat_read import ChatStream, read_completion
from threadline.models._errors import endpoint_url, openai_errors
from threadline.models._log import log_request, log_response
from threadline.models._read import content_type
from threadline.models.base import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    ResponseCompleted,
    TextDelta,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk

__all__ = ["OpenAIChatCompletionsModel"]


class OpenAIChatCompletionsModel:
    """A :class:`~threadline.models.base.Model` backed by ``client.chat.completions.create``.

    ``model`` is the endpoint's model name; ``openai_client`` is an ``AsyncOpenAI`` the caller
    owns (its ``base_url``, key, timeout and retries apply). Errors of the client surface as
    :class:`~threadline.errors.ModelError` subclasses.
    """

    def __init__(self, model: str, openai_client: AsyncOpenAI) -> None:
        self.model = model
        self.openai_client = openai_client

    def __repr__(self) -> str:
        return f"OpenAIChatCompletionsModel(model={self.model!r})"

    def _request_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        if request.previous_response_id is not None or request.conversation_id is not None:
            raise UserError(
                "previous_response_id and conversation_id keep history on the server and need "
                "the Responses API (OpenAIResponsesModel); chat completions cannot use them — "
                "use a session instead"
            )
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": items_to_messages(request.input, request.instructions),
        }
        if request.tools:
            kwargs["tools"] = chat_tools(request.tools)
        if request.output_schema is not None:
            kwargs["response_format"] = response_format(request.output_schema)
        kwargs.update(chat_settings(request.settings, has_tools=bool(request.tools)))
        return kwargs

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        """Send one chat-completions request and convert the reply to items."""
        kwargs = self._request_kwargs(request)
        url = endpoint_url(self.openai_client, "chat/completions")
        log_request(url, kwargs, "messages")
        with openai_errors(self.openai_client, url):
            completion = await self.openai_client.chat.completions.create(**kwargs)
            response = read_completion(completion, self.model)
        log_response(response)
        return response

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream one chat-completions request: text deltas, then the complete response.

        A stream that ends before a chunk with a ``finish_reason`` is a
        :class:`~threadline.errors.ModelError`, not a shorter answer.
        """
        kwargs = self._request_kwargs(request)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        url = endpoint_url(self.openai_client, "chat/completions")
        log_request(url, kwargs, "messages")
        state = ChatStream(message_id=new_item_id("msg"))
        with openai_errors(self.openai_client, url):
            stream = cast(
                "AsyncStream[ChatCompletionChunk]",
                await self.openai_client.chat.completions.create(**kwargs),
            )
        async with stream:
            with openai_errors(self.openai_client, url, midstream=True):
                async for chunk in stream:
                    delta_text = state.add(chunk)
                    if delta_text:
                        yield TextDelta(delta=delta_text, item_id=state.message_id)
                response = state.response(url, content_type(stream))
        log_response(response)
        yield ResponseCompleted(response=response)
