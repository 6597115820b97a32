"""Convert between Responses-format items and chat-completions messages (pure functions).

Going out, a history of items becomes the ``messages`` list of a chat-completions request:
message items keep their role (``developer`` is sent as ``system``, which every
OpenAI-compatible server understands), function calls become ``tool_calls`` on an assistant
message, outputs become ``tool`` messages and reasoning items are left out, as are stored items
no model reads (see :mod:`threadline.models._sendable`), each with a debug line. A Responses
item that chat completions cannot express (a hosted tool's call, an ``item_reference``) is a
:class:`~threadline.errors.UserError` naming the item.

Coming back, the assistant's text, refusal and tool calls become a message item and
``function_call`` items.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from threadline.errors import UserError
from threadline.items import Item
from threadline.models._sendable import sendable
from threadline.models.base import OutputSchema, ToolSpec
from threadline.models.settings import ModelSettings

__all__ = [
    "ChatToolCall",
    "chat_settings",
    "chat_tool_choice",
    "chat_tools",
    "items_to_messages",
    "new_item_id",
    "output_items",
    "response_format",
]

ChatToolCall = tuple[str, str, str]
"""A tool call as ``(call_id, name, arguments_json)``."""

_TEXT_PARTS = ("input_text", "output_text", "text")


def new_item_id(prefix: str) -> str:
    """A fresh item id such as ``msg_3f2a...`` (the prefixes the Responses API expects)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def items_to_messages(items: Sequence[Item], instructions: str | None) -> list[dict[str, Any]]:
    """The chat ``messages`` for ``instructions`` (first, as a system message) and ``items``."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise UserError(f"items must be a list of dicts, got {type(items).__name__}")
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    # The assistant message that following function calls attach to, while one is open.
    open_assistant: dict[str, Any] | None = None
    for index, item in sendable(items):
        if not isinstance(item, Mapping):
            raise UserError(f"item {index} must be a dict, got {type(item).__name__}")
        item_type = item.get("type", "message")
        if item_type == "message":
            role = item.get("role")
            if role == "assistant":
                open_assistant = _assistant_message(item, index)
                messages.append(open_assistant)
            elif role in ("user", "system", "developer"):
                content = _input_content(item.get("content"), index)
                messages.append(
                    {"role": "user" if role == "user" else "system", "content": content}
                )
                open_assistant = None
            else:
                raise UserError(f"item {index} has unknown message role {role!r}")
        elif item_type == "function_call":
            if open_assistant is None:
                open_assistant = {"role": "assistant"}
                messages.append(open_assistant)
            open_assistant.setdefault("tool_calls", []).append(_tool_call(item, index))
        elif item_type == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _str_field(item, "call_id", index),
                    "content": _tool_output(item.get("output"), index),
                }
            )
            open_assistant = None
        elif item_type == "reasoning":
            continue  # chat completions has no way to send reasoning back
        else:
            raise UserError(
                f"item {index}: chat completions cannot send item type {item_type!r}; "
                "use OpenAIResponsesModel for this history or remove the item"
            )
    return messages


def _str_field(item: Mapping[str, Any], field: str, index: int) -> str:
    value = item.get(field)
    if not isinstance(value, str):
        item_type = item.get("type", "message")
        raise UserError(f"item {index} ({item_type}) needs a string {field!r}")
    return value


def _tool_call(item: Mapping[str, Any], index: int) -> dict[str, Any]:
    return {
        "id": _str_field(item, "call_id", index),
        "type": "function",
        "function": {
            "name": _str_field(item, "name", index),
            "arguments": _str_field(item, "arguments", index),
        },
    }


def _assistant_message(item: Mapping[str, Any], index: int) -> dict[str, Any]:
    content = item.get("content")
    message: dict[str, Any] = {"role": "assistant"}
    if isinstance(content, str):
        message["content"] = content
        return message
    if not isinstance(content, list):
        raise UserError(f"item {index} (assistant message) needs 'content' as a string or list")
    texts: list[str] = []
    refusals: list[str] = []
    for part_index, part in enumerate(content):
        part_type = part.get("type") if isinstance(part, Mapping) else None
        if part_type in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part_type == "refusal" and isinstance(part.get("refusal"), str):
            refusals.append(part["refusal"])
        else:
            raise UserError(
                f"item {index} content part {part_index}: chat completions cannot send an "
                f"assistant part of type {part_type!r} (expected output_text or refusal)"
            )
    if texts or not refusals:
        message["content"] = "".join(texts)
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _input_content(content: object, index: int) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise UserError(f"item {index} needs 'content' as a string or a list of parts")
    return [_input_part(part, index, part_index) for part_index, part in enumerate(content)]


def _input_part(part: object, index: int, part_index: int) -> dict[str, Any]:
    where = f"item {index} content part {part_index}"
    if not isinstance(part, Mapping):
        raise UserError(f"{where} must be a dict, got {type(part).__name__}")
    part_type = part.get("type")
    if part_type in _TEXT_PARTS and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if part_type == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise UserError(
                f"{where}: chat completions needs an input_image with an 'image_url' "
                "(a URL or data: URL); file_id images need OpenAIResponsesModel"
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if part_type == "input_file":
        file: dict[str, Any] = {
            key: part[key] for key in ("file_data", "file_id", "filename") if part.get(key)
        }
        if "file_data" not in file and "file_id" not in file:
            raise UserError(f"{where}: an input_file needs 'file_data' or 'file_id'")
        return {"type": "file", "file": file}
    raise UserError(f"{where}: chat completions cannot send a part of type {part_type!r}")


def _tool_output(output: object, index: int) -> str | list[dict[str, Any]]:
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise UserError(f"item {index} (function_call_output) needs 'output' as a string or list")
    parts = []
    for part_index, part in enumerate(output):
        if not (
            isinstance(part, Mapping)
            and part.get("type") in _TEXT_PARTS
            and isinstance(part.get("text"), str)
        ):
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise UserError(
                f"item {index} output part {part_index}: chat completions can only send text "
                f"as a tool result, not {kind!r}"
            )
        parts.append({"type": "text", "text": part["text"]})
    return parts


def chat_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Function tools in the chat-completions ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
                "strict": tool.strict,
            },
        }
        for tool in tools
    ]


def response_format(schema: OutputSchema) -> dict[str, Any]:
    """The ``response_format`` asking for JSON that follows ``schema``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.name, "schema": schema.json_schema, "strict": schema.strict},
    }


def chat_tool_choice(choice: str) -> str | dict[str, Any]:
    """``auto``/``required``/``none`` as is; any other string names the function to call."""
    if choice in ("auto", "required", "none"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def chat_settings(settings: ModelSettings, *, has_tools: bool) -> dict[str, Any]:
    """Request keyword arguments for the settings that are set (``None`` means not sent)."""
    kwargs: dict[str, Any] = {}
    for name in (
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
    ):
        value = getattr(settings, name)
        if value is not None:
            kwargs[name] = value
    if settings.tool_choice is not None:
        kwargs["tool_choice"] = chat_tool_choice(settings.tool_choice)
    if settings.parallel_tool_calls is not None and has_tools:
        kwargs["parallel_tool_calls"] = settings.parallel_tool_calls
    if settings.extra_body:
        kwargs["extra_body"] = dict(settings.extra_body)
    return kwargs


def output_items(
    text: str | None,
    refusal: str | None,
    calls: Sequence[ChatToolCall],
    *,
    message_id: str | None = None,
) -> list[Item]:
    """The Responses items for an assistant reply: a message (if any text), then the calls.

    A call without an id (some servers omit it) gets a fresh one, so its output can be paired.
    """
    items: list[Item] = []
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "output_text", "text": text, "annotations": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    if content:
        items.append(
            {
                "type": "message",
                "role": "assistant",
                "id": message_id or new_item_id("msg"),
                "status": "completed",
                "content": content,
            }
        )
    for call_id, name, arguments in calls:
        items.append(
            {
                "type": "function_call",
                "call_id": call_id or new_item_id("call"),
                "name": name,
                "arguments": arguments,
                "id": new_item_id("fc"),
            }
        )
    return items
