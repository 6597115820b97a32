"""Items between the store and the wire: request input → stored items, stored items → the
item objects OpenAI's API returns (conversation items, response output and input items).

Stored items stay what the library stores (the Responses input format, plus an ``"id"``); the
wire shape is made on the way out: a message always has ``type``, ``id``, ``status`` and a
list of content parts (``input_text`` for user, system and developer text, ``output_text``
for assistant text); calls and outputs get ``id`` and ``status``.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InvalidItemError, UserError
from ..items import Item, validate_item
from ..models._chat_convert import items_to_messages
from ._errors import ApiError, bad_request
from ._ids import stamp_id
from ._limits import Limits

__all__ = ["api_item", "input_items", "metadata_of"]

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TYPES = frozenset({"function_call", "function_call_output"})
_FIELDS = {
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("call_id", "output"),
}


def input_items(value: object, limits: Limits, param: str = "input") -> list[Item]:
    """The items a request's ``input`` (a string or a list of items) stores, ids stamped.

    A string is one user message. Each item must be a JSON object the library would store;
    an ``item_reference`` is refused (items are not looked up by id), as are more items than
    ``limits.max_items``.
    """
    if isinstance(value, str):
        return [stamp_id({"role": "user", "content": value})]
    if not isinstance(value, list):
        raise bad_request(f"'{param}' must be a string or an array of items", param=param)
    if len(value) > limits.max_items:
        raise bad_request(
            f"'{param}' holds {len(value)} items, more than the {limits.max_items} this server "
            "accepts in one request",
            param=param,
        )
    items: list[Item] = []
    for index, raw in enumerate(value):
        where = f"{param}[{index}]"
        if not isinstance(raw, dict):
            raise bad_request(f"'{where}' must be an object", param=where)
        item = copy.deepcopy(raw)
        kind = item.get("type")
        if kind == "item_reference":
            raise bad_request(
                f"'{where}': item_reference is not supported by this server; send the item itself",
                param=where,
            )
        if kind in (None, "message"):
            role = item.get("role")
            if role not in _ROLES:
                raise bad_request(
                    f"'{where}.role' must be one of 'user', 'assistant', 'system', "
                    f"'developer', got {role!r}",
                    param=f"{where}.role",
                )
            if "content" not in item or not isinstance(item["content"], (str, list)):
                raise bad_request(
                    f"'{where}.content' must be a string or an array of content parts",
                    param=f"{where}.content",
                )
        elif kind not in _TYPES:
            raise bad_request(
                f"'{where}.type' must be 'message', 'function_call' or 'function_call_output' "
                f"(the item types this server stores from a request), got {kind!r}",
                param=f"{where}.type",
            )
        else:
            for name in _FIELDS[kind]:
                if not isinstance(item.get(name), str):
                    raise bad_request(f"'{where}.{name}' must be a string", param=f"{where}.{name}")
        if "id" in item and not (isinstance(item["id"], str) and item["id"]):
            raise bad_request(f"'{where}.id' must be a non-empty string", param=f"{where}.id")
        try:
            validate_item(item, index)
        except InvalidItemError as exc:
            raise ApiError(400, str(exc).splitlines()[0], param=where) from None
        items.append(stamp_id(item))
    try:  # what no model could be sent is refused now, before anything is written
        items_to_messages(items, None)
    except UserError as exc:
        raise bad_request(
            str(exc).splitlines()[0].replace("item ", f"{param}[", 1), param
        ) from None
    return items


def _parts(content: object, role: str) -> list[Any]:
    if content is None:
        return []
    if isinstance(content, str):
        if role == "assistant":
            return [{"type": "output_text", "text": content, "annotations": []}]
        return [{"type": "input_text", "text": content}]
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(_parts(part, role)[0])
            elif isinstance(part, dict):
                shaped = dict(part)
                if shaped.get("type") == "output_text":
                    shaped.setdefault("annotations", [])
                parts.append(shaped)
        return parts
    return [{"type": "input_text", "text": str(content)}]


def api_item(item_id: str, item: Item) -> dict[str, Any]:
    """The item object OpenAI's API returns for the stored ``item`` whose id is ``item_id``."""
    kind = item.get("type")
    role = item.get("role")
    if kind in (None, "message") and role == "tool":  # a chat-style tool result
        return {
            "type": "function_call_output",
            "id": item_id,
            "call_id": str(item.get("tool_call_id", "")),
            "output": item.get("content") if isinstance(item.get("content"), str) else "",
            "status": "completed",
        }
    if kind in (None, "message"):
        role_name = role if isinstance(role, str) else "unknown"
        shaped: dict[str, Any] = {
            "type": "message",
            "id": item_id,
            "role": role_name,
            "content": _parts(item.get("content"), role_name),
            "status": item.get("status") or "completed",
        }
        return shaped
    shaped = {key: value for key, value in item.items() if key != "id"}
    shaped["id"] = item_id
    if kind == "function_call":
        if not isinstance(shaped.get("arguments"), str):
            shaped["arguments"] = "{}"
        shaped.setdefault("status", "completed")
    elif kind == "function_call_output":
        output = shaped.get("output")
        if not isinstance(output, (str, list)):
            shaped["output"] = "" if output is None else str(output)
        shaped.setdefault("status", "completed")
    return shaped


def metadata_of(value: object, param: str = "metadata") -> dict[str, str] | None:
    """OpenAI's metadata rules: at most 16 pairs, keys up to 64 characters, string values up
    to 512 characters; ``None`` when absent or null."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"'{param}' must be an object of string values", param=param)
    if len(value) > 16:
        raise bad_request(
            f"'{param}' may hold at most 16 key-value pairs, got {len(value)}", param=param
        )
    for key, text in value.items():
        if len(key) > 64:
            raise bad_request(f"'{param}' keys are at most 64 characters", param=param)
        if not isinstance(text, str) or len(text) > 512:
            raise bad_request(
                f"'{param}.{key}' must be a string of at most 512 characters",
                param=f"{param}.{key}",
            )
    return dict(value)
