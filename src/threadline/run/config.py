"""Per-run settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..items import Item
from ..models.base import Model, ModelProvider
from ..models.settings import ModelSettings

if TYPE_CHECKING:
    from ..guardrails import InputGuardrail, OutputGuardrail
    from ..sessions.base import SessionSettings
    from .compaction import CompactionSettings

__all__ = ["DEFAULT_MAX_TURNS", "RunConfig", "SessionInputCallback"]

DEFAULT_MAX_TURNS = 10

SessionInputCallback = Callable[[list[Item], list[Item]], "list[Item] | Awaitable[list[Item]]"]
"""``(history, new_items) -> items to send``; it decides how stored history and new input mix."""


@dataclass
class RunConfig:
    """Settings for one run, overriding the agents' own.

    ``model`` replaces every agent's model for this run. ``model_provider`` resolves model
    names: a :class:`~threadline.models.base.ModelProvider`, or an ``AsyncOpenAI`` client,
    which is wrapped in a provider that uses it. ``model_settings`` overlays each agent's
    settings. ``session_settings`` overrides the session's own (history limit, token budget,
    lease behaviour). ``session_input_callback`` merges history and new input.
    ``input_guardrails`` / ``output_guardrails`` run in addition to the agents' own.
    ``compaction`` chooses how a session is compacted (model, timeout; see
    :class:`~threadline.run.compaction.CompactionSettings`); when is ``compact_at``.
    """

    model: str | Model | None = None
    model_provider: ModelProvider | Any = None
    model_settings: ModelSettings | None = None
    session_settings: SessionSettings | None = None
    session_input_callback: SessionInputCallback | None = None
    tracing_disabled: bool = False
    workflow_name: str = "Agent workflow"
    trace_metadata: dict[str, Any] | None = None
    input_guardrails: list[InputGuardrail[Any]] | None = None
    output_guardrails: list[OutputGuardrail[Any]] | None = None
    compaction: CompactionSettings | None = None
