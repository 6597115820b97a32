"""``RunState``: a run stopped for tool-call approvals, to decide on and resume.

A run whose model called a tool with ``needs_approval`` stops before running it and returns
the waiting calls in ``result.interruptions``; ``result.to_state()`` is the run as a
:class:`RunState`. Approve or reject each waiting call, then ``Runner.run(agent, state)``
carries on: approved calls run, rejected ones are answered with a message saying so, and the
run continues. A state is JSON (``to_json`` / ``to_string``, ``RunState.from_json`` /
``from_string``), so a decision may come from another process.

With a session of a store that keeps records, the interrupted step is not written to the
history (it holds calls without outputs); the state is stored as the session's *pending run*
record instead, and the step is written together with clearing that record once it is
resolved. ``RunState.from_session(agent, session)`` loads it anywhere the store is reachable;
each interruption has an id, so a state resumed twice, or after another process resumed or
discarded it, is refused with :class:`~threadline.errors.StaleRunStateError`.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import PendingRunError, StaleRunStateError, UserError
from ..items import Item, input_to_items
from ..sessions.base import capabilities_of
from ..sessions.pending import PENDING_RUN_RECORD, read_pending_run
from ..usage import Usage
from .approvals import ApprovalBook, ToolApprovalItem
from .run_items import (
    HandoffCallItem,
    HandoffOutputItem,
    MessageOutputItem,
    ReasoningItem,
    RunItem,
    ToolCallItem,
    ToolCallOutputItem,
)

if TYPE_CHECKING:
    from ..agent import Agent

ContextSerializer = Callable[[Any], Any]
"""``context -> JSON value``: how ``RunState.to_json`` saves a context that is not JSON."""
ContextDeserializer = Callable[[Any], Any]
"""``JSON value -> context``: the inverse, for ``RunState.from_json``."""

__all__ = [
    "RunState",
    "check_pending_record",
    "find_agent",
    "keeps_records",
    "new_state_id",
    "refuse_pending_run",
]

_KIND = "threadline.run_state"
_VERSION = 1

_ITEM_CLASSES: dict[str, type[RunItem]] = {
    "message_output_item": MessageOutputItem,
    "tool_call_item": ToolCallItem,
    "tool_call_output_item": ToolCallOutputItem,
    "handoff_call_item": HandoffCallItem,
    "handoff_output_item": HandoffOutputItem,
    "reasoning_item": ReasoningItem,
    "run_item": RunItem,
}


def keeps_records(session: Any) -> bool:
    """Whether ``session`` can keep a pending run durably (its store offers records)."""
    return session is not None and "records" in capabilities_of(session)


def _agents_by_name(start: Agent[Any]) -> dict[str, list[Agent[Any]]]:
    """Every agent reachable from ``start`` through handoffs, by name."""
    found: dict[str, list[Agent[Any]]] = {}
    seen: set[int] = set()
    todo = [start]
    while todo:
        agent = todo.pop()
        if id(agent) in seen:
            continue
        seen.add(id(agent))
        found.setdefault(agent.name, []).append(agent)
        todo += [h.agent for h in agent.get_handoffs()]
    return found


def find_agent(start: Agent[Any], name: str) -> Agent[Any]:
    """The one agent named ``name`` reachable from ``start`` through handoffs."""
    matches = _agents_by_name(start).get(name, [])
    if not matches:
        raise UserError(
            f"the run state's agent {name!r} is not {start.name!r} and cannot be reached from "
            "it through handoffs: resume with the agent the run started with"
        )
    if len(matches) > 1:
        raise UserError(
            f"{len(matches)} different agents reachable from {start.name!r} are named {name!r}: "
            "give agents unique names so a saved run can find its agent"
        )
    return matches[0]


def _json_or_none(value: Any) -> tuple[bool, Any]:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False, None
    return True, value


@dataclass
class RunState:
    """A run interrupted for approvals (see the module docstring): decide, then resume.

    Made by ``result.to_state()``, ``RunState.from_json`` / ``from_string`` /
    ``from_session``; not built by hand.
    """

    id: str
    agent: Agent[Any]
    original_input: str | list[Item]
    step: list[Item]
    """The model output of the interrupted step (its calls, messages, reasoning)."""
    answered: dict[str, Item]
    """Outputs of the step's calls that are known already, by call id."""
    waiting: list[Item]
    """The step's ``function_call`` items that wait for a decision."""
    approvals: ApprovalBook
    max_turns: int
    turns: int
    """Model calls made so far (``max_turns`` counts the whole run, resumes included)."""
    context: Any = None
    usage: Usage = field(default_factory=Usage)
    session_id: str | None = None
    model_input: list[Item] | None = None
    """The items the interrupted step was asked with; ``None`` when the session holds them
    (with a session, they are kept only when a handoff's input filter rewrote them)."""
    sent: int = 0
    previous_response_id: str | None = None
    conversation_id: str | None = None
    auto_previous_response_id: bool = False
    history_len: int = 0
    """How many of ``model_input`` a handoff input filter sees as the input history."""
    pre_start: int = 0
    """Where in ``new_items`` a handoff input filter's ``pre_handoff_items`` start."""
    offered_tools: list[str] | None = None
    """The names of the tools the interrupted model call was offered (``is_enabled``)."""
    response_id: str | None = None
    new_items: list[RunItem] = field(default_factory=list)
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    _resumed: bool = field(default=False, repr=False)
    _in_flight: bool = field(default=False, repr=False)

    # ---------------------------------------------------------------- decisions

    def get_interruptions(self) -> list[ToolApprovalItem]:
        """The calls that wait for a decision (approve or reject each, then resume)."""
        return [ToolApprovalItem(agent=self.agent, raw_item=dict(call)) for call in self.waiting]

    @property
    def interruptions(self) -> list[ToolApprovalItem]:
        """:meth:`get_interruptions`, as on a run result."""
        return self.get_interruptions()

    def _check_item(self, item: ToolApprovalItem) -> tuple[str, str]:
        if self._resumed:
            raise StaleRunStateError(
                f"run state {self.id} was resumed already: decide on the interruptions of the "
                "resumed run's result (result.to_state()) instead"
            )
        call_id = getattr(item, "call_id", None)
        waiting = {str(call["call_id"]): call for call in self.waiting}
        if not isinstance(call_id, str) or call_id not in waiting:
            raise UserError(
                f"call {call_id!r} ({type(item).__name__}) is not one of this run state's "
                f"waiting calls ({', '.join(waiting) or 'none'}): pass an item of "
                "state.interruptions"
            )
        return call_id, str(waiting[call_id].get("name", ""))

    def approve(self, approval_item: ToolApprovalItem, always_approve: bool = False) -> None:
        """Approve a waiting call; it runs when the run resumes.

        ``always_approve`` also approves every later call of the same tool by the same agent
        for the rest of this run, without asking.
        """
        call_id, tool_name = self._check_item(approval_item)
        self.approvals.decide(
            self.agent.name, tool_name, call_id, approve=True, always=always_approve
        )

    def reject(
        self,
        approval_item: ToolApprovalItem,
        always_reject: bool = False,
        *,
        rejection_message: str | None = None,
    ) -> None:
        """Reject a waiting call; when the run resumes the model is told it was not run
        (``rejection_message``, if given, is the exact text it gets).

        ``always_reject`` also rejects every later call of the same tool by the same agent for
        the rest of this run, without asking.
        """
        call_id, tool_name = self._check_item(approval_item)
        self.approvals.decide(
            self.agent.name,
            tool_name,
            call_id,
            approve=False,
            always=always_reject,
            message=rejection_message,
        )

    # ---------------------------------------------------------------- JSON

    def to_json(
        self,
        *,
        context_serializer: ContextSerializer | None = None,
        strict_context: bool = False,
    ) -> dict[str, Any]:
        """The state as a JSON object.

        The run's context is kept when it is JSON; ``context_serializer(context)`` turns any
        other into a JSON mapping (``from_json``'s ``context_deserializer`` turns it back).
        Without one, a context that is not JSON is left out (``None`` after loading), or is a
        :class:`~threadline.errors.UserError` with ``strict_context=True``. Keep the state
        where users cannot change it: whoever can edit it can approve calls.
        """
        serialized = context_serializer is not None
        if context_serializer is not None:
            kept, context = _json_or_none(context_serializer(self.context))
            if not kept:
                raise UserError("context_serializer must return a JSON-compatible value")
        else:
            kept, context = _json_or_none(self.context)
            if not kept and strict_context:
                raise UserError(
                    f"the run's context ({type(self.context).__name__}) is not JSON: pass "
                    "context_serializer= (and context_deserializer= to from_json)"
                )
        return {
            "kind": _KIND,
            "version": _VERSION,
            "id": self.id,
            "created_at": self.created_at,
            "current_agent": self.agent.name,
            "session_id": self.session_id,
            "original_input": self.original_input,
            "model_input": self.model_input,
            "sent": self.sent,
            "previous_response_id": self.previous_response_id,
            "conversation_id": self.conversation_id,
            "auto_previous_response_id": self.auto_previous_response_id,
            "history_len": self.history_len,
            "pre_start": self.pre_start,
            "offered_tools": self.offered_tools,
            "response_id": self.response_id,
            "step": self.step,
            "answered": self.answered,
            "interruptions": [
                {"tool_name": str(call.get("name", "")), "raw_item": call} for call in self.waiting
            ],
            "approvals": self.approvals.to_json(),
            "max_turns": self.max_turns,
            "turns": self.turns,
            "usage": dataclasses.asdict(self.usage),
            "context": context,
            "context_kept": kept,
            "context_serialized": serialized,
            "new_items": [_item_json(item) for item in self.new_items],
        }

    def to_string(
        self,
        *,
        context_serializer: ContextSerializer | None = None,
        strict_context: bool = False,
    ) -> str:
        """:meth:`to_json` as a JSON string."""
        data = self.to_json(context_serializer=context_serializer, strict_context=strict_context)
        return json.dumps(data, ensure_ascii=False)

    @staticmethod
    async def from_json(
        initial_agent: Agent[Any],
        state_json: dict[str, Any],
        *,
        context_override: Any = None,
        context_deserializer: ContextDeserializer | None = None,
        strict_context: bool = False,
    ) -> RunState:
        """The state :meth:`to_json` wrote, bound to the agents reachable from
        ``initial_agent`` (the agent the run started with).

        ``context_override`` replaces the saved context; ``context_deserializer`` rebuilds a
        context saved with a ``context_serializer`` (``strict_context=True`` makes its absence,
        or a context that was left out, a :class:`~threadline.errors.UserError`).
        """
        return _from_json(
            initial_agent,
            state_json,
            _Context(context_override, context_deserializer, strict_context),
        )

    @staticmethod
    async def from_string(
        initial_agent: Agent[Any],
        state_string: str,
        *,
        context_override: Any = None,
        context_deserializer: ContextDeserializer | None = None,
        strict_context: bool = False,
    ) -> RunState:
        """The state :meth:`to_string` wrote (see :meth:`from_json`)."""
        try:
            data = json.loads(state_string)
        except (TypeError, ValueError) as exc:
            raise UserError(f"the run state is not valid JSON ({exc})") from None
        return _from_json(
            initial_agent, data, _Context(context_override, context_deserializer, strict_context)
        )

    @staticmethod
    async def from_session(
        initial_agent: Agent[Any], session: Any, *, context_override: Any = None
    ) -> RunState | None:
        """The run of ``session`` that waits for approvals, or ``None`` when there is none.

        Works in any process that reaches the session's store (the state was stored there
        when the run stopped, with its context when that was JSON; ``context_override``
        supplies any other). The session must keep records (every threadline store does).
        """
        if not keeps_records(session):
            raise UserError(
                f"{type(session).__name__} keeps no session records, so no pending run is "
                "stored with it: keep result.to_state().to_string() yourself, or use a "
                "threadline store"
            )
        value = await session.get_record(PENDING_RUN_RECORD)
        pending = read_pending_run(session.session_id, value)
        if pending is None:
            return None
        return _from_json(initial_agent, pending.data, _Context(context_override, None, False))

    # ---------------------------------------------------------------- for the runner

    def begin_resume(self, session: Any) -> None:
        """Check that this state may be resumed with ``session``; the runner calls it."""
        if self._resumed:
            raise StaleRunStateError(
                f"run state {self.id} was resumed already; a state is resumed once (the "
                "resumed run's result.to_state() is the state of any later interruption)"
            )
        if self._in_flight:
            raise StaleRunStateError(
                f"run state {self.id} is being resumed by another run right now; a state is "
                "resumed once"
            )
        session_id = getattr(session, "session_id", None) if session is not None else None
        if self.session_id is not None and session_id != self.session_id:
            raise UserError(
                f"this run state belongs to session {self.session_id!r}: resume it with "
                f"Runner.run(agent, state, session=<session {self.session_id!r}>)"
            )
        if self.session_id is None and session is not None:
            raise UserError(
                "this run state comes from a run without a session: resume it without one"
            )
        if self.session_id is None and self.model_input is None:
            raise UserError("this run state holds no history to resume from")
        self._in_flight = True

    def end_resume(self) -> None:
        """The resume that :meth:`begin_resume` started ended (resolved or failed)."""
        self._in_flight = False

    def mark_resumed(self) -> None:
        """Record that the interrupted step was resolved; the state cannot be resumed again."""
        self._resumed = True

    def record_value(self) -> dict[str, Any]:
        """The session record that keeps this state (its history stays in the session,
        unless a handoff's input filter rewrote what the run sends)."""
        return self.to_json()


def _item_json(item: RunItem) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": item.type, "agent": item.agent.name, "raw_item": item.raw_item}
    if isinstance(item, HandoffOutputItem):
        entry["source"] = item.source_agent.name if item.source_agent else None
        entry["target"] = item.target_agent.name if item.target_agent else None
    return entry


def _item_from_json(start: Agent[Any], entry: Any) -> RunItem:
    cls = _ITEM_CLASSES.get(entry["type"], RunItem)
    agent = find_agent(start, str(entry["agent"]))
    raw = dict(entry["raw_item"])
    if cls is ToolCallOutputItem:
        return ToolCallOutputItem(agent=agent, raw_item=raw, output=raw.get("output"))
    if cls is HandoffOutputItem:
        source, target = entry.get("source"), entry.get("target")
        return HandoffOutputItem(
            agent=agent,
            raw_item=raw,
            source_agent=find_agent(start, source) if source else None,
            target_agent=find_agent(start, target) if target else None,
        )
    return cls(agent=agent, raw_item=raw)


@dataclass(frozen=True)
class _Context:
    """How ``from_json`` finds the context: an override, a deserializer, strictness."""

    override: Any
    deserializer: ContextDeserializer | None
    strict: bool

    def rebuild(self, data: dict[str, Any]) -> Any:
        if self.override is not None:
            return self.override
        value = data["context"]
        if data.get("context_serialized"):
            if self.deserializer is not None:
                return self.deserializer(value)
            if self.strict:
                raise UserError(
                    "the run state's context was saved with a context_serializer: pass "
                    "context_deserializer= or context_override="
                )
        elif not data.get("context_kept", True) and self.strict:
            raise UserError(
                "the run state's context was not JSON and was left out: pass context_override="
            )
        return value


def _from_json(start: Agent[Any], data: Any, context: _Context) -> RunState:
    if not isinstance(data, dict) or data.get("kind") != _KIND:
        raise UserError("this is not a threadline run state (RunState.to_json() writes one)")
    if data.get("version") != _VERSION:
        raise UserError(
            f"run state version {data.get('version')!r} is not supported (this threadline "
            f"reads version {_VERSION})"
        )
    try:
        original = data["original_input"]
        if isinstance(original, list):
            original = input_to_items(original)
        model_input = data["model_input"]
        state = RunState(
            id=str(data["id"]),
            agent=find_agent(start, str(data["current_agent"])),
            original_input=original,
            step=[dict(item) for item in data["step"]],
            answered={str(k): dict(v) for k, v in dict(data["answered"]).items()},
            waiting=[dict(entry["raw_item"]) for entry in data["interruptions"]],
            approvals=ApprovalBook.from_json(data["approvals"]),
            max_turns=int(data["max_turns"]),
            turns=int(data["turns"]),
            context=context.rebuild(data),
            usage=_usage_from_json(data["usage"]),
            session_id=data["session_id"],
            model_input=None if model_input is None else [dict(i) for i in model_input],
            sent=int(data["sent"]),
            previous_response_id=data["previous_response_id"],
            conversation_id=data["conversation_id"],
            auto_previous_response_id=bool(data["auto_previous_response_id"]),
            history_len=int(data["history_len"]),
            pre_start=int(data["pre_start"]),
            offered_tools=None
            if data["offered_tools"] is None
            else [str(name) for name in data["offered_tools"]],
            response_id=data["response_id"],
            new_items=[_item_from_json(start, entry) for entry in data["new_items"]],
            created_at=str(data["created_at"]),
        )
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"the run state cannot be read: {exc!r} is missing or wrong") from None
    return state


def _usage_from_json(data: Any) -> Usage:
    known = {f.name for f in dataclasses.fields(Usage)}
    return Usage(**{k: v for k, v in dict(data).items() if k in known})


def refuse_pending_run(session_id: str, value: Any) -> None:
    """Refuse a new run with :class:`PendingRunError` when ``value`` (the session's
    pending-run record, ``None`` when it has none) holds a run that waits for approvals."""
    pending = read_pending_run(session_id, value)
    if pending is not None:
        raise PendingRunError(
            session_id,
            [(str(c.get("name", "")), str(c.get("call_id", ""))) for c in pending.tool_calls],
        )


async def check_pending_record(session: Any, expected_id: str | None) -> None:
    """Refuse a run that does not match the session's pending run.

    A new run (``expected_id`` ``None``) is refused with :class:`PendingRunError` while a run
    waits; a resume is refused with :class:`StaleRunStateError` unless the pending run is the
    one it resumes. Called under the run's writer lease.
    """
    value = await session.get_record(PENDING_RUN_RECORD)
    if expected_id is None:
        refuse_pending_run(session.session_id, value)
        return
    pending = read_pending_run(session.session_id, value)
    if pending is None or pending.id != expected_id:
        now = "no run waits" if pending is None else f"the run waiting now is {pending.id}"
        raise StaleRunStateError(
            f"session {session.session_id!r}: run state {expected_id} cannot be resumed: it was "
            f"resumed or discarded already ({now}); load the current one with "
            "RunState.from_session(agent, session)"
        )


def new_state_id() -> str:
    """A fresh interruption id."""
    return uuid.uuid4().hex
