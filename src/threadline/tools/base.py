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
from ..errors import UserError
from .guardrails import ToolInputGuardrail, ToolOutputGuardrail

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
    :class:`~threadline.errors.ToolError` instead. ``tool_input_guardrails`` /
    ``tool_output_guardrails`` run before / after each call (see
    :mod:`threadline.tools.guardrails`). ``is_enabled`` (a bool, or a function of
    ``(context_wrapper, agent)``, sync or async) says whether the model is offered the tool
    this turn.

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
    tool_input_guardrails: list[ToolInputGuardrail[Any]] | None = None
    tool_output_guardrails: list[ToolOutputGuardrail[Any]] | None = None
    is_enabled: bool | Callable[[RunContextWrapper[Any], Any], Any] = True
    needs_approval: bool | ApprovalFunction = False

    def __post_init__(self) -> None:
        for field_name, kind in (
            ("tool_input_guardrails", ToolInputGuardrail),
            ("tool_output_guardrails", ToolOutputGuardrail),
        ):
            guards = getattr(self, field_name)
            if guards is None:
                continue
            if not isinstance(guards, (list, tuple)):
                raise UserError(
                    f"tool {self.name!r}: {field_name} must be a list, got {type(guards).__name__}"
                )
            for index, guard in enumerate(guards):
                if not isinstance(guard, kind):
                    decorator = "tool_input" if kind is ToolInputGuardrail else "tool_output"
                    raise UserError(
                        f"tool {self.name!r}: {field_name}[{index}] is a "
                        f"{type(guard).__name__}, not a {kind.__name__}; decorate the function "
                        f"with @{decorator}_guardrail"
                    )
        if not (isinstance(self.is_enabled, bool) or callable(self.is_enabled)):
            raise UserError(
                f"tool {self.name!r}: is_enabled must be a bool or a function of "
                f"(context_wrapper, agent), got {type(self.is_enabled).__name__}"
            )


Tool = FunctionTool
"""The tool type an agent takes (the OpenAI Agents SDK's name); today only function tools."""
