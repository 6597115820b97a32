"""Read chat-completions answers into items, trusting no field of them.

:func:`read_completion` converts one ``chat.completion``; :class:`ChatStream` folds the chunks
of a streamed one and, at the end, refuses a stream that stopped before any chunk carried a
``finish_reason`` — the only sign of a complete answer every provider sends (the ``[DONE]``
line and the usage chunk after it are optional, and the ``openai`` client ends its iteration on
a closed connection as quietly as on ``[DONE]``). A field of the wrong type raises
:class:`~threadline.models._read.Malformed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from threadline.errors import ModelBehaviorError
from threadline.models._chat_convert import ChatToolCall, output_items
from threadline.models._errors import ended_early
from threadline.models._read import (
    Malformed,
    describe,
    int_field,
    is_object,
    list_field,
    need_str,
    object_field,
    str_field,
)
from threadline.models._read import field as get
from threadline.models.base import ModelResponse
from threadline.usage import Usage

__all__ = ["ChatStream", "read_completion", "read_usage"]


def read_completion(completion: object, model: str) -> ModelResponse:
    """The response a non-streamed ``chat.completion`` describes."""
    if not is_object(completion):
        raise Malformed(f"expected a chat.completion JSON object, got {describe(completion)}")
    error = get(completion, "error")
    if get(completion, "choices") is None and is_object(error):
        reason = str_field(error, "message", "the error") or "no message"
        raise Malformed(f"it holds an error instead of a chat completion ({reason})")
    where = "the chat completion"
    response_id = str_field(completion, "id", where)
    choices = list_field(completion, "choices", where, required=True)
    if not choices:
        raise ModelBehaviorError(
            f"the chat completion {response_id!r} from model {model!r} has no choices"
        )
    if not is_object(choices[0]):
        raise Malformed(f"choice 0 is not an object: got {describe(choices[0])}")
    message = object_field(choices[0], "message", "choice 0", required=True)
    where = "the message of choice 0"
    calls = [
        read_tool_call(call, index, model)
        for index, call in enumerate(list_field(message, "tool_calls", where))
    ]
    return ModelResponse(
        output=output_items(
            str_field(message, "content", where), str_field(message, "refusal", where), calls
        ),
        usage=read_usage(get(completion, "usage"), where="the chat completion"),
        response_id=response_id,
        raw=completion,
    )


def read_tool_call(call: object, index: int, model: str) -> ChatToolCall:
    """One tool call of a completion's message; a missing id is left to be filled in."""
    where = f"tool call {index}"
    if not is_object(call):
        raise Malformed(f"{where} is not an object: got {describe(call)}")
    kind = str_field(call, "type", where)
    if kind not in (None, "function"):
        raise ModelBehaviorError(
            f"model {model!r} returned a tool call of type {kind!r}; "
            "threadline only sends function tools"
        )
    function = object_field(call, "function", where, required=True)
    name = need_str(function, "name", f"the function of {where}", nonempty=True)
    arguments = str_field(function, "arguments", f"the function of {where}") or ""
    return (str_field(call, "id", where) or "", name, arguments)


def read_usage(usage: object, *, where: str) -> Usage:
    """Token counts of a completion or chunk (``None`` when the endpoint sent none)."""
    if usage is None:
        return Usage(requests=1)
    if not is_object(usage):
        raise Malformed(f"the usage of {where} is not an object: got {describe(usage)}")
    where = f"the usage of {where}"
    return Usage(
        requests=1,
        input_tokens=int_field(usage, "prompt_tokens", where),
        output_tokens=int_field(usage, "completion_tokens", where),
        total_tokens=int_field(usage, "total_tokens", where),
    )


@dataclass
class ChatStream:
    """What the chunks of one stream add up to, and whether the stream reached its end."""

    message_id: str
    response_id: str | None = None
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments]
    usage: Usage = field(default_factory=lambda: Usage(requests=1))
    finish_reason: str | None = None
    chunks: int = 0

    def add(self, chunk: object) -> str:
        """Fold ``chunk`` in; return its new text (``""`` when it has none)."""
        where = f"stream chunk {self.chunks}"
        self.chunks += 1
        if not is_object(chunk):
            raise Malformed(f"{where} is not a JSON object: got {describe(chunk)}")
        self.response_id = self.response_id or str_field(chunk, "id", where)
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = read_usage(usage, where=where)
        choices = list_field(chunk, "choices", where)
        for position, choice in enumerate(choices):
            if not is_object(choice):
                raise Malformed(f"{where} choice {position} is not an object: {describe(choice)}")
            self.finish_reason = (
                str_field(choice, "finish_reason", f"{where} choice {position}")
                or self.finish_reason
            )
        if not choices:
            return ""
        delta = object_field(choices[0], "delta", f"{where} choice 0")
        refusal = str_field(delta, "refusal", f"the delta of {where}")
        if refusal:
            self.refusal.append(refusal)
        for position, tool_call in enumerate(list_field(delta, "tool_calls", f"{where} delta")):
            self._add_call(tool_call, position, f"{where} tool call {position}")
        content = str_field(delta, "content", f"the delta of {where}")
        if content:
            self.text.append(content)
            return content
        return ""

    def _add_call(self, tool_call: object, position: int, where: str) -> None:
        if not is_object(tool_call):
            raise Malformed(f"{where} is not an object: got {describe(tool_call)}")
        index = get(tool_call, "index")
        if index is None:
            index = position
        if isinstance(index, bool) or not isinstance(index, int):
            raise Malformed(f"{where} needs a whole number 'index', got {describe(index)}")
        call = self.calls.setdefault(index, ["", "", ""])
        call[0] = str_field(tool_call, "id", where) or call[0]
        function = object_field(tool_call, "function", where)
        call[1] = str_field(function, "name", f"the function of {where}") or call[1]
        call[2] += str_field(function, "arguments", f"the function of {where}") or ""

    def response(self, url: str, content_type: str | None) -> ModelResponse:
        """The complete response the chunks describe; an error if the stream ended early."""
        if self.finish_reason is None:
            got = (
                "no chunk arrived"
                if self.chunks == 0
                else f"it closed after {self.chunks} chunk(s), none with a finish_reason"
            )
            raise ended_early(url, f"{got}, so the answer is incomplete", content_type)
        for index, (_, name, _) in sorted(self.calls.items()):
            if not name:
                raise Malformed(f"streamed tool call {index} never got a function name")
        calls = [(c[0], c[1], c[2]) for _, c in sorted(self.calls.items())]
        output = output_items(
            "".join(self.text), "".join(self.refusal), calls, message_id=self.message_id
        )
        return ModelResponse(output=output, usage=self.usage, response_id=self.response_id)
