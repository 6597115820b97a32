"""Which stored items a model is sent, and in what shape (pure functions).

A session stores what the OpenAI Agents SDK stores, which includes items no model API reads:
a chat-style ``{"role": "tool", ...}`` result, an app's own metadata, an unknown ``type``, a
message whose ``content`` is ``None``, a ``function_call`` without ``arguments``. Before a
request is built, :func:`sendable` turns such a history into Responses input items a model
accepts: what has a clear Responses spelling is converted, the rest is left out of the request
(never out of the session) with one debug line on ``threadline.models`` per item.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from threadline.items import readable_problem
from threadline.models._log import logger

__all__ = ["sendable"]


def _as_text(value: object) -> str:
    """A tool result that is neither text nor a list of parts, as text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _skip(index: int, item: Mapping[str, Any], why: str) -> None:
    label = item.get("type") or item.get("role") or "untyped"
    logger.debug("threadline: item %d (%s) is not sent to the model: %s", index, label, why)


def sendable(items: Sequence[Any]) -> list[tuple[int, Any]]:
    """The items of ``items`` to send, each with its index in ``items`` (for error messages).

    Kept as they are: messages of a known role with text or parts, and every Responses item
    type. Converted: a ``{"role": "tool", "tool_call_id": ..., "content": ...}`` result whose
    call is in ``items`` becomes a ``function_call_output``; a missing ``arguments`` becomes
    ``"{}"``; a tool output that is neither text nor a list becomes text. Left out (logged):
    a message without content, an unknown role or type, an item with neither ``type`` nor
    ``role``. Anything that is not a mapping is passed on for the caller to refuse.
    """
    calls = {
        item["call_id"]
        for item in items
        if isinstance(item, Mapping)
        and item.get("type") == "function_call"
        and isinstance(item.get("call_id"), str)
    }
    out: list[tuple[int, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            out.append((index, item))
            continue
        converted = _convert(index, item, calls)
        if converted is not None:
            out.append((index, converted))
    return out


def _convert(index: int, item: Mapping[str, Any], calls: set[str]) -> Any:
    if item.get("type") in (None, "message") and item.get("role") == "tool":
        return _tool_role(index, item, calls)
    problem = readable_problem(item)
    if problem is not None:
        _skip(index, item, f"it {problem}")
        return None
    item_type = item.get("type")
    if item_type == "function_call" and not isinstance(item.get("arguments"), str):
        return {**item, "arguments": "{}"}
    if item_type == "function_call_output" and not isinstance(item.get("output"), (str, list)):
        return {**item, "output": _as_text(item.get("output"))}
    return item


def _tool_role(index: int, item: Mapping[str, Any], calls: set[str]) -> Any:
    """A chat-completions tool message as the ``function_call_output`` it stands for."""
    call_id = item.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in calls:
        _skip(index, item, "a chat-style tool result whose function_call is not in the history")
        return None
    content = item.get("content")
    output = content if isinstance(content, (str, list)) else _as_text(content)
    return {"type": "function_call_output", "call_id": call_id, "output": output}
