"""threadline: agents that remember.

The public API. Names are imported on first use, so ``import threadline`` stays fast and
the ``openai`` client is only loaded when a model is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Agent": ".agent",
    "Handoff": ".agent",
    "handoff": ".agent",
    "RunContextWrapper": ".context",
    "ToolContext": ".context",
    "CorruptItemError": ".errors",
    "GuardrailFunctionOutput": ".guardrails",
    "InputGuardrail": ".guardrails",
    "InputGuardrailResult": ".guardrails",
    "OutputGuardrail": ".guardrails",
    "OutputGuardrailResult": ".guardrails",
    "input_guardrail": ".guardrails",
    "output_guardrail": ".guardrails",
    "GuardrailTripwireTriggered": ".errors",
    "InputGuardrailTripwireTriggered": ".errors",
    "OutputGuardrailTripwireTriggered": ".errors",
    "LeaseLostError": ".errors",
    "MaxTurnsExceeded": ".errors",
    "MissingDependencyError": ".errors",
    "ModelAuthenticationError": ".errors",
    "ModelBehaviorError": ".errors",
    "ModelConnectionError": ".errors",
    "ModelError": ".errors",
    "ModelNotConfiguredError": ".errors",
    "ModelRateLimitError": ".errors",
    "ModelTimeoutError": ".errors",
    "RunError": ".errors",
    "PendingRunError": ".errors",
    "StaleRunStateError": ".errors",
    "SchemaVersionError": ".errors",
    "SessionBusyError": ".errors",
    "SessionClosedError": ".errors",
    "SettingsError": ".errors",
    "SessionError": ".errors",
    "ThreadlineError": ".errors",
    "ToolArgumentsError": ".errors",
    "ToolError": ".errors",
    "UserError": ".errors",
    "ItemHelpers": ".items",
    "Usage": ".usage",
    "Model": ".models.base",
    "ModelProvider": ".models.base",
    "ModelResponse": ".models.base",
    "ModelSettings": ".models.settings",
    "OpenAIChatCompletionsModel": ".models.openai_chat",
    "OpenAIResponsesModel": ".models.openai_responses",
    "OpenAIProvider": ".models.openai_provider",
    "FunctionTool": ".tools.base",
    "Tool": ".tools.base",
    "function_tool": ".tools.function_tool",
    "Span": ".tracing",
    "TracingProcessor": ".tracing",
    "add_trace_processor": ".tracing",
    "set_trace_processors": ".tracing",
    "set_tracing_disabled": ".tracing",
    "AgentUpdatedStreamEvent": ".run",
    "HandoffCallItem": ".run",
    "HandoffOutputItem": ".run",
    "MessageOutputItem": ".run",
    "RawResponsesStreamEvent": ".run",
    "ReasoningItem": ".run",
    "RunConfig": ".run",
    "RunHooks": ".run",
    "RunItem": ".run",
    "RunItemStreamEvent": ".run",
    "RunResult": ".run",
    "RunResultStreaming": ".run",
    "Runner": ".run",
    "RunState": ".run",
    "ToolApprovalItem": ".run",
    "set_default_openai_api": ".run.model_resolution",
    "set_default_openai_client": ".run.model_resolution",
    "set_default_openai_key": ".run.model_resolution",
    "ToolCallItem": ".run",
    "ToolCallOutputItem": ".run",
    "InMemorySession": ".sessions",
    "InMemoryStore": ".sessions",
    "SessionStore": ".sessions",
    "open_store": ".sessions",
    "SQLiteSession": ".sessions",
    "SQLiteStore": ".sessions",
    "Session": ".sessions",
    "SessionSettings": ".sessions",
}

__all__ = [
    "Agent",
    "AgentUpdatedStreamEvent",
    "AsyncOpenAI",
    "CorruptItemError",
    "FunctionTool",
    "GuardrailFunctionOutput",
    "GuardrailTripwireTriggered",
    "Handoff",
    "HandoffCallItem",
    "HandoffOutputItem",
    "InMemorySession",
    "InMemoryStore",
    "InputGuardrail",
    "InputGuardrailResult",
    "InputGuardrailTripwireTriggered",
    "ItemHelpers",
    "LeaseLostError",
    "MaxTurnsExceeded",
    "MessageOutputItem",
    "MissingDependencyError",
    "Model",
    "ModelAuthenticationError",
    "ModelBehaviorError",
    "ModelConnectionError",
    "ModelError",
    "ModelNotConfiguredError",
    "ModelProvider",
    "ModelRateLimitError",
    "ModelResponse",
    "ModelSettings",
    "ModelTimeoutError",
    "OpenAIChatCompletionsModel",
    "OpenAIProvider",
    "OpenAIResponsesModel",
    "OutputGuardrail",
    "OutputGuardrailResult",
    "OutputGuardrailTripwireTriggered",
    "PendingRunError",
    "RawResponsesStreamEvent",
    "ReasoningItem",
    "RunConfig",
    "RunContextWrapper",
    "RunError",
    "RunHooks",
    "RunItem",
    "RunItemStreamEvent",
    "RunResult",
    "RunResultStreaming",
    "RunState",
    "Runner",
    "SQLiteSession",
    "SQLiteStore",
    "SchemaVersionError",
    "Session",
    "SessionBusyError",
    "SessionClosedError",
    "SessionError",
    "SessionSettings",
    "SessionStore",
    "SettingsError",
    "Span",
    "StaleRunStateError",
    "ThreadlineError",
    "Tool",
    "ToolApprovalItem",
    "ToolArgumentsError",
    "ToolCallItem",
    "ToolCallOutputItem",
    "ToolContext",
    "ToolError",
    "TracingProcessor",
    "Usage",
    "UserError",
    "__version__",
    "add_trace_processor",
    "function_tool",
    "handoff",
    "input_guardrail",
    "open_store",
    "output_guardrail",
    "set_default_openai_api",
    "set_default_openai_client",
    "set_default_openai_key",
    "set_trace_processors",
    "set_tracing_disabled",
]

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from .agent import Agent, Handoff, handoff
    from .context import RunContextWrapper, ToolContext
    from .errors import (
        CorruptItemError,
        GuardrailTripwireTriggered,
        InputGuardrailTripwireTriggered,
        LeaseLostError,
        MaxTurnsExceeded,
        MissingDependencyError,
        ModelAuthenticationError,
        ModelBehaviorError,
        ModelConnectionError,
        ModelError,
        ModelNotConfiguredError,
        ModelRateLimitError,
        ModelTimeoutError,
        OutputGuardrailTripwireTriggered,
        PendingRunError,
        RunError,
        SchemaVersionError,
        SessionBusyError,
        SessionClosedError,
        SessionError,
        SettingsError,
        StaleRunStateError,
        ThreadlineError,
        ToolArgumentsError,
        ToolError,
        UserError,
    )
    from .guardrails import (
        GuardrailFunctionOutput,
        InputGuardrail,
        InputGuardrailResult,
        OutputGuardrail,
        OutputGuardrailResult,
        input_guardrail,
        output_guardrail,
    )
    from .items import ItemHelpers
    from .models.base import Model, ModelProvider, ModelResponse
    from .models.openai_chat import OpenAIChatCompletionsModel
    from .models.openai_provider import OpenAIProvider
    from .models.openai_responses import OpenAIResponsesModel
    from .models.settings import ModelSettings
    from .run import (
        AgentUpdatedStreamEvent,
        HandoffCallItem,
        HandoffOutputItem,
        MessageOutputItem,
        RawResponsesStreamEvent,
        ReasoningItem,
        RunConfig,
        RunHooks,
        RunItem,
        RunItemStreamEvent,
        Runner,
        RunResult,
        RunResultStreaming,
        RunState,
        ToolApprovalItem,
        ToolCallItem,
        ToolCallOutputItem,
    )
    from .run.model_resolution import (
        set_default_openai_api,
        set_default_openai_client,
        set_default_openai_key,
    )
    from .sessions import (
        InMemorySession,
        InMemoryStore,
        Session,
        SessionSettings,
        SessionStore,
        SQLiteSession,
        SQLiteStore,
        open_store,
    )
    from .tools.base import FunctionTool, Tool
    from .tools.function_tool import function_tool
    from .tracing import (
        Span,
        TracingProcessor,
        add_trace_processor,
        set_trace_processors,
        set_tracing_disabled,
    )
    from .usage import Usage


def __getattr__(name: str) -> Any:
    if name == "AsyncOpenAI":
        from openai import AsyncOpenAI

        return AsyncOpenAI
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'threadline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
