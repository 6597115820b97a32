"""Items a run produced, each tied to the agent that produced it.

The ``raw_item`` of each is a Responses input item (a dict), so ``to_input_item()`` is the
item as it is stored in a session and sent to a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..items import Item, message_text

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = [
    "HandoffCallItem",
    "HandoffOutputItem",
    "MessageOutputItem",
    "ReasoningItem",
    "RunItem",
    "ToolCallItem",
    "ToolCallOutputItem",
    "run_item_for",
]


@dataclass
class RunItem:
    """Base class: the producing ``agent`` and the ``raw_item`` dict."""

    agent: Agent[Any]
    raw_item: Item
    type: str = "run_item"

    def to_input_item(self) -> Item:
        """The item as it is sent to a model and stored in a session."""
        return self.raw_item


@dataclass
class MessageOutputItem(RunItem):
    """An assistant message."""

    type: Literal["message_output_item"] = "message_output_item"

    @property
    def text(self) -> str:
        """The message's text."""
        return message_text(self.raw_item)


@dataclass
class ToolCallItem(RunItem):
    """A model's call of a function tool."""

    type: Literal["tool_call_item"] = "tool_call_item"


@dataclass
class ToolCallOutputItem(RunItem):
    """A tool's result; ``output`` is the Python value before it was turned into text."""

    output: Any = None
    type: Literal["tool_call_output_item"] = "tool_call_output_item"


@dataclass
class HandoffCallItem(RunItem):
    """A model's call of a handoff tool."""

    type: Literal["handoff_call_item"] = "handoff_call_item"


@dataclass
class HandoffOutputItem(RunItem):
    """The record that control passed from ``source_agent`` to ``target_agent``."""

    source_agent: Agent[Any] | None = None
    target_agent: Agent[Any] | None = None
    type: Literal["handoff_output_item"] = "handoff_output_item"


@dataclass
class ReasoningItem(RunItem):
    """A reasoning item returned by a reasoning model."""

    type: Literal["reasoning_item"] = "reasoning_item"


def run_item_for(agent: Agent[Any], raw: Item, handoff_names: frozenset[str]) -> RunItem:
    """Wrap a model output item in the matching :class:`RunItem` class."""
    kind = raw.get("type", "message")
    if kind == "message":
        return MessageOutputItem(agent=agent, raw_item=raw)
    if kind == "function_call":
        if raw.get("name") in handoff_names:
            return HandoffCallItem(agent=agent, raw_item=raw)
        return ToolCallItem(agent=agent, raw_item=raw)
    if kind == "reasoning":
        return ReasoningItem(agent=agent, raw_item=raw)
    return RunItem(agent=agent, raw_item=raw)
