"""Pure decisions of a compaction: where it may cut, and what the summariser is asked.

A cut is a position in the history where a turn starts (a user message) and no function
call before it has its output at or after it, so a summary never ends inside a turn or
between a call and its output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..items import Item, is_user_message, message_text
from ..sessions.codec import estimate_tokens

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "ITEM_TEXT_LIMIT",
    "Plan",
    "clean_summary",
    "plan_cut",
    "render_prompt",
    "safe_cuts",
]

ITEM_TEXT_LIMIT = 4000
"""The most characters of one item the summariser sees (a huge tool output is shortened)."""

DEFAULT_INSTRUCTIONS = (
    "You keep a running summary of a conversation between a user and an assistant, so that "
    "the assistant can continue it without the older messages. Rewrite the summary so that it "
    "also covers the new messages: keep every fact, name, number, preference, decision and "
    "open question that may matter later; drop greetings and repetition. Write plain "
    "sentences in the third person ('The user ...', 'The assistant ...'), at most {words} "
    "words, and nothing but the summary."
)
"""What the summarising model is told; ``{words}`` is the length it may use."""


@dataclass(frozen=True)
class Plan:
    """What one compaction round covers: the items ``[0, cut)`` of the unsummarised part.

    ``covered_tokens`` is their estimated size; ``kept_tokens`` that of the items left after
    the cut; ``limited`` says the cut stopped early to keep the summariser's request small
    (another round may follow).
    """

    cut: int
    covered_tokens: int
    kept_tokens: int
    limited: bool


def safe_cuts(items: Sequence[Item]) -> list[int]:
    """The positions (> 0) in ``items`` where a summary may end: turn starts with no call
    still waiting for its output."""
    cuts = []
    open_calls: set[object] = set()
    for position, item in enumerate(items):
        if position > 0 and is_user_message(item) and not open_calls:
            cuts.append(position)
        kind = item.get("type")
        if kind == "function_call":
            open_calls.add(item.get("call_id"))
        elif kind == "function_call_output":
            open_calls.discard(item.get("call_id"))
    return cuts


def plan_cut(
    items: Sequence[Item], keep_tokens: int, budget_tokens: int
) -> tuple[Plan | None, str]:
    """Choose the cut for one round over the unsummarised ``items``.

    Keeps the newest whole turns within ``keep_tokens`` (at least the last turn) and covers at
    most ``budget_tokens`` in one round (at least one turn). Returns ``(None, reason)`` when
    there is nothing to summarise.
    """
    cuts = safe_cuts(items)
    if not cuts:
        return None, "the unsummarised part is a single turn"
    tokens = [estimate_tokens(item) for item in items]
    suffix = [0] * (len(items) + 1)
    for position in range(len(items) - 1, -1, -1):
        suffix[position] = suffix[position + 1] + tokens[position]
    total = suffix[0]
    wanted = next((cut for cut in cuts if suffix[cut] <= keep_tokens), cuts[-1])
    chosen = wanted
    if total - suffix[chosen] > budget_tokens:
        fitting = [cut for cut in cuts if cut <= wanted and total - suffix[cut] <= budget_tokens]
        chosen = fitting[-1] if fitting else cuts[0]
    return (
        Plan(chosen, total - suffix[chosen], suffix[chosen], limited=chosen < wanted),
        "",
    )


def _item_line(item: Item) -> str:
    kind = item.get("type", "message")
    if kind == "message":
        role = str(item.get("role", "assistant"))
        label = role
        text = message_text(item)
    elif kind == "function_call":
        label = "tool call"
        text = f"{item.get('name')}({item.get('arguments', '')})"
    elif kind == "function_call_output":
        label = "tool result"
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    elif kind == "reasoning":
        return ""
    else:
        label = str(kind)
        text = json.dumps(item, ensure_ascii=False)
    text = " ".join(text.split())
    if len(text) > ITEM_TEXT_LIMIT:
        text = text[:ITEM_TEXT_LIMIT] + " […]"
    return f"[{label}] {text}"


def render_prompt(previous: str | None, items: Sequence[Item]) -> str:
    """The summariser's one user message: the previous summary, then the newly covered turns.

    Messages are written ``[user] …`` / ``[assistant] …`` rather than ``User:`` lines, so a
    transcript-style model (the local one) does not read them as turns of its own prompt.
    """
    lines = [line for line in (_item_line(item) for item in items) if line]
    parts = []
    if previous:
        parts.append(f"Summary so far:\n{previous}")
    else:
        parts.append("Summary so far: (none yet; this is the start of the conversation)")
    parts.append("New messages:\n" + "\n".join(lines))
    parts.append(
        "Write the updated summary of the whole conversation so far (the summary above plus "
        "the new messages), keeping names, facts and numbers."
    )
    return "\n\n".join(parts)


_ECHOES = (
    "[user]",
    "[assistant]",
    "[tool call]",
    "[tool result]",
    "Summary so far",
    "New messages",
)


def clean_summary(text: str) -> str:
    """The model's answer without what echoes the prompt: a small model may go on to repeat
    the ``[user] …`` lines it was shown; everything from the first such line is dropped."""
    kept = []
    for line in text.strip().splitlines():
        if line.strip().startswith(_ECHOES):
            break
        kept.append(line)
    return "\n".join(kept).strip()
