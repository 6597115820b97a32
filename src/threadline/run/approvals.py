"""Human-in-the-loop approvals: which calls wait for a decision, and the decisions taken.

A function tool made with ``needs_approval`` is not run when the model calls it: the call
waits, as a :class:`ToolApprovalItem`, until ``RunState.approve`` or ``RunState.reject``
decides it. :class:`ApprovalBook` keeps the decisions of one run (per agent and tool: a set
of approved or rejected call ids, or "always"); :func:`gate_calls` sorts a step's calls into
those to run now, those answered already and those that must wait.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..context import RunContextWrapper
from ..errors import UserError
from ..items import Item, function_call_output
from .run_items import RunItem
from .steps import PlannedCall

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = [
    "ApprovalBook",
    "Gate",
    "ToolApprovalItem",
    "gate_calls",
    "rejection_output",
]


def _rejection_text(tool_name: str) -> str:
    return (
        f"The call of tool {tool_name!r} was not approved by the user, so it was not run. "
        "Do not retry it unless the user asks."
    )


@dataclass(init=False)
class ToolApprovalItem(RunItem):
    """A tool call that waits for approval: ``agent`` made it, ``raw_item`` is the
    ``function_call`` item; ``tool_name`` (the call's name unless given), ``arguments`` and
    ``call_id`` read from it. Made as the SDK makes it: ``(agent, raw_item, tool_name)``.

    Never sent to a model: a call waiting for approval is not part of any history yet.
    """

    tool_name: str | None = None
    type: Literal["tool_approval_item"] = "tool_approval_item"

    def __init__(
        self,
        agent: Agent[Any],
        raw_item: Item,
        tool_name: str | None = None,
        type: Literal["tool_approval_item"] = "tool_approval_item",
    ) -> None:
        self.agent = agent
        self.raw_item = raw_item
        self.tool_name = str(raw_item.get("name", "")) if tool_name is None else tool_name
        self.type = type

    @property
    def name(self) -> str | None:
        """The tool's name (as the SDK spells it, beside ``tool_name``)."""
        return self.tool_name

    @property
    def arguments(self) -> str | None:
        """The call's arguments, the model's JSON text."""
        value = self.raw_item.get("arguments")
        return None if value is None else str(value)

    @property
    def call_id(self) -> str:
        """The call's id, which its output answers."""
        return str(self.raw_item.get("call_id", ""))

    def to_input_item(self) -> Item:
        """Refused: a call awaiting approval is never input to a model."""
        raise UserError(
            f"tool call {self.call_id} ({self.tool_name}) awaits approval and is not an input "
            "item: approve or reject it with RunState.approve/reject and resume the run"
        )


@dataclass
class _Decisions:
    """One (agent, tool)'s decisions: ``True`` for always, else the call ids decided."""

    approved: bool | set[str] = field(default_factory=set)
    rejected: bool | set[str] = field(default_factory=set)
    messages: dict[str, str] = field(default_factory=dict)
    standing_message: str | None = None
    """The message of an "always" rejection, for calls without one of their own."""

    def status(self, call_id: str) -> bool | None:
        # A decision on this very call wins over an "always"; approval wins a tie.
        if isinstance(self.approved, set) and call_id in self.approved:
            return True
        if isinstance(self.rejected, set) and call_id in self.rejected:
            return False
        if self.approved is True:
            return True
        if self.rejected is True:
            return False
        return None


def _as_json(value: bool | set[str]) -> bool | list[str]:
    return value if isinstance(value, bool) else sorted(value)


def _from_json(value: Any) -> bool | set[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return set(value)
    raise UserError(f"an approval decision must be true, false or a list of call ids: {value!r}")


class ApprovalBook:
    """The approval decisions of one run, by agent name and tool name.

    As in the OpenAI Agents SDK: ``always`` decides every later call of that tool by that
    agent for the rest of the run (resumes included), a plain decision only the one call; a
    decision on a call wins over an "always", and approval wins when both were given.
    Decisions end with the run: a new ``Runner.run`` starts with none.
    """

    def __init__(self) -> None:
        self._book: dict[tuple[str, str], _Decisions] = {}

    def _entry(self, agent_name: str, tool_name: str) -> _Decisions:
        return self._book.setdefault((agent_name, tool_name), _Decisions())

    def decide(
        self,
        agent_name: str,
        tool_name: str,
        call_id: str,
        *,
        approve: bool,
        always: bool = False,
        message: str | None = None,
    ) -> None:
        """Record a decision on ``call_id``; with ``always``, on every call of the tool (which
        replaces the tool's earlier decisions)."""
        entry = self._entry(agent_name, tool_name)
        if always:
            entry.approved, entry.rejected = (True, set()) if approve else (False, True)
            entry.messages.clear()
            entry.standing_message = None if approve else message
            if message is not None and not approve:
                entry.messages[call_id] = message
            return
        opposite = entry.rejected if approve else entry.approved
        if isinstance(opposite, set):
            opposite.discard(call_id)
        target = entry.approved if approve else entry.rejected
        if target is not True:
            if not isinstance(target, set):
                target = set()
                if approve:
                    entry.approved = target
                else:
                    entry.rejected = target
            target.add(call_id)
        if approve or message is None:
            entry.messages.pop(call_id, None)
        else:
            entry.messages[call_id] = message

    def status(self, agent_name: str, tool_name: str, call_id: str) -> bool | None:
        """``True`` approved, ``False`` rejected, ``None`` undecided."""
        entry = self._book.get((agent_name, tool_name))
        return None if entry is None else entry.status(call_id)

    def message(self, agent_name: str, tool_name: str, call_id: str) -> str | None:
        """The rejection message given for ``call_id``, if any."""
        entry = self._book.get((agent_name, tool_name))
        if entry is None:
            return None
        if call_id in entry.messages:
            return entry.messages[call_id]
        return entry.standing_message if entry.rejected is True else None

    def copy(self) -> ApprovalBook:
        """An independent copy (a resumed run must not change the state it came from)."""
        return ApprovalBook.from_json(self.to_json())

    def to_json(self) -> list[dict[str, Any]]:
        """The decisions as JSON."""
        return [
            {
                "agent": agent,
                "tool": tool,
                "approved": _as_json(entry.approved),
                "rejected": _as_json(entry.rejected),
                "messages": dict(entry.messages),
                "standing_message": entry.standing_message,
            }
            for (agent, tool), entry in sorted(self._book.items())
        ]

    @classmethod
    def from_json(cls, data: Any) -> ApprovalBook:
        """The book :meth:`to_json` wrote; :class:`UserError` when ``data`` is not one."""
        book = cls()
        if not isinstance(data, list):
            raise UserError(f"approvals must be a list, got {type(data).__name__}")
        for entry in data:
            try:
                book._book[(str(entry["agent"]), str(entry["tool"]))] = _Decisions(
                    approved=_from_json(entry["approved"]),
                    rejected=_from_json(entry["rejected"]),
                    messages={str(k): str(v) for k, v in dict(entry.get("messages", {})).items()},
                    standing_message=entry.get("standing_message"),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise UserError(f"an approval entry cannot be read: {exc!r}") from None
        return book


def rejection_output(call: Item, message: str | None = None) -> Item:
    """The ``function_call_output`` answering a rejected call: the model learns it was not run."""
    text = message if message is not None else _rejection_text(str(call.get("name", "")))
    return function_call_output(str(call["call_id"]), text)


async def _needs_approval(
    planned: PlannedCall, context: RunContextWrapper[Any], agent: Agent[Any]
) -> bool:
    tool = planned.tool
    policy = getattr(tool, "needs_approval", False)
    if policy is False or tool is None:
        return False
    if policy is True:
        return True
    call = planned.call
    try:
        arguments = json.loads(str(call.get("arguments") or "{}"))
    except ValueError:
        return True  # arguments a policy cannot read: a person decides
    if not isinstance(arguments, dict):
        return True
    try:
        verdict = policy(context, arguments, str(call["call_id"]))
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Exception as exc:
        raise UserError(
            f"needs_approval of tool {tool.name!r} raised {type(exc).__name__}: {exc}; "
            "make it return True or False for every call"
        ) from exc
    if not isinstance(verdict, bool):
        raise UserError(
            f"needs_approval of tool {tool.name!r} must return a bool, got {type(verdict).__name__}"
        )
    return verdict


@dataclass
class Gate:
    """A step's function calls, sorted: ``run`` now, ``answered`` (call id → output item:
    done before an interruption, or rejected) and ``waiting`` for a decision."""

    run: list[PlannedCall] = field(default_factory=list)
    answered: dict[str, Item] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    waiting: list[PlannedCall] = field(default_factory=list)


async def gate_calls(
    calls: list[PlannedCall],
    agent: Agent[Any],
    context: RunContextWrapper[Any],
    book: ApprovalBook,
    done: dict[str, Item],
) -> Gate:
    """Sort ``calls``: already answered (``done``), approved or not needing approval (run),
    rejected (answered with :func:`rejection_output`), or waiting for a decision.

    A decision already taken is not asked of ``needs_approval`` again.
    """
    gate = Gate()
    for planned in calls:
        call_id = str(planned.call["call_id"])
        if call_id in done:
            gate.answered[call_id] = done[call_id]
            continue
        if planned.tool is None or planned.tool.needs_approval is False:
            gate.run.append(planned)
            continue
        status = book.status(agent.name, planned.tool.name, call_id)
        if status is None and not await _needs_approval(planned, context, agent):
            status = True
        if status is True:
            gate.run.append(planned)
        elif status is False:
            message = book.message(agent.name, planned.tool.name, call_id)
            gate.answered[call_id] = rejection_output(planned.call, message)
            gate.rejected.append(call_id)
        else:
            gate.waiting.append(planned)
    return gate
