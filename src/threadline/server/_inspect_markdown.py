"""A stored conversation as Markdown, for people: one section a turn, messages as text, tool
calls and their outputs as fenced JSON, reasoning as a quote.

Every stored string goes into a fence long enough for the backticks it holds, or is quoted
line by line, so no stored text can end a block early or become Markdown structure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ..items import Item, is_user_message, message_text

__all__ = ["conversation_markdown"]

_TICKS = re.compile(r"`+")


def _fence(text: str, language: str = "") -> str:
    longest = max((len(run) for run in _TICKS.findall(text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text}\n{ticks}"


def _pretty(value: object) -> tuple[str, str]:
    """``(text, language)``: JSON (or a string holding JSON) indented, else the text."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value, "text"
        if isinstance(parsed, str):
            return value, "text"
        value = parsed
    return json.dumps(value, ensure_ascii=False, indent=2), "json"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


def _item_markdown(position: int, item: Item) -> str:
    kind = item.get("type")
    role = item.get("role")
    if kind in (None, "message") and role != "tool":
        label = str(role or "message").capitalize()
        text = message_text(item)
        if not text and item.get("content") not in (None, "", []):
            body, language = _pretty(item.get("content"))
            return f"**{label}** (#{position}):\n\n{_fence(body, language)}"
        return f"**{label}** (#{position}):\n\n{_fence(text, 'text')}"
    if kind in ("function_call", "custom_tool_call"):
        name = str(item.get("name", "?"))
        body, language = _pretty(item.get("arguments", item.get("input", "")))
        handoff = " (handoff)" if name.startswith("transfer_to_") else ""
        return (
            f"**Tool call{handoff}** `{name.replace('`', '')}` (#{position}, call_id "
            f"`{str(item.get('call_id', '')).replace('`', '')}`):\n\n{_fence(body, language)}"
        )
    if kind in ("function_call_output", "custom_tool_call_output") or role == "tool":
        call_id = item.get("call_id", item.get("tool_call_id", ""))
        body, language = _pretty(item.get("output", item.get("content", "")))
        return (
            f"**Tool output** (#{position}, call_id `{str(call_id).replace('`', '')}`):\n\n"
            f"{_fence(body, language)}"
        )
    if kind == "reasoning":
        parts = item.get("summary")
        text = " ".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part)
            for part in (parts if isinstance(parts, list) else [])
        )
        return f"**Reasoning** (#{position}):\n\n{_quote(text or '(no summary)')}"
    body, _ = _pretty(item)
    return f"**{str(kind).replace('*', '')}** (#{position}):\n\n{_fence(body, 'json')}"


def conversation_markdown(
    visible_id: str,
    title: str | None,
    metadata: dict[str, Any],
    items: Sequence[tuple[int, Item]],
    corrupt: Sequence[tuple[int, str]] = (),
) -> str:
    """The Markdown text of a conversation (``items`` as ``(position, item)``)."""
    lines = [
        f"# {' '.join((title or visible_id).split())}",
        "",
        f"- session: `{visible_id.replace('`', '')}`",
        f"- exported: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- items: {len(items) + len(corrupt)}",
    ]
    for key, value in metadata.items():
        if key != "title":
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines.append(f"- {' '.join(str(key).split())}: {' '.join(shown.split())}")
    broken = dict(corrupt)
    merged: list[tuple[int, Item | None]] = sorted(
        [*items, *((position, None) for position in broken)], key=lambda pair: pair[0]
    )
    turn = 0
    for index, (position, item) in enumerate(merged):
        if item is not None and is_user_message(item):
            turn += 1
            lines += ["", f"## Turn {turn}"]
        elif index == 0:
            lines += ["", "## Before the first turn"]
        if item is None:
            lines += ["", f"**Unreadable item** (#{position}): {broken[position]}"]
        else:
            lines += ["", _item_markdown(position, item)]
    return "\n".join(lines) + "\n"
