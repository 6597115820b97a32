"""Read Responses API answers into items, trusting no field of them.

:func:`read_response` converts one ``response`` object into plain-dict output items, checking
the fields the runner and the stores rely on (every item's ``type``; a function call's
``call_id``, ``name`` and ``arguments``; a message's ``role`` and content parts). Item types it
does not know pass through unchanged. :class:`ResponsesStream` reads the streaming events and
knows whether ``response.completed`` arrived. A field of the wrong type raises
:class:`~threadline.models._read.Malformed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadline.errors import ModelError
from threadline.items import MESSAGE_ROLES, Item
from threadline.models._errors import ended_early
from threadline.models._read import (
    Malformed,
    describe,
    int_field,
    is_model,
    is_object,
    list_field,
    need_str,
    str_field,
)
from threadline.models._read import field as get
from threadline.models.base import ModelResponse, TextDelta
from threadline.usage import Usage

__all__ = ["ResponsesStream", "read_response"]


def read_response(response: object, model: str, url: str) -> ModelResponse:
    """The output items, usage and id of one ``response`` object."""
    if not is_object(response):
        raise Malformed(f"expected a response JSON object, got {describe(response)}")
    where = "the response"
    error = get(response, "error")
    if get(response, "output") is None and get(response, "status") is None and is_object(error):
        message = str_field(error, "message", "the error") or "no message"
        raise Malformed(f"it holds an error instead of a response ({message})")
    if str_field(response, "status", where) == "failed":
        raise failure(response, model, url)
    response_id = need_str(response, "id", where, nonempty=True)
    output = [
        _output_item(item, index)
        for index, item in enumerate(list_field(response, "output", where, required=True))
    ]
    usage = Usage(requests=1)
    counts = get(response, "usage")
    if counts is not None:
        if not is_object(counts):
            raise Malformed(f"the usage of the response is not an object: {describe(counts)}")
        usage = Usage(
            requests=1,
            input_tokens=int_field(counts, "input_tokens", "the usage"),
            output_tokens=int_field(counts, "output_tokens", "the usage"),
            total_tokens=int_field(counts, "total_tokens", "the usage"),
        )
    return ModelResponse(output=output, usage=usage, response_id=response_id, raw=response)


def failure(response: object, model: str, url: str) -> ModelError:
    """The error for a ``failed`` response: the server's reason, the response id."""
    message = str_field(get(response, "error"), "message", "the error") or "no reason given"
    response_id = get(response, "id")
    return ModelError(f"model {model!r} failed response {response_id!r}: {message}", url=url)


def _output_item(item: object, index: int) -> Item:
    where = f"output item {index}"
    if is_model(item):
        try:
            data: dict[str, Any] = item.model_dump(
                mode="json", by_alias=True, exclude_unset=True, exclude_none=True, warnings=False
            )
        except (TypeError, ValueError) as exc:
            raise Malformed(f"{where} cannot be read ({type(exc).__name__}: {exc})") from exc
    elif isinstance(item, Mapping):
        data = dict(item)
    else:
        raise Malformed(f"{where} is not a JSON object: got {describe(item)}")
    kind = need_str(data, "type", where, nonempty=True)
    where = f"{where} ({kind})"
    if kind == "function_call":
        need_str(data, "call_id", where, nonempty=True)
        need_str(data, "name", where, nonempty=True)
        need_str(data, "arguments", where)
    elif kind == "message":
        role = need_str(data, "role", where)
        if role not in MESSAGE_ROLES:
            raise Malformed(f"{where} has unknown role {role!r}")
        for part_index, part in enumerate(list_field(data, "content", where, required=True)):
            _content_part(part, f"{where} content part {part_index}")
    return data


def _content_part(part: object, where: str) -> None:
    if not isinstance(part, Mapping):
        raise Malformed(f"{where} is not an object: got {describe(part)}")
    kind = need_str(part, "type", where, nonempty=True)
    if kind == "output_text":
        need_str(part, "text", where)
    elif kind == "refusal":
        need_str(part, "refusal", where)


class ResponsesStream:
    """Reads the events of one Responses stream; :meth:`response` is the completed response."""

    def __init__(self, model: str, url: str) -> None:
        self.model = model
        self.url = url
        self.events = 0
        self.final: ModelResponse | None = None

    def add(self, event: object) -> TextDelta | None:
        """Take in one event; return the text delta it carries, if it is one."""
        where = f"stream event {self.events}"
        self.events += 1
        if not is_object(event):
            raise Malformed(f"{where} is not a JSON object: got {describe(event)}")
        kind = need_str(event, "type", where, nonempty=True)
        if kind == "response.output_text.delta":
            delta = need_str(event, "delta", f"{where} ({kind})")
            return TextDelta(delta=delta, item_id=str_field(event, "item_id", where))
        if kind in ("response.completed", "response.incomplete"):
            self.final = read_response(get(event, "response"), self.model, self.url)
        elif kind == "response.failed":
            raise failure(get(event, "response"), self.model, self.url)
        elif kind == "error":
            message = get(event, "message") or get(get(event, "error"), "message")
            raise ModelError(
                f"model {self.model!r} at {self.url} reported an error while streaming: "
                f"{message if isinstance(message, str) else 'no message'}",
                url=self.url,
            )
        return None

    def response(self, content_type: str | None) -> ModelResponse:
        """The completed response; an error if the stream ended before it."""
        if self.final is None:
            got = (
                "no event arrived"
                if self.events == 0
                else f"it closed after {self.events} event(s), before response.completed"
            )
            raise ended_early(self.url, f"{got} (model {self.model!r})", content_type)
        return self.final
