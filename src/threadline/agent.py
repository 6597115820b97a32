"""Agents, handoffs, and agents used as tools."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal

from .agent_output import AgentOutputSchema
from .context import RunContextWrapper, TContext, ToolContext
from .errors import UserError
from .guardrails import InputGuardrail, OutputGuardrail
from .items import Item
from .models.base import Model
from .models.settings import ModelSettings
from .tools.base import FunctionTool

__all__ = ["Agent", "Handoff", "HandoffInputData", "Instructions", "handoff"]

Instructions = (
    str
    | Callable[[RunContextWrapper[Any], "Agent[Any]"], str]
    | Callable[[RunContextWrapper[Any], "Agent[Any]"], Awaitable[str]]
    | None
)


@dataclass
class Agent(Generic[TContext]):
    """An LLM with instructions, tools and handoffs.

    ``instructions`` is a string or a function of ``(context_wrapper, agent)`` returning one
    (sync or async). ``model`` is a :class:`~threadline.models.base.Model`, a model name
    resolved by the run's provider, or ``None`` for the provider's default.
    ``output_type`` asks for structured output validated with pydantic; ``None`` or ``str``
    means plain text. ``tool_use_behavior="stop_on_first_tool"`` ends the run with the first
    tool's output instead of sending it back to the model. ``input_guardrails`` check the run's
    input when this agent starts a run; ``output_guardrails`` its final output (see
    :mod:`threadline.guardrails`).
    """

    name: str
    instructions: Instructions = None
    model: str | Model | None = None
    model_settings: ModelSettings = field(default_factory=ModelSettings)
    tools: list[FunctionTool] = field(default_factory=list)
    handoffs: list[Agent[Any] | Handoff] = field(default_factory=list)
    output_type: Any = None
    handoff_description: str | None = None
    tool_use_behavior: Literal["run_llm_again", "stop_on_first_tool"] = "run_llm_again"
    input_guardrails: list[InputGuardrail[Any]] = field(default_factory=list)
    output_guardrails: list[OutputGuardrail[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise UserError(f"Agent name must be a non-empty string, got {self.name!r}")
        if not (self.instructions is None or isinstance(self.instructions, str)) and not callable(
            self.instructions
        ):
            raise UserError(
                f"Agent {self.name!r}: instructions must be a string or a function, "
                f"got {type(self.instructions).__name__}"
            )
        for index, tool in enumerate(self.tools):
            if not isinstance(tool, FunctionTool):
                raise UserError(
                    f"Agent {self.name!r}: tools[{index}] is a {type(tool).__name__}, not a tool; "
                    "decorate functions with @function_tool"
                )
        for field_name, kind in (
            ("input_guardrails", InputGuardrail),
            ("output_guardrails", OutputGuardrail),
        ):
            for index, guard in enumerate(getattr(self, field_name)):
                if not isinstance(guard, kind):
                    raise UserError(
                        f"Agent {self.name!r}: {field_name}[{index}] is a "
                        f"{type(guard).__name__}, not a {kind.__name__}; decorate functions with "
                        f"@{'input' if kind is InputGuardrail else 'output'}_guardrail"
                    )
        for index, target in enumerate(self.handoffs):
            if not isinstance(target, (Agent, Handoff)):
                raise UserError(
                    f"Agent {self.name!r}: handoffs[{index}] must be an Agent or a handoff(), "
                    f"got {type(target).__name__}"
                )
        if self.tool_use_behavior not in ("run_llm_again", "stop_on_first_tool"):
            raise UserError(
                f"Agent {self.name!r}: tool_use_behavior must be 'run_llm_again' or "
                f"'stop_on_first_tool', got {self.tool_use_behavior!r}"
            )

    def clone(self, **changes: Any) -> Agent[TContext]:
        """A copy of this agent with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    async def get_instructions(self, context: RunContextWrapper[TContext]) -> str | None:
        """The system prompt for this turn, calling dynamic instructions if needed."""
        if self.instructions is None or isinstance(self.instructions, str):
            return self.instructions
        value = self.instructions(context, self)
        if inspect.isawaitable(value):
            value = await value
        if not isinstance(value, str):
            raise UserError(
                f"Agent {self.name!r}: the instructions function returned "
                f"{type(value).__name__}, expected str"
            )
        return value

    @property
    def output_schema(self) -> AgentOutputSchema | None:
        """The structured output schema, or ``None`` for plain text output."""
        if self.output_type is None or self.output_type is str:
            return None
        cached = self.__dict__.get("_output_schema")
        if cached is None or cached.output_type is not self.output_type:
            cached = AgentOutputSchema(self.output_type)
            self.__dict__["_output_schema"] = cached
        return cached

    def get_handoffs(self) -> list[Handoff]:
        """This agent's handoffs, each as a :class:`Handoff`."""
        return [h if isinstance(h, Handoff) else handoff(h) for h in self.handoffs]

    def as_tool(
        self,
        tool_name: str | None = None,
        tool_description: str | None = None,
        custom_output_extractor: Callable[[Any], str | Awaitable[str]] | None = None,
        is_enabled: bool | Callable[[RunContextWrapper[Any], Agent[Any]], Any] = True,
    ) -> FunctionTool:
        """This agent as a tool: the caller keeps control and gets this agent's final output.

        The tool takes one string argument, ``input``, runs this agent on it as a nested run
        sharing the caller's context, and returns the final output as text (or what
        ``custom_output_extractor(result)`` returns). ``is_enabled`` — a bool, or a function of
        ``(context_wrapper, agent)`` (sync or async) asked before every model call — says
        whether the model is offered the tool.
        """
        name = tool_name or _snake(self.name)
        agent = self

        async def invoke(ctx: ToolContext[Any], arguments: str) -> Any:
            from .errors import ToolArgumentsError

            try:
                parsed = json.loads(arguments or "{}")
            except json.JSONDecodeError as exc:
                raise ToolArgumentsError(name, f"arguments are not valid JSON: {exc}") from exc
            if not isinstance(parsed, dict) or not isinstance(parsed.get("input"), str):
                raise ToolArgumentsError(name, "expected an object with a string 'input'")
            if ctx.run_nested is None:
                raise UserError(f"agent tool {name!r} can only be called by the Runner")
            result = await ctx.run_nested(agent, parsed["input"])
            if custom_output_extractor is not None:
                extracted = custom_output_extractor(result)
                return await extracted if inspect.isawaitable(extracted) else extracted
            return result.final_output

        return FunctionTool(
            name=name,
            description=tool_description or self.handoff_description or f"Ask {self.name}.",
            params_json_schema={
                "type": "object",
                "properties": {"input": {"type": "string", "description": "The request."}},
                "required": ["input"],
                "additionalProperties": False,
            },
            on_invoke_tool=invoke,
            is_enabled=is_enabled,
        )


@dataclass(frozen=True)
class HandoffInputData:
    """What a handoff's ``input_filter`` receives and returns (the SDK's shape).

    ``input_history`` is the run's input history (a session's window and the run's input);
    ``pre_handoff_items`` the run items of the turns before the handoff; ``new_items`` those
    of the handoff's turn (the handoff call and its output included). When the filter sets
    ``input_items``, the next agent sees those instead of ``new_items``. :meth:`clone` makes a
    changed copy.
    """

    input_history: str | tuple[Item, ...]
    pre_handoff_items: tuple[Any, ...]
    new_items: tuple[Any, ...]
    run_context: RunContextWrapper[Any] | None = None
    input_items: tuple[Any, ...] | None = None

    def clone(self, **changes: Any) -> HandoffInputData:
        """A copy with ``changes`` applied, e.g. ``data.clone(pre_handoff_items=())``."""
        return dataclasses.replace(self, **changes)


HandoffInputFilter = Callable[[HandoffInputData], "HandoffInputData | Awaitable[HandoffInputData]"]
"""A function (sync or async) from the handoff's :class:`HandoffInputData` to what the next
agent sees."""


@dataclass
class Handoff:
    """A tool that transfers the conversation to another agent.

    ``on_handoff(context_wrapper)`` runs (sync or async) when the model takes the handoff.
    ``input_filter`` rewrites what the next agent sees (see :class:`HandoffInputData`); the
    session keeps every item as it was produced.
    """

    agent: Agent[Any]
    tool_name: str
    tool_description: str
    on_handoff: Callable[[RunContextWrapper[Any]], Any] | None = None
    input_filter: HandoffInputFilter | None = None

    @property
    def parameters(self) -> dict[str, Any]:
        """The (empty) JSON schema of the handoff tool's arguments."""
        return {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


def handoff(
    agent: Agent[Any],
    *,
    tool_name_override: str | None = None,
    tool_description_override: str | None = None,
    on_handoff: Callable[[RunContextWrapper[Any]], Any] | None = None,
    input_filter: HandoffInputFilter | None = None,
) -> Handoff:
    """A handoff to ``agent``, by default as the tool ``transfer_to_<agent_name>``.

    ``input_filter`` receives the :class:`HandoffInputData` when the handoff is taken and
    returns what the next agent sees (for example the history without tool calls).
    """
    if not isinstance(agent, Agent):
        raise UserError(f"handoff() needs an Agent, got {type(agent).__name__}")
    if input_filter is not None and not callable(input_filter):
        raise UserError(
            f"handoff() input_filter must be a function of HandoffInputData, got "
            f"{type(input_filter).__name__}"
        )
    description = f"Hand off to the {agent.name} agent to handle the request."
    if agent.handoff_description:
        description += f" {agent.handoff_description}"
    return Handoff(
        agent=agent,
        tool_name=tool_name_override or f"transfer_to_{_snake(agent.name)}",
        tool_description=tool_description_override or description,
        on_handoff=on_handoff,
        input_filter=input_filter,
    )


def _snake(name: str) -> str:
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return cleaned or "agent"


def tool_names(agent: Agent[Any]) -> Sequence[str]:
    """Names of every tool and handoff the model may call on ``agent``."""
    return [t.name for t in agent.tools] + [h.tool_name for h in agent.get_handoffs()]
