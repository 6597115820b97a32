"""Running agents: the Runner, its configuration, results, events and hooks."""

from ..context import RunContextWrapper, ToolContext
from .approvals import ToolApprovalItem
from .compaction import (
    CompactionResult,
    CompactionSettings,
    compact_session,
    wait_for_compactions,
)
from .config import DEFAULT_MAX_TURNS, RunConfig
from .events import AgentUpdatedStreamEvent, RawResponsesStreamEvent, RunItemStreamEvent
from .hooks import RunHooks
from .result import RunResult, RunResultStreaming
from .run_items import (
    HandoffCallItem,
    HandoffOutputItem,
    MessageOutputItem,
    ReasoningItem,
    RunItem,
    ToolCallItem,
    ToolCallOutputItem,
)
from .runner import Runner
from .state import RunState

__all__ = [
    "DEFAULT_MAX_TURNS",
    "AgentUpdatedStreamEvent",
    "CompactionResult",
    "CompactionSettings",
    "HandoffCallItem",
    "HandoffOutputItem",
    "MessageOutputItem",
    "RawResponsesStreamEvent",
    "ReasoningItem",
    "RunConfig",
    "RunContextWrapper",
    "RunHooks",
    "RunItem",
    "RunItemStreamEvent",
    "RunResult",
    "RunResultStreaming",
    "RunState",
    "Runner",
    "ToolApprovalItem",
    "ToolCallItem",
    "ToolCallOutputItem",
    "ToolContext",
    "compact_session",
    "wait_for_compactions",
]
