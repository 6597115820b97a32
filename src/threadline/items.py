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

from .errors import InvalidItemError

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
    "readable_problem",
    "repair_orphans",
    "user_message",
    "validate_item",
    "validate_items",
]

Item = dict[str, Any]
"""One Responses input item: a JSON object."""

MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})

# Item types of the Responses API that carry no role. Any other ``*_call`` /
# ``*_call_output`` type is one too, so newer tool kinds pass through unchanged. Storage accepts
# every type (see ``_problem``); a model is sent only the types it reads.
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

# The types a session's window pairs by ``call_id``: each needs a string one.
_PAIRED_TYPES = frozenset({"function_call", "function_call_output"})

MAX_DEPTH = 100
"""How deeply an item's JSON may nest: objects and arrays, the item itself counting as 1.

Real items nest a handful of levels (item, content list, part, annotations, annotation). A
bound far above that, and far below Python's recursion limit, keeps every stored item
readable by every reader (``json.loads``, ``copy.deepcopy``, rendering), each of which spends
one or more stack frames per level.
"""

_CONTAINERS = (dict, list, tuple)


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
    """Why ``item`` cannot be stored, or ``None`` when it can.

    Storage accepts what the OpenAI Agents SDK stores: any JSON object, including items no
    model reads (a chat-style ``{"role": "tool", ...}``, an unknown ``type``, ``content:
    None``, an app's own metadata). Refused are only values that would not read back equal
    or would break the store's invariants: a non-object, a key that is not a string, nesting
    deeper than :data:`MAX_DEPTH`, a ``type`` or ``role`` that is not a string, and a
    function call or output without a string ``call_id`` (which could never be paired).
    ``values=False`` skips the walk over the values (keys, depth), for an item fresh from
    ``json.loads`` whose depth the caller bounded.
    """
    if not isinstance(item, dict):
        return f"expected a dict, got {type(item).__name__}"
    shape = _value_problem(item) if values else None
    if shape is not None:
        return shape
    for field in ("type", "role"):
        value = item.get(field)
        if value is not None and not isinstance(value, str):
            return f"{field!r} must be a string when present, got {type(value).__name__}"
    item_type = item.get("type")
    if item_type in _PAIRED_TYPES and not isinstance(item.get("call_id"), str):
        return f"a {item_type} item needs a string 'call_id' (it pairs a call with its output)"
    return None


def readable_problem(item: Mapping[str, Any]) -> str | None:
    """Why no model API reads ``item`` as it is, or ``None`` when one does.

    Storage keeps such items (as the OpenAI Agents SDK does); a model request leaves them
    out, and a run's input refuses them. A chat-style ``{"role": "tool", ...}`` result is
    readable: it is sent as the ``function_call_output`` it stands for.
    """
    item_type = item.get("type")
    if item_type is None or item_type == "message":
        role = item.get("role")
        if role is None:
            return "has neither a 'type' nor a 'role'"
        if role == "tool":
            return None
        if not isinstance(role, str) or role not in MESSAGE_ROLES:
            return f"has unknown role {role!r} (expected one of {sorted(MESSAGE_ROLES)})"
        if not isinstance(item.get("content"), (str, list)):
            return "is a message without 'content' as a string or a list of parts"
        return None
    if not isinstance(item_type, str) or not (
        item_type in KNOWN_TYPES
        or item_type.endswith("_call")
        or item_type.endswith("_call_output")
    ):
        return f"has unknown type {item_type!r}"
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
    """Return ``item`` if it can be stored, else raise
    :class:`~threadline.errors.InvalidItemError` (a ``UserError`` and a ``TypeError``).

    ``values=False`` skips the walk over its values (non-string keys, depth): only for an
    item just decoded from JSON (whose keys are strings) whose depth the caller bounded.
    """
    problem = _problem(item, values)
    if problem is not None:
        raise InvalidItemError(f"item {index} {problem}: {_preview(item)}")
    assert isinstance(item, dict)
    return item


def validate_items(items: object) -> list[Item]:
    """Validate a batch: every item a dict that can be stored (see ``_problem``).

    A batch is an ordered sequence (a list or a tuple): a set or a one-shot iterator would not
    keep or show its order. Raises :class:`~threadline.errors.InvalidItemError` (a
    ``UserError`` and a ``TypeError``) naming the first bad item's index;
    nothing is returned partially.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidItemError(f"items must be a list of dicts, got {type(items).__name__}")
    checked = []
    for index, item in enumerate(items):
        checked.append(validate_item(item, index))
    return checked


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# One encoder for every item: json.dumps with options builds a new encoder on each call,
# which costs more than encoding a typical item.


def encode_item(item: Item, index: int = 0) -> str:
    """Serialise one validated item to compact JSON, or raise
    :class:`~threadline.errors.InvalidItemError`.

    Refused: values JSON has no spelling for (``NaN``, ``Infinity``, sets, bytes, integers of
    more than 4,300 digits) and text that is not Unicode (a lone surrogate such as
    ``"\\ud800"``, which no UTF-8 storage can hold).
    """
    try:
        data = _compact(item)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidItemError(
            f"item {index} is not JSON-serialisable ({exc}): {_preview(item)}"
        ) from exc
    bad = lone_surrogate(data)
    if bad is not None:
        raise InvalidItemError(
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
    """Turn a run's input (a string or a list of items) into a validated list of items.

    Beyond what storage checks, every item must be one a model reads (see
    :func:`readable_problem`): an input the model would never see is refused, not dropped.
    """
    if isinstance(value, str):
        return [user_message(value)]
    items = validate_items(value)
    for index, item in enumerate(items):
        problem = readable_problem(item)
        if problem is not None:
            raise InvalidItemError(f"input item {index} {problem}: {_preview(item)}")
    return [dict(item) for item in items]


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
    through here before it is sent. A chat-style ``{"role": "tool", "tool_call_id": ...}``
    result counts as its call's output (it is sent as one). Order is kept.
    """
    calls = {
        item["call_id"]
        for item in items
        if item.get("type") == "function_call" and isinstance(item.get("call_id"), str)
    }
    outputs = {call_id for item in items if isinstance(call_id := _output_call_id(item), str)}
    paired = calls & outputs

    def kept(item: Item) -> bool:
        if item.get("type") == "function_call":
            key = item.get("call_id")
        elif item.get("type") == "function_call_output" or _is_tool_role(item):
            key = _output_call_id(item)
        else:
            return True
        return isinstance(key, str) and key in paired

    return [item for item in items if kept(item)]


def _is_tool_role(item: Item) -> bool:
    return item.get("role") == "tool" and item.get("type", "message") == "message"


def _output_call_id(item: Item) -> object:
    if item.get("type") == "function_call_output":
        return item.get("call_id")
    return item.get("tool_call_id") if _is_tool_role(item) else None


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
