"""Spans for runs, model calls and tool calls, handed to registered processors.

Nothing is sent anywhere by default: with no processor registered, spans are measured and
dropped. ``set_tracing_disabled(True)`` stops even that.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

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

SpanKind = Literal["run", "agent", "model", "tool", "handoff", "compaction"]


@dataclass
class Span:
    """One timed operation. ``attributes`` holds e.g. agent name, model, usage, tool name."""

    kind: SpanKind
    name: str
    trace_id: str
    span_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    parent_id: str | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds between start and end, ``None`` while the span is open."""
        return None if self.ended_at is None else self.ended_at - self.started_at


@runtime_checkable
class TracingProcessor(Protocol):
    """Receives spans as they start and end. Must be fast and must not raise."""

    def on_span_start(self, span: Span) -> None:
        """Called when ``span`` opens."""
        ...

    def on_span_end(self, span: Span) -> None:
        """Called when ``span`` closes, with ``ended_at`` and any ``error`` set."""
        ...


_lock = threading.Lock()
_processors: list[TracingProcessor] = []
_disabled = False
_current: ContextVar[Span | None] = ContextVar("threadline_current_span", default=None)


def set_tracing_disabled(disabled: bool) -> None:
    """Turn tracing off (``True``) or on (``False``) for the whole process."""
    global _disabled
    _disabled = bool(disabled)


def is_tracing_disabled() -> bool:
    """Whether tracing is turned off."""
    return _disabled


def add_trace_processor(processor: TracingProcessor) -> None:
    """Register ``processor`` in addition to the current ones."""
    with _lock:
        _processors.append(processor)


def set_trace_processors(processors: list[TracingProcessor]) -> None:
    """Replace every registered processor with ``processors``."""
    with _lock:
        _processors[:] = list(processors)


def get_trace_processors() -> list[TracingProcessor]:
    """A copy of the registered processors."""
    with _lock:
        return list(_processors)


def _notify(method: str, opened: Span) -> None:
    for processor in get_trace_processors():
        try:
            getattr(processor, method)(opened)
        except Exception:  # a broken exporter must never break a run
            continue


@contextmanager
def span(
    kind: SpanKind, name: str, *, disabled: bool = False, **attributes: Any
) -> Iterator[Span | None]:
    """Open a span around a block; yields ``None`` when tracing is disabled.

    The block may add to ``span.attributes`` (e.g. usage once known). An exception escaping the
    block is recorded in ``span.error`` and re-raised.
    """
    if disabled or _disabled:
        yield None
        return
    parent = _current.get()
    opened = Span(
        kind=kind,
        name=name,
        trace_id=parent.trace_id if parent else uuid.uuid4().hex,
        parent_id=parent.span_id if parent else None,
        attributes=dict(attributes),
    )
    token = _current.set(opened)
    _notify("on_span_start", opened)
    try:
        yield opened
    except BaseException as exc:
        opened.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        opened.ended_at = time.time()
        _current.reset(token)
        _notify("on_span_end", opened)
