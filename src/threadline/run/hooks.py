"""Lifecycle hooks: subclass :class:`RunHooks` and override what you need."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic

from ..context import RunContextWrapper, TContext
from ..tools.base import FunctionTool

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["RunHooks"]


class RunHooks(Generic[TContext]):
    """Callbacks for a run; each receives the run context. The defaults do nothing."""

    async def on_agent_start(self, context: RunContextWrapper[TContext], agent: Agent[Any]) -> None:
        """An agent is about to be called (at the start and after each handoff)."""

    async def on_agent_end(
        self, context: RunContextWrapper[TContext], agent: Agent[Any], output: Any
    ) -> None:
        """``agent`` produced the run's final output."""

    async def on_handoff(
        self, context: RunContextWrapper[TContext], from_agent: Agent[Any], to_agent: Agent[Any]
    ) -> None:
        """Control passed from ``from_agent`` to ``to_agent``."""

    async def on_tool_start(
        self, context: RunContextWrapper[TContext], agent: Agent[Any], tool: FunctionTool
    ) -> None:
        """``tool`` is about to run."""

    async def on_tool_end(
        self,
        context: RunContextWrapper[TContext],
        agent: Agent[Any],
        tool: FunctionTool,
        result: str,
    ) -> None:
        """``tool`` finished; ``result`` is what the model will see."""
