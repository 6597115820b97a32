"""Server-sent events: a run's stream events as OpenAI's Responses stream events, and the
encoding of any event on the wire.

:class:`ResponseEvents` numbers every event (``sequence_number`` from 0) and tracks the
output items: ``response.created`` and ``response.in_progress`` open the stream; assistant
text arrives as ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``… then ``…output_text.done``, ``…content_part.done`` and
``…output_item.done``; a function call as ``…output_item.added``,
``response.function_call_arguments.delta`` / ``.done`` and ``…output_item.done``; the stream
ends with ``response.completed``, or ``error`` then ``response.failed``.
"""

from __future__ import annotations

import json
from typing import Any

from ..items import Item, message_text
from ..models.base import TextDelta
from ..run.events import RawResponsesStreamEvent, RunItemStreamEvent, StreamEvent
from ._ids import stamp_id
from ._items import api_item

__all__ = ["ResponseEvents", "encode_event"]


def encode_event(event: dict[str, Any], *, named: bool = True) -> bytes:
    """One server-sent event: ``event: TYPE`` (when ``named``) and ``data: JSON``."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if named:
        return f"event: {event['type']}\ndata: {data}\n\n".encode()
    return f"data: {data}\n\n".encode()


class ResponseEvents:
    """The Responses stream events of one response."""

    def __init__(self) -> None:
        self._sequence = 2  # 0 and 1 are the opening events, sent before the first of the rest
        self._next_index = 0
        self._open: dict[str, Any] | None = None  # the message being streamed
        self.output: list[Item] = []
        """The output items announced so far, in output-index order."""

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def opening(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        """``response.created`` and ``response.in_progress`` for the skeleton ``response``."""
        return [
            {"type": "response.created", "response": response, "sequence_number": 0},
            {"type": "response.in_progress", "response": response, "sequence_number": 1},
        ]

    def completed(self, response: dict[str, Any]) -> dict[str, Any]:
        """``response.completed`` (closing a message left open)."""
        return self._event("response.completed", response=response)

    def failed(
        self, response: dict[str, Any], code: str | None, message: str
    ) -> list[dict[str, Any]]:
        """``error`` then ``response.failed``."""
        return [
            self._event("error", code=code, message=message, param=None),
            self._event("response.failed", response=response),
        ]

    def on_run_event(self, event: StreamEvent) -> list[dict[str, Any]]:
        """The Responses events one run event becomes (none for most)."""
        if isinstance(event, RawResponsesStreamEvent):
            data = event.data
            delta = getattr(data, "delta", None)
            if getattr(data, "type", None) == "response.output_text.delta" and isinstance(
                delta, str
            ):
                item_id = getattr(data, "item_id", None) or None
                return self._text_delta(delta, item_id if isinstance(item_id, str) else None)
            if isinstance(data, TextDelta):  # pragma: no cover - the runner wraps these
                return self._text_delta(data.delta, data.item_id)
            return []
        if isinstance(event, RunItemStreamEvent):
            return self._item(event.item.raw_item)
        return []

    def _text_delta(self, delta: str, item_id: str | None) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._open is not None and item_id is not None and self._open["id"] != item_id:
            events += self._close_message(None)
        if self._open is None:
            opened: dict[str, Any] = {
                "id": item_id or stamp_id({"type": "message"})["id"],
                "index": self._next_index,
                "text": "",
            }
            self._next_index += 1
            self._open = opened
            item = {
                "type": "message",
                "id": opened["id"],
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            events.append(
                self._event("response.output_item.added", output_index=opened["index"], item=item)
            )
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=opened["id"],
                    output_index=opened["index"],
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": []},
                )
            )
        opened = self._open
        opened["text"] += delta
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=opened["id"],
                output_index=opened["index"],
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        )
        return events

    def _close_message(self, item: Item | None) -> list[dict[str, Any]]:
        opened, self._open = self._open, None
        assert opened is not None
        if item is None:
            item = {
                "type": "message",
                "id": opened["id"],
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": opened["text"], "annotations": []}],
            }
        elif not (isinstance(item.get("id"), str) and item["id"]):
            item["id"] = opened["id"]
        text = message_text(item)
        shaped = api_item(item["id"], item)
        self.output.append(item)
        part = {"type": "output_text", "text": text, "annotations": []}
        return [
            self._event(
                "response.output_text.done",
                item_id=shaped["id"],
                output_index=opened["index"],
                content_index=0,
                text=text,
                logprobs=[],
            ),
            self._event(
                "response.content_part.done",
                item_id=shaped["id"],
                output_index=opened["index"],
                content_index=0,
                part=part,
            ),
            self._event("response.output_item.done", output_index=opened["index"], item=shaped),
        ]

    def _item(self, item: Item) -> list[dict[str, Any]]:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role", "assistant") == "assistant":
            if self._open is not None:
                return self._close_message(item)
            text = message_text(item)
            events = self._text_delta(text, stamp_id(item)["id"]) if text else []
            if self._open is None:  # an empty message: announce it as it is
                return events + self._whole(item)
            return events + self._close_message(item)
        events = self._close_message(None) if self._open is not None else []
        return events + self._whole(item)

    def _whole(self, item: Item) -> list[dict[str, Any]]:
        """Events for an item that arrives complete (a call, an output, reasoning)."""
        stamp_id(item)
        index = self._next_index
        self._next_index += 1
        self.output.append(item)
        shaped = api_item(item["id"], item)
        events: list[dict[str, Any]] = []
        if shaped.get("type") == "function_call":
            added = {**shaped, "arguments": "", "status": "in_progress"}
            events.append(self._event("response.output_item.added", output_index=index, item=added))
            arguments = shaped.get("arguments", "")
            if arguments:
                events.append(
                    self._event(
                        "response.function_call_arguments.delta",
                        item_id=shaped["id"],
                        output_index=index,
                        delta=arguments,
                    )
                )
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=shaped["id"],
                    output_index=index,
                    name=shaped.get("name", ""),
                    arguments=arguments,
                )
            )
        else:
            events.append(
                self._event("response.output_item.added", output_index=index, item=shaped)
            )
        events.append(self._event("response.output_item.done", output_index=index, item=shaped))
        return events

    def finish(self) -> list[dict[str, Any]]:
        """Close a message still open (a stream that ended without its item)."""
        return self._close_message(None) if self._open is not None else []
