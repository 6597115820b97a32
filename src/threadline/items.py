"""Conversation items in the OpenAI Responses input-item format.

A conversation is a list of JSON objects such as::

    {"role": "user", "content": "Hello"}
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}
    {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"}
    {"type": "function_call_output", "call_id": "c1", "output": "sunny"}

This module builds, validates and repairs such lists. It imports nothing from the rest of
threadline but :mod:`threadline.errors`.
"""

from __future__ import annotations

import itertools
import json
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import UserError

__all__ = [
    "MAX_DEPTH",
    "Item",
    "ItemHelpers",
    "assistant_message",
    "encode_item",
    "function_call",
    "function_call_output",
    "input_to_items",
    "is_user_message",
    "lone_surrogate",
    "message_text",
    "pairing_problem",
    "repair_orphans",
    "user_message",
    "validate_item",
    "validate_items",
]

Item = dict[str, Any]
"""One Responses input item: a JSON object."""

MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})

# Item types of the Responses API that carry no role. Any other ``*_call`` /
# ``*_call_output`` type is accepted too, so newer tool kinds pass through unchanged.
KNOWN_TYPES = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "item_reference",
        "compaction",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
    }
)

MAX_DEPTH = 100
"""How deeply an item's JSON may nest: objects and arrays, the item itself counting as 1.

Real items nest a handful of levels (item, content list, part, annotations, annotation). A
bound far above that, and far below Python's recursion limit, keeps every stored item
readable by every reader (``json.loads``, ``copy.deepcopy``, rendering), each of which spends
one or more stack frames per level.
"""

_CONTAINERS = (dict, list, tuple)

_REQUIRED_STR_FIELDS: dict[str, tuple[str, ...]] = {
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("call_id",),
}


def user_message(text: str) -> Item:
    """A user turn: ``{"role": "user", "content": text}``."""
    return {"role": "user", "content": text}


def assistant_message(text: str, *, item_id: str | None = None) -> Item:
    """An assistant output message with one ``output_text`` part."""
    item: Item = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
        "status": "completed",
    }
    if item_id is not None:
        item["id"] = item_id
    return item


def function_call(call_id: str, name: str, arguments: str) -> Item:
    """A model's request to call the function tool ``name`` with JSON ``arguments``."""
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def function_call_output(call_id: str, output: str) -> Item:
    """The result of the function call ``call_id``."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _problem(item: object, values: bool = True) -> str | None:
    """Why ``item`` is not a valid input item, or ``None`` when it is (``values=False``
    skips the walk over its values, for an item fresh from ``json.loads`` whose depth was
    bounded otherwise)."""
    if not isinstance(item, dict):
        return f"expected a dict, got {type(item).__name__}"
    item_type = item.get("type")
    role = item.get("role")
    shape = _value_problem(item) if values else None
    if shape is not None:
        return shape
    if item_type is None or item_type == "message":
        if role is None:
            return "has neither a 'type' nor a 'role'"
        if not isinstance(role, str) or role not in MESSAGE_ROLES:
            return f"has unknown role {role!r} (expected one of {sorted(MESSAGE_ROLES)})"
        content = item.get("content")
        if not isinstance(content, (str, list)):
            return "a message needs 'content' as a string or a list of parts"
        return None
    if not isinstance(item_type, str):
        return f"'type' must be a string, got {type(item_type).__name__}"
    if not (
        item_type in KNOWN_TYPES
        or item_type.endswith("_call")
        or item_type.endswith("_call_output")
    ):
        return f"has unknown type {item_type!r}"
    for field in _REQUIRED_STR_FIELDS.get(item_type, ()):
        if not isinstance(item.get(field), str):
            return f"a {item_type} item needs a string {field!r}"
    if item_type == "function_call_output" and not isinstance(item.get("output"), (str, list)):
        return "a function_call_output item needs 'output' as a string or a list"
    return None


def _value_problem(value: dict[Any, Any]) -> str | None:
    """Why ``value`` cannot be stored as JSON that reads back equal, or ``None``.

    Walks the containers without recursion: nesting deeper than :data:`MAX_DEPTH` and keys
    that are not strings (JSON would turn ``1`` into ``"1"``, silently merging it with a
    ``"1"`` beside it) are refused.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels of objects and arrays"
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    return (
                        f"has a key that is not a string ({type(key).__name__} "
                        f"{_preview(key, 40)}); JSON object keys are strings"
                    )
                if isinstance(child, _CONTAINERS):
                    push((child, depth + 1))
        else:
            for child in node:
                if isinstance(child, _CONTAINERS):
                    push((child, depth + 1))
    return None


def validate_item(item: object, index: int = 0, *, values: bool = True) -> Item:
    """Return ``item`` if it is a valid input item, else raise :class:`UserError`.

    ``values=False`` skips the walk over its values (non-string keys, depth): only for an
    item just decoded from JSON (whose keys are strings) whose depth the caller bounded.
    """
    problem = _problem(item, values)
    if problem is not None:
        raise UserError(f"item {index} {problem}: {_preview(item)}")
    assert isinstance(item, dict)
    return item


def validate_items(items: object) -> list[Item]:
    """Validate a batch: every item a JSON-serialisable dict of a known type or role.

    A batch is an ordered sequence (a list or a tuple): a set or a one-shot iterator would not
    keep or show its order. Raises :class:`UserError` naming the first bad item's index;
    nothing is returned partially.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise UserError(f"items must be a list of dicts, got {type(items).__name__}")
    checked = []
    for index, item in enumerate(items):
        checked.append(validate_item(item, index))
    return checked


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# One encoder for every item: json.dumps with options builds a new encoder on each call,
# which costs more than encoding a typical item.


def encode_item(item: Item, index: int = 0) -> str:
    """Serialise one validated item to compact JSON, or raise :class:`UserError`.

    Refused: values JSON has no spelling for (``NaN``, ``Infinity``, sets, bytes, integers of
    more than 4,300 digits) and text that is not Unicode (a lone surrogate such as
    ``"\\ud800"``, which no UTF-8 storage can hold).
    """
    try:
        data = _compact(item)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserError(f"item {index} is not JSON-serialisable ({exc}): {_preview(item)}") from exc
    bad = lone_surrogate(data)
    if bad is not None:
        raise UserError(
            f"item {index} holds text that is not valid Unicode (a lone surrogate "
            f"{data[bad[0] : bad[1]]!r}): {_preview(item)}"
        )
    return data


def lone_surrogate(text: str) -> tuple[int, int] | None:
    """Where ``text`` holds a lone surrogate (which no UTF-8 storage can hold), or ``None``."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start, exc.end
    return None


class _Preview(reprlib.Repr):
    """``reprlib`` bounded by depth and size, keeping a dict's own key order (not sorted)."""

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [
            f"{self.repr1(key, level - 1)}: {self.repr1(value, level - 1)}"
            for key, value in itertools.islice(x.items(), self.maxdict)
        ]
        if len(x) > self.maxdict:
            pieces.append("...")
        return "{" + ", ".join(pieces) + "}"

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than Python turns into text
            return f"<an int of about {int(x.bit_length() * 0.30103)} digits>"


_REPR = _Preview()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 40


def _preview(item: object, limit: int = 80) -> str:
    """A short ``repr`` of ``item`` that never fails (deep, huge or odd values included)."""
    try:
        text = _REPR.repr(item)
    except Exception:  # a value whose repr fails (an int of 10**5000) must not hide the error
        text = f"<{type(item).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def input_to_items(value: str | Sequence[Item]) -> list[Item]:
    """Turn a run's input (a string or a list of items) into a validated list of items."""
    if isinstance(value, str):
        return [user_message(value)]
    return [dict(item) for item in validate_items(value)]


def is_user_message(item: Mapping[str, Any]) -> bool:
    """True for a user message (the start of a turn)."""
    return item.get("role") == "user" and item.get("type", "message") == "message"


def message_text(item: Mapping[str, Any]) -> str:
    """The concatenated text of a message item (``""`` for other items)."""
    if item.get("type", "message") != "message":
        return ""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") in ("output_text", "input_text", "text"):
            text = part.get("text")
            if isinstance(text, str):
                parts.append(text)
        elif isinstance(part, Mapping) and part.get("type") == "refusal":
            refusal = part.get("refusal")
            if isinstance(refusal, str):
                parts.append(refusal)
    return "".join(parts)


def repair_orphans(items: Sequence[Item]) -> list[Item]:
    """Drop function calls without an output and outputs without a call.

    Any model rejects a history holding either, so a window or an imported history is passed
    through here before it is sent. Order is kept.
    """
    calls = {
        item["call_id"]
        for item in items
        if item.get("type") == "function_call" and isinstance(item.get("call_id"), str)
    }
    outputs = {
        item["call_id"]
        for item in items
        if item.get("type") == "function_call_output" and isinstance(item.get("call_id"), str)
    }
    paired = calls & outputs
    return [
        item
        for item in items
        if item.get("type") not in ("function_call", "function_call_output")
        or item.get("call_id") in paired
    ]


_CALL_OUTPUTS = {
    "function_call": "function_call_output",
    "custom_tool_call": "custom_tool_call_output",
}


def pairing_problem(items: Sequence[Item]) -> str | None:
    """Why ``items`` is not a history valid to send, or ``None`` when it is.

    Every ``function_call`` (and ``custom_tool_call``) needs a later output with its
    ``call_id``, and every output needs an earlier call. Used where a whole history arrives at
    once (an import), so that one which no model would accept is refused rather than stored.
    """
    waiting: dict[tuple[object, object], int] = {}
    for index, item in enumerate(items):
        item_type = item.get("type")
        if item_type in _CALL_OUTPUTS:
            waiting.setdefault((_CALL_OUTPUTS[item_type], item.get("call_id")), index)
        elif (
            item_type in _CALL_OUTPUTS.values()
            and waiting.pop((item_type, item.get("call_id")), None) is None
        ):
            return (
                f"item {index} is a {item_type} (call_id {item.get('call_id')!r}) with no "
                f"call before it"
            )
    if waiting:
        (output_type, call_id), index = min(waiting.items(), key=lambda pair: pair[1])
        return f"item {index} is a call (call_id {call_id!r}) with no {output_type} after it"
    return None


class ItemHelpers:
    """Helpers over items, named as in the OpenAI Agents SDK so code ports unchanged."""

    @staticmethod
    def text_message_output(item: Any) -> str:
        """The text of a message run item or a raw message item."""
        raw = getattr(item, "raw_item", item)
        return message_text(raw) if isinstance(raw, Mapping) else ""

    @staticmethod
    def text_message_outputs(items: Iterable[Any]) -> str:
        """The concatenated text of every message among ``items``."""
        return "".join(ItemHelpers.text_message_output(item) for item in items)

    @staticmethod
    def input_to_new_input_list(value: str | Sequence[Item]) -> list[Item]:
        """A run input as a fresh list of items."""
        return input_to_items(value)
