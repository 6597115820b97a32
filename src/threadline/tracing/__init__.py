"""Tracing: spans for runs, model calls and tool calls, delivered to in-process processors."""

from .spans import (
    Span,
    SpanKind,
    TracingProcessor,
    add_trace_processor,
    get_trace_processors,
    is_tracing_disabled,
    set_trace_processors,
    set_tracing_disabled,
    span,
)

__all__ = [
    "Span",
    "SpanKind",
    "TracingProcessor",
    "add_trace_processor",
    "get_trace_processors",
    "is_tracing_disabled",
    "set_trace_processors",
    "set_tracing_disabled",
    "span",
]
