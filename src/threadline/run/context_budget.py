"""How much stored history fits in one request: the context window minus everything else.

``history budget = window − instructions − tools schema − output schema − new input − the
model's own prompt overhead − reserved reply tokens``, less a safety margin for the token
estimate. The runner asks this module before it loads a session's window, unless the user set
``SessionSettings(max_tokens=...)`` (on the session or the run), which always wins. The window
itself comes from :func:`threadline.models.context_windows.context_window_of`; for a model
whose window is unknown there is no default budget.

One function, :func:`history_budget`, so that anything that needs the same number (a retry with
a smaller window, compaction) computes it the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..items import Item
from ..models.base import OutputSchema, ToolSpec
from ..models.context_windows import context_window_of
from ..models.settings import ModelSettings
from ..sessions.codec import estimate_tokens

__all__ = ["SAFETY_MARGIN", "HistoryBudget", "history_budget", "reply_reserve"]

SAFETY_MARGIN = 0.9
"""The share of the remaining room the history may use: the estimate (about four characters of
JSON a token) is close for English prose but not exact for every tokenizer."""


@dataclass(frozen=True)
class HistoryBudget:
    """The result of :func:`history_budget`: the window, what else the request holds, and the
    tokens left for stored history (``0`` when the rest alone fills the window)."""

    context_window: int
    reserved_reply: int
    fixed: int
    """Estimated tokens of instructions, tools, output schema, new input and prompt overhead."""
    history_tokens: int


def reply_reserve(context_window: int, settings: ModelSettings) -> int:
    """Tokens kept free for the reply: ``max_tokens`` when set, else an eighth of the window
    (at least 256, at most 4096)."""
    if settings.max_tokens is not None:
        return max(0, settings.max_tokens)
    return min(4096, max(256, context_window // 8))


def _json_tokens(value: Any) -> int:
    return estimate_tokens(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def history_budget(
    model: Any,
    settings: ModelSettings,
    *,
    instructions: str | None,
    tools: Sequence[ToolSpec] = (),
    output_schema: OutputSchema | None = None,
    new_input: Sequence[Item] = (),
) -> HistoryBudget | None:
    """The token budget for stored history in a request to ``model``, or ``None`` when the
    model's context window is unknown (then no default budget applies).

    ``settings`` are the resolved model settings of the call (``context_window`` and
    ``max_tokens`` count); the other arguments are what the request sends besides history.
    """
    window = context_window_of(model, settings.context_window)
    if window is None:
        return None
    reserve = reply_reserve(window, settings)
    fixed = estimate_tokens(instructions) if instructions else 0
    fixed += sum(_json_tokens([t.name, t.description, t.parameters]) for t in tools)
    if output_schema is not None:
        fixed += _json_tokens(output_schema.json_schema)
    fixed += sum(estimate_tokens(item) for item in new_input)
    overhead = getattr(model, "prompt_overhead", 0)
    if isinstance(overhead, int) and not isinstance(overhead, bool) and overhead > 0:
        fixed += overhead
    room = int((window - reserve - fixed) * SAFETY_MARGIN)
    return HistoryBudget(window, reserve, fixed, max(0, room))
