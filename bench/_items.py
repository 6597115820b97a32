"""The benchmark's conversation items, identical for threadline and the OpenAI Agents SDK.

One turn is a user message (about 120 bytes of JSON) and an assistant output message in
Responses format (about 490 bytes). Every item carries a unique marker so tests can count
lost and duplicated items.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

# Text lengths chosen so that the compact JSON of each item lands near the target sizes.
USER_BYTES = 120
ASSISTANT_BYTES = 490

_FILLER = (
    "The quick brown fox jumps over the lazy dog while the session remembers every turn. "
) * 20


def _pad(prefix: str, length: int) -> str:
    if len(prefix) >= length:
        return prefix
    return prefix + " " + _FILLER[: length - len(prefix) - 1]


def user_text(marker: str) -> str:
    """The user's input text for one turn (a plain string, as a caller passes to Runner.run)."""
    overhead = len(json.dumps({"role": "user", "content": ""}))
    return _pad(f"[{marker}] question:", USER_BYTES - overhead)


def assistant_text(marker: str) -> str:
    """The assistant's answer text for one turn."""
    overhead = len(json.dumps(assistant_item("", "msg_0123456789abcdef")))
    return _pad(f"[{marker}] answer:", ASSISTANT_BYTES - overhead)


def user_item(marker: str) -> dict[str, Any]:
    """A user message as both libraries store string input."""
    return {"role": "user", "content": user_text(marker)}


def assistant_item(text: str, item_id: str) -> dict[str, Any]:
    """An assistant output message in Responses format."""
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def turn(marker: str) -> list[dict[str, Any]]:
    """One stored turn: the user message and the assistant's answer."""
    return [
        user_item(marker),
        assistant_item(
            assistant_text(marker), f"msg_{zlib.crc32(marker.encode()):08x}{len(marker):08x}"
        ),
    ]


def turns(count: int, prefix: str = "t") -> list[dict[str, Any]]:
    """``count`` turns (2 * count items) with markers ``{prefix}{i}``."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        out.extend(turn(f"{prefix}{i}"))
    return out


def marker_of(item: dict[str, Any]) -> str | None:
    """The marker an item carries, or None."""
    content = item.get("content")
    if isinstance(content, list) and content:
        content = content[0].get("text", "") if isinstance(content[0], dict) else ""
    if isinstance(content, str) and content.startswith("["):
        end = content.find("]")
        if end > 0:
            return content[1:end]
    return None


def is_user(item: dict[str, Any]) -> bool:
    """Whether ``item`` is a user message."""
    return item.get("role") == "user"
