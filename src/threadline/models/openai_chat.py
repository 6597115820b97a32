"""A model spoken to through the chat-completions API of any OpenAI-compatible endpoint.

OpenAI, Gemini, Ollama, vLLM, llama.cpp and most hosted providers serve
``POST {base_url}/chat/completions``; give :class:`OpenAIChatCompletionsModel` an
``AsyncOpenAI`` client pointed at one::

    client = AsyncOpenAI(api_key="...", base_url="https://generativelanguage.googleapis.com/v1beta/openai/")
    model = OpenAIChatCompletionsModel(model="gemini-2.5-flash", openai_client=client)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from threadline.errors import ModelBehaviorError, UserError
from threadline.models._chat_convert import (
    ChatToolCall,
    chat_settings,
    chat_tools,
    items_to_messages,
    new_item_id,
    output_items,
    response_format,
)
from threadline.models._errors import openai_errors
from threadline.models.base import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    ResponseCompleted,
    TextDelta,
)
from threadline.usage import Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

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
        with openai_errors(self.openai_client):
            completion = cast(
                "ChatCompletion", await self.openai_client.chat.completions.create(**kwargs)
            )
        if not completion.choices:
            raise ModelBehaviorError(
                f"the chat completion {completion.id!r} from model {self.model!r} has no choices"
            )
        message = completion.choices[0].message
        calls: list[ChatToolCall] = []
        for tool_call in message.tool_calls or []:
            if tool_call.type != "function":
                raise ModelBehaviorError(
                    f"model {self.model!r} returned a tool call of type {tool_call.type!r}; "
                    "threadline only sends function tools"
                )
            function = tool_call.function
            calls.append((tool_call.id, function.name, function.arguments))
        return ModelResponse(
            output=output_items(message.content, message.refusal, calls),
            usage=_usage(completion.usage),
            response_id=completion.id,
            raw=completion,
        )

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream one chat-completions request: text deltas, then the complete response."""
        kwargs = self._request_kwargs(request)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        state = _StreamState(message_id=new_item_id("msg"))
        with openai_errors(self.openai_client):
            stream = cast(
                "AsyncStream[ChatCompletionChunk]",
                await self.openai_client.chat.completions.create(**kwargs),
            )
            async with stream:
                async for chunk in stream:
                    delta_text = state.add(chunk)
                    if delta_text:
                        yield TextDelta(delta=delta_text, item_id=state.message_id)
        yield ResponseCompleted(response=state.response())


@dataclass
class _StreamState:
    """What the chunks of one stream add up to."""

    message_id: str
    response_id: str | None = None
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments]
    usage: Usage = field(default_factory=lambda: Usage(requests=1))

    def add(self, chunk: ChatCompletionChunk) -> str:
        """Fold ``chunk`` in; return its new text (``""`` when it has none)."""
        self.response_id = self.response_id or chunk.id
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        if not chunk.choices:
            return ""
        delta = chunk.choices[0].delta
        if delta.refusal:
            self.refusal.append(delta.refusal)
        for position, tool_call in enumerate(delta.tool_calls or []):
            index = tool_call.index if tool_call.index is not None else position
            call = self.calls.setdefault(index, ["", "", ""])
            if tool_call.id:
                call[0] = tool_call.id
            if tool_call.function is not None:
                if tool_call.function.name:
                    call[1] = tool_call.function.name
                if tool_call.function.arguments:
                    call[2] += tool_call.function.arguments
        if delta.content:
            self.text.append(delta.content)
            return delta.content
        return ""

    def response(self) -> ModelResponse:
        """The complete response the chunks describe."""
        calls = [(c[0], c[1], c[2]) for _, c in sorted(self.calls.items())]
        output = output_items(
            "".join(self.text), "".join(self.refusal), calls, message_id=self.message_id
        )
        return ModelResponse(output=output, usage=self.usage, response_id=self.response_id)


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage(requests=1)
    return Usage(
        requests=1,
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        total_tokens=usage.total_tokens or 0,
    )
