"""JSON bodies and SSE events of the OpenAI chat-completions and Responses APIs.

Pure functions used by :mod:`threadline.testing.server`: given what a scripted step says the
model answers (text and/or function calls) and the token counts, build what a real endpoint would
send, as plain dicts. Nothing here does I/O.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Answer",
    "calls_tokens",
    "chat_chunks",
    "chat_completion",
    "count_tokens",
    "encode_sse",
    "error_body",
    "response_events",
    "response_object",
    "split_text",
]

_WORD = re.compile(r"\S+")
# Keys whose values are structure, not text the model reads.
_STRUCTURAL_KEYS = frozenset({"type", "role", "id", "status", "call_id", "tool_call_id"})


@dataclass(frozen=True)
class Answer:
    """What one scripted request answers: text, calls as ``(name, arguments_json)``, token counts.

    ``key`` is a short unique string used to build the ids of the response and its items.
    """

    key: str
    model: str
    text: str | None
    calls: tuple[tuple[str, str], ...]
    input_tokens: int
    output_tokens: int

    def call_id(self, index: int) -> str:
        """The ``call_id`` of function call ``index``."""
        return f"call_{self.key}_{index}"


def count_tokens(value: object) -> int:
    """A plausible token count: the number of words in every string inside ``value``."""
    if isinstance(value, str):
        return len(_WORD.findall(value))
    if isinstance(value, Mapping):
        return sum(count_tokens(v) for k, v in value.items() if k not in _STRUCTURAL_KEYS)
    if isinstance(value, (list, tuple)):
        return sum(count_tokens(v) for v in value)
    return 0


def split_text(text: str, size: int = 0) -> list[str]:
    """Split ``text`` into pieces that join back to it: per word, or per ``size`` characters."""
    if not text:
        return []
    if size > 0:
        return [text[i : i + size] for i in range(0, len(text), size)]
    pieces = re.findall(r"\s*\S+", text)
    rest = text[len("".join(pieces)) :]
    if rest:
        pieces.append(rest)
    return pieces


def error_body(message: str, *, error_type: str, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


# --- chat completions -------------------------------------------------------------------------


def _chat_usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def _finish_reason(answer: Answer) -> str:
    return "tool_calls" if answer.calls else "stop"


def chat_completion(answer: Answer) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.calls:
        message["tool_calls"] = [
            {
                "id": answer.call_id(i),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for i, (name, arguments) in enumerate(answer.calls)
        ]
    return {
        "id": f"chatcmpl-{answer.key}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _finish_reason(answer),
                "logprobs": None,
            }
        ],
        "usage": _chat_usage(answer),
    }


def chat_chunks(answer: Answer, *, include_usage: bool) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer, in order.

    Text comes one word per chunk; each call's first chunk carries its id and name and later
    chunks carry pieces of its arguments, all tagged with the call's index.
    """
    base = {
        "id": f"chatcmpl-{answer.key}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": answer.model,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish_reason}])
        if include_usage:
            body["usage"] = None
        return body

    yield chunk({"role": "assistant", "content": ""})
    for piece in split_text(answer.text or ""):
        yield chunk({"content": piece})
    for index, (name, arguments) in enumerate(answer.calls):
        head = {"index": index, "id": answer.call_id(index), "type": "function"}
        yield chunk({"tool_calls": [dict(head, function={"name": name, "arguments": ""})]})
        for piece in split_text(arguments, size=max(1, len(arguments) // 3 + 1)):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, _finish_reason(answer))
    if include_usage:
        yield dict(base, choices=[], usage=_chat_usage(answer))


# --- Responses API ----------------------------------------------------------------------------


def _message_item(answer: Answer, text: str, status: str) -> dict[str, Any]:
    content = [] if status != "completed" else [_text_part(text)]
    return {
        "id": f"msg_{answer.key}",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(answer: Answer, index: int, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": f"fc_{answer.key}_{index}",
        "type": "function_call",
        "call_id": answer.call_id(index),
        "name": answer.calls[index][0],
        "arguments": arguments,
        "status": status,
    }


def _output_items(answer: Answer) -> list[dict[str, Any]]:
    items = []
    if answer.text is not None:
        items.append(_message_item(answer, answer.text, "completed"))
    for index, (_, arguments) in enumerate(answer.calls):
        items.append(_call_item(answer, index, arguments, "completed"))
    return items


def response_object(
    answer: Answer, request: Mapping[str, Any], *, status: str = "completed"
) -> dict[str, Any]:
    """A ``response`` object; with ``status="in_progress"`` it has no output and no usage."""
    done = status == "completed"
    return {
        "id": f"resp_{answer.key}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": answer.model,
        "instructions": request.get("instructions"),
        "output": _output_items(answer) if done else [],
        "parallel_tool_calls": bool(request.get("parallel_tool_calls", True)),
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "temperature": request.get("temperature"),
        "top_p": request.get("top_p"),
        "max_output_tokens": request.get("max_output_tokens"),
        "text": request.get("text", {"format": {"type": "text"}}),
        "error": None,
        "incomplete_details": None,
        "usage": _responses_usage(answer) if done else None,
    }


def _responses_usage(answer: Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def response_events(answer: Answer, request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The Responses streaming events of an answer, with increasing ``sequence_number``."""
    events: list[dict[str, Any]] = []

    def emit(event_type: str, **fields: Any) -> None:
        events.append({"type": event_type, "sequence_number": len(events), **fields})

    emit("response.created", response=response_object(answer, request, status="in_progress"))
    output_index = 0
    if answer.text is not None:
        item_id = f"msg_{answer.key}"
        where = {"item_id": item_id, "output_index": output_index, "content_index": 0}
        emit(
            "response.output_item.added",
            output_index=output_index,
            item=_message_item(answer, "", "in_progress"),
        )
        emit("response.content_part.added", part=_text_part(""), **where)
        for piece in split_text(answer.text):
            emit("response.output_text.delta", delta=piece, logprobs=[], **where)
        emit("response.output_text.done", text=answer.text, logprobs=[], **where)
        emit("response.content_part.done", part=_text_part(answer.text), **where)
        emit(
            "response.output_item.done",
            output_index=output_index,
            item=_message_item(answer, answer.text, "completed"),
        )
        output_index += 1
    for index, (_, arguments) in enumerate(answer.calls):
        where = {"item_id": f"fc_{answer.key}_{index}", "output_index": output_index}
        emit(
            "response.output_item.added",
            output_index=output_index,
            item=_call_item(answer, index, "", "in_progress"),
        )
        for piece in split_text(arguments, size=max(1, len(arguments) // 3 + 1)):
            emit("response.function_call_arguments.delta", delta=piece, **where)
        emit("response.function_call_arguments.done", arguments=arguments, **where)
        emit(
            "response.output_item.done",
            output_index=output_index,
            item=_call_item(answer, index, arguments, "completed"),
        )
        output_index += 1
    emit("response.completed", response=response_object(answer, request))
    yield from events


def encode_sse(payload: Mapping[str, Any] | str, *, event: str | None = None) -> bytes:
    """One server-sent event: an optional ``event:`` line and a ``data:`` line."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def calls_tokens(calls: Sequence[tuple[str, str]]) -> int:
    """Token count of function calls: the words of their names and arguments."""
    return sum(count_tokens(name) + count_tokens(arguments) for name, arguments in calls)
