"""The tool interface the runner executes.

A :class:`FunctionTool` is a name, a description, a JSON schema for its arguments and an async
callable that receives the :class:`~threadline.context.ToolContext` and the model's raw JSON
argument string. :func:`threadline.function_tool` builds one from a typed Python function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..context import RunContextWrapper, ToolContext

__all__ = [
    "ApprovalFunction",
    "FunctionTool",
    "Tool",
    "ToolErrorFunction",
    "default_tool_error_function",
]

ToolErrorFunction = Callable[[RunContextWrapper[Any], Exception], "str | Awaitable[str]"]

ApprovalFunction = Callable[[RunContextWrapper[Any], dict[str, Any], str], "bool | Awaitable[bool]"]
"""``(run context, parsed arguments, call id) -> bool``: whether this call needs approval."""


def default_tool_error_function(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """The message the model sees when a tool raises: the error, so it can recover."""
    return f"An error occurred while running the tool. Please try again. Error: {error}"


@dataclass
class FunctionTool:
    """A tool the model can call by name with JSON arguments.

    ``on_invoke_tool(ctx, arguments_json)`` returns the tool's result (converted to a string for
    the model). When it raises, ``failure_error_function`` turns the exception into the output
    the model sees; set it to ``None`` to make the run fail with
    :class:`~threadline.errors.ToolError` instead.

    ``needs_approval`` (``True``, or an :data:`ApprovalFunction` deciding per call) stops the
    run before the call is carried out: the run returns it in ``result.interruptions``, and
    resumes from ``result.to_state()`` once it was approved or rejected (see
    ``docs/approvals.md``).
    """

    name: str
    description: str
    params_json_schema: dict[str, Any]
    on_invoke_tool: Callable[[ToolContext[Any], str], Awaitable[Any]]
    strict_json_schema: bool = True
    failure_error_function: ToolErrorFunction | None = default_tool_error_function
    needs_approval: bool | ApprovalFunction = False


Tool = FunctionTool
