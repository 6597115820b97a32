"""Plain-text rendering of items and tables for the CLI (no third-party dependency)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from ..items import Item, message_text
from ..sessions import SessionInfo

__all__ = ["describe_item", "print_history", "print_sessions", "print_table", "write_jsonl"]


def describe_item(item: Item, width: int = 100) -> str:
    """One line for an item: who said what, or which tool was called with what."""
    kind = item.get("type", "message")
    if kind == "message":
        text = message_text(item).replace("\n", " ")
        line = f"{item.get('role', '?')}: {text}"
    elif kind == "function_call":
        line = f"tool call {item.get('name')}({item.get('arguments', '')})"
    elif kind == "function_call_output":
        output = item.get("output")
        line = f"tool output: {output if isinstance(output, str) else json.dumps(output)}"
    else:
        line = f"{kind}"
    return line if len(line) <= width else line[: width - 1] + "…"


def print_history(items: Sequence[Item], out: TextIO) -> None:
    """Number and describe each item."""
    if not items:
        print("(no items)", file=out)
    for index, item in enumerate(items, start=1):
        print(f"{index:>4}. {describe_item(item)}", file=out)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    """A left-aligned text table with a header row."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for number, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if number == 0:
            print("  ".join("-" * w for w in widths), file=out)


def print_sessions(infos: Iterable[SessionInfo], out: TextIO, current: str | None = None) -> None:
    """The sessions table; with ``current``, that session is marked with ``*``."""
    rows = [
        (
            ("" if current is None else "* " if i.session_id == current else "  ") + i.session_id,
            i.item_count,
            i.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
        for i in infos
    ]
    print_table(["session", "items", "updated (UTC)"], rows, out)


def write_jsonl(items: Sequence[Item], out: TextIO) -> None:
    """One item per line, as the JSON lines that ``sessions import`` reads back."""
    for item in items:
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
