"""How much stored history fits in one request: the context window minus everything else.

``history budget = SAFETY_MARGIN × ((window − reserved reply tokens) ÷ ratio − instructions −
tools schema − output schema − new input − the model's own prompt overhead)``, in estimated
tokens; ``ratio`` is the reported-to-estimated tokens ratio observed for the model (below).
The runner asks this module before it loads a session's window, unless the user set
``SessionSettings(max_tokens=...)`` (on the session or the run), which always wins. The window
itself comes from :func:`threadline.models.context_windows.context_window_of`; for a model
whose window is unknown there is no default budget.

One function, :func:`history_budget`, so that anything that needs the same number (a retry with
a smaller window, compaction) computes it the same way.

The estimate (four characters of JSON a token) is close for prose, but a tokenizer may need
twice as many tokens for code or some scripts. So the runner compares, on the first model call
of each run that got a default budget, the estimate with the input tokens the endpoint
reported (:func:`observe_usage`), and later budgets for that model shrink by the ratio seen
(:func:`token_ratio`; never grow: a ratio below 1 counts as 1). It is kept per process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ThreadlineError
from ..items import Item
from ..models.base import ModelRequest, OutputSchema, ToolSpec
from ..models.context_windows import context_window_of
from ..models.settings import ModelSettings
from ..sessions.codec import estimate_tokens
from .model_resolution import resolve_model
from .steps import tool_specs

if TYPE_CHECKING:
    from ..agent import Agent
    from ..context import RunContextWrapper
    from .config import RunConfig

__all__ = [
    "SAFETY_MARGIN",
    "HistoryBudget",
    "default_history_budget",
    "estimate_request",
    "history_budget",
    "observe_usage",
    "reply_reserve",
    "request_tokens",
    "token_ratio",
]

SAFETY_MARGIN = 0.9
"""The share of the remaining room the history may use: the estimate (about four characters of
JSON a token) is close for English prose but not exact for every tokenizer."""


logger = logging.getLogger("threadline.run")

MAX_RATIO = 4.0
"""The largest tokens-per-estimate ratio :func:`observe_usage` keeps."""
MIN_OBSERVED = 200
"""Requests estimated below this many tokens say too little about the ratio to count."""

_ratios: dict[tuple[str, str], float] = {}


def _model_key(model: Any) -> tuple[str, str]:
    return type(model).__qualname__, str(getattr(model, "model", ""))


def token_ratio(model: Any) -> float:
    """Reported input tokens per estimated token for ``model``, as last observed (1.0 when
    nothing was observed)."""
    return _ratios.get(_model_key(model), 1.0)


def observe_usage(model: Any, estimated: int, reported: int) -> None:
    """Remember how many input tokens ``model``'s endpoint counted (``reported``) for a request
    estimated at ``estimated`` tokens."""
    if estimated < MIN_OBSERVED or reported <= 0:
        return
    _ratios[_model_key(model)] = min(MAX_RATIO, max(1.0, reported / estimated))


@dataclass(frozen=True)
class HistoryBudget:
    """The result of :func:`history_budget`: the window, what else the request holds, and the
    tokens left for stored history (``0`` when the rest alone fills the window)."""

    context_window: int
    reserved_reply: int
    fixed: int
    """Estimated tokens of instructions, tools, output schema, new input and prompt overhead."""
    history_tokens: int
    token_ratio: float = 1.0
    """Reported tokens per estimated token that the budget allowed for (see :func:`token_ratio`)."""


def reply_reserve(context_window: int, settings: ModelSettings) -> int:
    """Tokens kept free for the reply: ``max_tokens`` when set, else an eighth of the window
    (at least 256, at most 4096)."""
    if settings.max_tokens is not None:
        return max(0, settings.max_tokens)
    return min(4096, max(256, context_window // 8))


def _json_tokens(value: Any) -> int:
    return estimate_tokens(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def request_tokens(
    model: Any,
    *,
    instructions: str | None,
    tools: Sequence[ToolSpec] = (),
    output_schema: OutputSchema | None = None,
    items: Sequence[Item] = (),
) -> int:
    """Estimated tokens of a request to ``model`` besides the reply: instructions, tools,
    output schema, ``items`` and the model's own prompt overhead."""
    total = estimate_tokens(instructions) if instructions else 0
    total += sum(_json_tokens([t.name, t.description, t.parameters]) for t in tools)
    if output_schema is not None:
        total += _json_tokens(output_schema.json_schema)
    total += sum(estimate_tokens(item) for item in items)
    overhead = getattr(model, "prompt_overhead", 0)
    if isinstance(overhead, int) and not isinstance(overhead, bool) and overhead > 0:
        total += overhead
    return total


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
    The budget is in estimated tokens (what ``get_window(max_tokens=...)`` counts).
    """
    window = context_window_of(model, settings.context_window)
    if window is None:
        return None
    reserve = reply_reserve(window, settings)
    fixed = request_tokens(
        model,
        instructions=instructions,
        tools=tools,
        output_schema=output_schema,
        items=new_input,
    )
    ratio = token_ratio(model)
    room = int(((window - reserve) / ratio - fixed) * SAFETY_MARGIN)
    return HistoryBudget(window, reserve, fixed, max(0, room), ratio)


def estimate_request(model: Any, request: ModelRequest) -> int:
    """:func:`request_tokens` of a :class:`~threadline.models.base.ModelRequest`."""
    return request_tokens(
        model,
        instructions=request.instructions,
        tools=request.tools,
        output_schema=request.output_schema,
        items=request.input,
    )


async def default_history_budget(
    agent: Agent[Any],
    config: RunConfig,
    context: RunContextWrapper[Any],
    new_input: Sequence[Item],
) -> HistoryBudget | None:
    """The budget that fits ``agent``'s model in a run with ``config``, or ``None`` when the
    model's window is unknown (or the model cannot be resolved yet: its first call says why).

    Dynamic instructions are called with ``context`` to be counted.
    """
    try:
        model = resolve_model(agent, config)
    except ThreadlineError:
        return None
    schema = agent.output_schema
    budget = history_budget(
        model,
        agent.model_settings.resolve(config.model_settings),
        instructions=await agent.get_instructions(context),
        tools=tool_specs(agent),
        output_schema=schema.output_schema if schema is not None else None,
        new_input=new_input,
    )
    if budget is not None:
        logger.debug(
            "threadline: model %r: context window %d tokens, %d reserved for the reply, %d for "
            "instructions, tools and input; history budget %d tokens (%.2f tokens per "
            "estimated token)",
            getattr(model, "model", model),
            budget.context_window,
            budget.reserved_reply,
            budget.fixed,
            budget.history_tokens,
            budget.token_ratio,
        )
    return budget
