"""Events yielded by ``RunResultStreaming.stream_events()``.

Names follow the OpenAI Agents SDK so streaming loops port unchanged: raw model events
(text deltas as ``openai.types.responses.ResponseTextDeltaEvent``), completed run items, and
agent switches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..models.base import ModelStreamEvent, TextDelta
from .run_items import RunItem

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = [
    "AgentUpdatedStreamEvent",
    "RawResponsesStreamEvent",
    "RunItemStreamEvent",
    "StreamEvent",
    "raw_event_for",
]

RunItemEventName = Literal[
    "message_output_created",
    "tool_called",
    "tool_output",
    "handoff_requested",
    "handoff_occured",
    "reasoning_item_created",
]


@dataclass
class RawResponsesStreamEvent:
    """A raw event from the model: for text, ``data.delta`` is the new piece of text."""

    data: Any
    type: Literal["raw_response_event"] = "raw_response_event"


@dataclass
class RunItemStreamEvent:
    """A run item was completed (a message, a tool call or output, a handoff)."""

    name: RunItemEventName
    item: RunItem
    type: Literal["run_item_stream_event"] = "run_item_stream_event"


@dataclass
class AgentUpdatedStreamEvent:
    """The active agent changed (at the start and after a handoff)."""

    new_agent: Agent[Any]
    type: Literal["agent_updated_stream_event"] = "agent_updated_stream_event"


StreamEvent = RawResponsesStreamEvent | RunItemStreamEvent | AgentUpdatedStreamEvent


def raw_event_for(event: ModelStreamEvent, sequence_number: int) -> RawResponsesStreamEvent:
    """Wrap a model stream event; text deltas become openai ``ResponseTextDeltaEvent`` objects."""
    if isinstance(event, TextDelta):
        from openai.types.responses import ResponseTextDeltaEvent

        data: Any = ResponseTextDeltaEvent.model_construct(
            type="response.output_text.delta",
            delta=event.delta,
            item_id=event.item_id or "",
            output_index=0,
            content_index=0,
            sequence_number=sequence_number,
            logprobs=[],
        )
        return RawResponsesStreamEvent(data=data)
    return RawResponsesStreamEvent(data=event)
