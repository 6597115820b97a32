"""Carry out function calls: run tools concurrently and turn results into output items."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._aio import gather_or_cancel
from ..context import RunContextWrapper, ToolContext
from ..errors import (
    NestedRunError,
    ToolArgumentsError,
    ToolError,
    ToolInputGuardrailTripwireTriggered,
    ToolOutputGuardrailTripwireTriggered,
)
from ..items import Item, function_call_output
from ..tools.base import FunctionTool
from ..tools.function_tool import tool_output_to_str
from ..tools.guardrails import (
    ToolInputGuardrailData,
    ToolInputGuardrailResult,
    ToolOutputGuardrailData,
    ToolOutputGuardrailResult,
)
from ..tracing import span
from .hooks import RunHooks
from .steps import PlannedCall

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["ToolResult", "run_tools"]

NestedRun = Callable[[Any, str], Awaitable[Any]]
logger = logging.getLogger("threadline.run")


class ToolResult:
    """The outcome of one call: the output item for the model, the Python value, and what
    the tool's guardrails said."""

    __slots__ = ("input_guardrail_results", "item", "output_guardrail_results", "value")

    def __init__(
        self,
        item: Item,
        value: Any,
        input_guardrail_results: list[ToolInputGuardrailResult] | None = None,
        output_guardrail_results: list[ToolOutputGuardrailResult] | None = None,
    ) -> None:
        self.item = item
        self.value = value
        self.input_guardrail_results = input_guardrail_results or []
        self.output_guardrail_results = output_guardrail_results or []


async def _input_guardrails(
    tool: FunctionTool,
    data: ToolInputGuardrailData,
    results: list[ToolInputGuardrailResult],
) -> str | None:
    """Run the tool's input guardrails in order; the rejection message of the first that
    rejects, ``None`` when all allow. ``raise_exception`` stops the run."""
    for guard in tool.tool_input_guardrails or ():
        output = await guard.run(data)
        results.append(ToolInputGuardrailResult(guardrail=guard, output=output))
        behavior = output.behavior
        if behavior["type"] == "raise_exception":
            raise ToolInputGuardrailTripwireTriggered(guard, output)
        if behavior["type"] == "reject_content":
            logger.debug("threadline: tool call %s rejected by %s", tool.name, guard.get_name())
            return behavior["message"]
    return None


async def _output_guardrails(
    tool: FunctionTool,
    data: ToolOutputGuardrailData,
    results: list[ToolOutputGuardrailResult],
) -> str | None:
    """Run the tool's output guardrails in order, as :func:`_input_guardrails` does."""
    for guard in tool.tool_output_guardrails or ():
        output = await guard.run(data)
        results.append(ToolOutputGuardrailResult(guardrail=guard, output=output))
        behavior = output.behavior
        if behavior["type"] == "raise_exception":
            raise ToolOutputGuardrailTripwireTriggered(guard, output)
        if behavior["type"] == "reject_content":
            logger.debug(
                "threadline: tool output of %s rejected by %s", tool.name, guard.get_name()
            )
            return behavior["message"]
    return None


async def _run_one(
    planned: PlannedCall,
    agent: Agent[Any],
    context: RunContextWrapper[Any],
    hooks: RunHooks[Any],
    nested_run: NestedRun,
    tracing_disabled: bool,
) -> ToolResult:
    call = planned.call
    arguments = str(call.get("arguments", ""))
    if planned.tool is None:
        text = planned.problem or "Error: this call cannot be carried out."
        logger.debug("threadline: tool call %s refused: %s", call.get("name"), text)
        return ToolResult(function_call_output(call["call_id"], text), text)
    logger.debug(
        "threadline: tool call %s(%s) [%s]", call.get("name"), _short(arguments), call["call_id"]
    )
    tool = planned.tool
    tool_context: ToolContext[Any] = ToolContext(
        context=context.context,
        usage=context.usage,
        tool_name=tool.name,
        tool_call_id=call["call_id"],
        tool_arguments=call.get("arguments", ""),
        run_nested=nested_run,
    )
    input_results: list[ToolInputGuardrailResult] = []
    output_results: list[ToolOutputGuardrailResult] = []
    rejected = await _input_guardrails(
        tool, ToolInputGuardrailData(context=tool_context, agent=agent), input_results
    )
    if rejected is not None:  # the call is answered by the rejection; the tool never runs
        item = function_call_output(call["call_id"], rejected)
        return ToolResult(item, rejected, input_results)
    with span("tool", tool.name, disabled=tracing_disabled, arguments=call.get("arguments")) as sp:
        await hooks.on_tool_start(context, agent, tool)
        try:
            value = await tool.on_invoke_tool(tool_context, call.get("arguments", "") or "")
        except ToolArgumentsError as exc:
            value = f"Error: {exc}"
        except NestedRunError:  # a mistake in the program, not the tool's failure to report
            raise
        except Exception as exc:
            logger.debug("threadline: tool %s raised %s: %s", tool.name, type(exc).__name__, exc)
            if tool.failure_error_function is None:
                raise ToolError(tool.name, f"{type(exc).__name__}: {exc}") from exc
            message = tool.failure_error_function(context, exc)
            value = await message if inspect.isawaitable(message) else message
            if sp is not None:
                sp.error = f"{type(exc).__name__}: {exc}"
        rejected = await _output_guardrails(
            tool,
            ToolOutputGuardrailData(context=tool_context, agent=agent, output=value),
            output_results,
        )
        if rejected is not None:
            value = rejected
        text = tool_output_to_str(value)
        logger.debug("threadline: tool %s returned %s", tool.name, _short(text))
        if sp is not None:
            sp.attributes["output"] = text[:1000]
        await hooks.on_tool_end(context, agent, tool, text)
    return ToolResult(
        function_call_output(call["call_id"], text), value, input_results, output_results
    )


def _short(text: str, width: int = 200) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


async def run_tools(
    calls: list[PlannedCall],
    agent: Agent[Any],
    context: RunContextWrapper[Any],
    hooks: RunHooks[Any],
    nested_run: NestedRun,
    tracing_disabled: bool,
) -> list[ToolResult]:
    """Run every planned call concurrently; results keep the calls' order.

    If one tool fails with :class:`ToolError`, the others are cancelled and the error raised.
    """
    if not calls:
        return []
    return await gather_or_cancel(
        _run_one(c, agent, context, hooks, nested_run, tracing_disabled) for c in calls
    )
