"""Pure decisions: what did the model ask for, and is the run finished?

Nothing here performs I/O; :mod:`threadline.run.loop` carries out what these functions decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..items import Item, function_call_output, message_text
from ..models.base import ModelResponse, ToolSpec
from ..tools.base import FunctionTool

if TYPE_CHECKING:
    from ..agent import Agent, Handoff

__all__ = ["PlannedCall", "StepPlan", "plan_step", "tool_specs"]


@dataclass
class PlannedCall:
    """One function call to carry out: a tool, or a problem to report back to the model."""

    call: Item
    tool: FunctionTool | None = None
    problem: str | None = None


@dataclass
class StepPlan:
    """What one model response asks for."""

    tool_calls: list[PlannedCall] = field(default_factory=list)
    handoff: Handoff | None = None
    handoff_call: Item | None = None
    extra_handoff_outputs: list[Item] = field(default_factory=list)
    refused_outputs: list[Item] = field(default_factory=list)
    """Outputs answering calls threadline cannot carry out (a ``custom_tool_call``)."""
    final_text: str | None = None

    @property
    def has_calls(self) -> bool:
        """Whether the model called any tool or handoff."""
        return bool(self.tool_calls or self.refused_outputs) or self.handoff is not None


def tool_specs(agent: Agent[Any], tools: list[FunctionTool] | None = None) -> list[ToolSpec]:
    """The tools (``tools``, by default all of the agent's) and handoffs of ``agent`` as the
    model sees them."""
    specs = [
        ToolSpec(t.name, t.description, t.params_json_schema, t.strict_json_schema)
        for t in (agent.tools if tools is None else tools)
    ]
    specs += [
        ToolSpec(h.tool_name, h.tool_description, h.parameters, True, handoff=True)
        for h in agent.get_handoffs()
    ]
    return specs


def _refuse_custom_call(item: Item, tools: dict[str, FunctionTool]) -> Item:
    """The ``custom_tool_call_output`` answering a custom tool call, which no threadline
    tool can run: the stored history stays valid to send, and the model can try again."""
    available = ", ".join(sorted(tools)) or "none"
    return {
        "type": "custom_tool_call_output",
        "call_id": item.get("call_id", ""),
        "output": (
            f"Error: {item.get('name', '')!r} is a custom tool, which this agent cannot run; "
            f"call one of its function tools instead. Available tools: {available}."
        ),
    }


def plan_step(
    agent: Agent[Any], response: ModelResponse, offered: list[FunctionTool] | None = None
) -> StepPlan:
    """Sort the response's function calls into tool runs and a handoff; find the final text.

    Unknown tool names (and tools not ``offered`` to the model this turn, when given) become a
    problem reported to the model as the call's output. Only the first handoff is taken; any
    others are answered with an explanation.
    """
    tools = {t.name: t for t in (agent.tools if offered is None else offered)}
    handoffs = {h.tool_name: h for h in agent.get_handoffs()}
    plan = StepPlan()
    texts: list[str] = []
    for item in response.output:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role", "assistant") == "assistant":
            texts.append(message_text(item))
        if kind == "custom_tool_call":
            plan.refused_outputs.append(_refuse_custom_call(item, tools))
            continue
        if kind != "function_call":
            continue
        name = item.get("name", "")
        if name in handoffs:
            if plan.handoff is None:
                plan.handoff, plan.handoff_call = handoffs[name], item
            else:
                plan.extra_handoff_outputs.append(
                    function_call_output(
                        item["call_id"], "Only one handoff can be taken at a time; ignored."
                    )
                )
        elif name in tools:
            plan.tool_calls.append(PlannedCall(call=item, tool=tools[name]))
        else:
            available = ", ".join(sorted([*tools, *handoffs])) or "none"
            plan.tool_calls.append(
                PlannedCall(
                    call=item,
                    problem=f"Error: there is no tool named {name!r}. Available tools: {available}.",
                )
            )
    if texts:
        plan.final_text = texts[-1]
    return plan
