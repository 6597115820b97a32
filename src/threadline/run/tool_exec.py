"""Carry out function calls: run tools concurrently and turn results into output items."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..context import RunContextWrapper, ToolContext
from ..errors import ToolArgumentsError, ToolError
from ..items import Item, function_call_output
from ..tools.function_tool import tool_output_to_str
from ..tracing import span
from .hooks import RunHooks
from .steps import PlannedCall

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["ToolResult", "run_tools"]

NestedRun = Callable[[Any, str], Awaitable[Any]]
logger = logging.getLogger("threadline.run")


class ToolResult:
    """The outcome of one call: the output item for the model, and the Python value."""

    __slots__ = ("item", "value")

    def __init__(self, item: Item, value: Any) -> None:
        self.item = item
        self.value = value


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
    with span("tool", tool.name, disabled=tracing_disabled, arguments=call.get("arguments")) as sp:
        await hooks.on_tool_start(context, agent, tool)
        try:
            value = await tool.on_invoke_tool(tool_context, call.get("arguments", "") or "")
        except ToolArgumentsError as exc:
            value = f"Error: {exc}"
        except Exception as exc:
            logger.debug("threadline: tool %s raised %s: %s", tool.name, type(exc).__name__, exc)
            if tool.failure_error_function is None:
                raise ToolError(tool.name, f"{type(exc).__name__}: {exc}") from exc
            message = tool.failure_error_function(context, exc)
            value = await message if inspect.isawaitable(message) else message
            if sp is not None:
                sp.error = f"{type(exc).__name__}: {exc}"
        text = tool_output_to_str(value)
        logger.debug("threadline: tool %s returned %s", tool.name, _short(text))
        if sp is not None:
            sp.attributes["output"] = text[:1000]
        await hooks.on_tool_end(context, agent, tool, text)
    return ToolResult(function_call_output(call["call_id"], text), value)


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
    tasks = [
        asyncio.ensure_future(_run_one(c, agent, context, hooks, nested_run, tracing_disabled))
        for c in calls
    ]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
