"""A model spoken to through OpenAI's Responses API (``client.responses.create``).

Threadline's items already are Responses input items, so the history is sent as is (less the
stored items no model reads, see :mod:`threadline.models._sendable`) and the response's output
items come back as plain dicts that can be stored and sent again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from threadline.errors import UserError
from threadline.models._errors import endpoint_url, openai_errors
from threadline.models._log import log_request, log_response
from threadline.models._read import content_type
from threadline.models._responses_read import ResponsesStream, read_response
from threadline.models._sendable import sendable
from threadline.models.base import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    ResponseCompleted,
)
from threadline.models.settings import ModelSettings

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.responses import ResponseStreamEvent

__all__ = ["OpenAIResponsesModel"]

# Settings of the chat-completions API that the Responses API has no parameter for.
_UNSUPPORTED = ("stop", "seed", "frequency_penalty", "presence_penalty")


class OpenAIResponsesModel:
    """A :class:`~threadline.models.base.Model` backed by ``client.responses.create``.

    ``model`` is the model name; ``openai_client`` is an ``AsyncOpenAI`` the caller owns.
    Errors of the client surface as :class:`~threadline.errors.ModelError` subclasses.
    """

    supports_previous_response_id = True
    """The server keeps responses: a run may chain to the previous one
    (``Runner.run(..., auto_previous_response_id=True)``) and send only new items."""

    def __init__(self, model: str, openai_client: AsyncOpenAI) -> None:
        self.model = model
        self.openai_client = openai_client

    def __repr__(self) -> str:
        return f"OpenAIResponsesModel(model={self.model!r})"

    def _request_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "input": [dict(item) for _, item in sendable(request.input)],
        }
        if request.instructions:
            kwargs["instructions"] = request.instructions
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": tool.strict,
                }
                for tool in request.tools
            ]
        if request.output_schema is not None:
            schema = request.output_schema
            kwargs["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": schema.name,
                    "schema": schema.json_schema,
                    "strict": schema.strict,
                }
            }
        if request.previous_response_id is not None:
            kwargs["previous_response_id"] = request.previous_response_id
        if request.conversation_id is not None:
            kwargs["conversation"] = request.conversation_id
        kwargs.update(_settings_kwargs(request.settings, has_tools=bool(request.tools)))
        return kwargs

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        """Send one Responses request and return its output items."""
        kwargs = self._request_kwargs(request)
        url = endpoint_url(self.openai_client, "responses")
        log_request(url, kwargs, "input")
        with openai_errors(self.openai_client, url):
            response = await self.openai_client.responses.create(**kwargs)
            answer = read_response(response, self.model, url)
        log_response(answer)
        return answer

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream one Responses request: text deltas, then the complete response.

        A stream that ends before ``response.completed`` is a
        :class:`~threadline.errors.ModelError`, not a shorter answer.
        """
        kwargs = self._request_kwargs(request)
        kwargs["stream"] = True
        url = endpoint_url(self.openai_client, "responses")
        log_request(url, kwargs, "input")
        state = ResponsesStream(self.model, url)
        with openai_errors(self.openai_client, url):
            stream = cast(
                "AsyncStream[ResponseStreamEvent]",
                await self.openai_client.responses.create(**kwargs),
            )
        async with stream:
            with openai_errors(self.openai_client, url, midstream=True):
                async for event in stream:
                    delta = state.add(event)
                    if delta is not None:
                        yield delta
                response = state.response(content_type(stream))
        log_response(response)
        yield ResponseCompleted(response=response)


def _settings_kwargs(settings: ModelSettings, *, has_tools: bool) -> dict[str, Any]:
    for name in _UNSUPPORTED:
        if getattr(settings, name) is not None:
            raise UserError(
                f"ModelSettings.{name} is not supported by the OpenAI Responses API; remove it, "
                "or use chat completions (OpenAIChatCompletionsModel, or "
                "OpenAIProvider(use_responses=False))"
            )
    kwargs: dict[str, Any] = {}
    if settings.temperature is not None:
        kwargs["temperature"] = settings.temperature
    if settings.top_p is not None:
        kwargs["top_p"] = settings.top_p
    if settings.max_tokens is not None:
        kwargs["max_output_tokens"] = settings.max_tokens
    if settings.tool_choice is not None:
        choice = settings.tool_choice
        kwargs["tool_choice"] = (
            choice
            if choice in ("auto", "required", "none")
            else {"type": "function", "name": choice}
        )
    if settings.parallel_tool_calls is not None and has_tools:
        kwargs["parallel_tool_calls"] = settings.parallel_tool_calls
    if settings.extra_body:
        kwargs["extra_body"] = dict(settings.extra_body)
    return kwargs
