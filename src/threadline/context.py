"""The run context handed to tools, dynamic instructions and hooks.

It lives low in the layer stack so that tools and agents can name it without importing the
runner; :mod:`threadline.run` re-exports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .usage import Usage

__all__ = ["RunContextWrapper", "TContext", "ToolContext"]

TContext = TypeVar("TContext")


@dataclass
class RunContextWrapper(Generic[TContext]):
    """Wraps the ``context`` object passed to ``Runner.run``; ``usage`` so far is kept here too."""

    context: TContext
    usage: Usage = field(default_factory=Usage)


@dataclass
class ToolContext(RunContextWrapper[TContext]):
    """The context a tool sees: the run context plus which call it is answering."""

    tool_name: str = ""
    tool_call_id: str = ""
    tool_arguments: str = ""
    run_nested: Callable[[Any, str], Awaitable[Any]] | None = field(default=None, repr=False)
    """Set by the runner: runs another agent on an input within this run (``Agent.as_tool``)."""
