"""One turn of an agent for a request: the run, its stream events, and what it produced.

The runner stores the input before it calls the model and each completed step after it (see
:mod:`threadline.run.persistence`); this module adds what HTTP clients need around that:

* function call outputs at the start of the input answer calls already stored (a client-side
  tool's call from the previous response), so they are written first, under the request's
  lease, before the runner reads the history it sends (otherwise the call would look
  unanswered and be left out);
* a function call output must answer a call: one whose ``call_id`` no call before it (stored
  or earlier in the input) carries is a 400 before anything is stored or sent (stored, it
  would be sent upstream unpaired, which providers refuse);
* a call to a client-side tool stops the run (the tool ``needs_approval``); the step that
  made it is then stored as it is, its calls waiting for the client's outputs, in the same
  write that drops the pending-run record the runner left;
* every item produced has an id, the same in the stream, the response and the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..agent import Agent
from ..errors import RunError
from ..items import Item
from ..run import RunConfig, RunHooks, Runner
from ..run.events import StreamEvent
from ..sessions.pending import PENDING_RUN_RECORD
from ..usage import Usage
from ._context import ServerSession
from ._errors import bad_request
from ._ids import stamp_id

__all__ = ["ANSWER_KINDS", "Turn", "TurnOutcome", "check_answers", "run_turn"]

MAX_TURNS = 10
"""Model calls one request may make (server-side tool rounds included)."""


@dataclass
class Turn:
    """What a request runs: ``agent`` (with the request's client tools and instructions) on
    ``input`` (ids stamped), through ``session`` (``None``: no memory)."""

    agent: Agent[Any]
    input: list[Item]
    session: ServerSession | None
    client_tools: frozenset[str] = frozenset()
    run_config: RunConfig = field(default_factory=RunConfig)
    hooks: RunHooks[Any] | None = None
    param: str = "input"
    """The request field the input came from (named in errors)."""


@dataclass
class TurnOutcome:
    """What the turn produced: ``output`` (the run's items in order, ids stamped),
    ``usage``, and ``waiting``, the client-side calls whose outputs the client sends next."""

    output: list[Item]
    usage: Usage
    waiting: list[Item]
    final_text: str


def _answers_end(items: list[Item]) -> int:
    """How many leading items of ``items`` to write before the run: up to the last function
    call output (0 when there is none)."""
    end = 0
    for index, item in enumerate(items):
        if item.get("type") == "function_call_output":
            end = index + 1
    return end


_ANSWERS = {"function_call_output": "function_call", "custom_tool_call_output": "custom_tool_call"}
ANSWER_KINDS = frozenset(_ANSWERS)
"""Input item types that answer a tool call (written before the run, see :func:`run_turn`)."""
_RECENT = 1000
"""Stored items searched first for the calls an input answers (the whole history after)."""


def _call_ids(items: list[Item], kinds: frozenset[str]) -> set[str]:
    return {str(item.get("call_id")) for item in items if item.get("type") in kinds}


async def check_answers(session: ServerSession | None, run_input: list[Item], param: str) -> None:
    """Refuse (400) an output in ``run_input`` whose call is neither earlier in the input nor
    stored in ``session``; the newest stored items are read first, the whole history only
    when a call is not among them."""
    outputs = [
        (index, item) for index, item in enumerate(run_input) if item.get("type") in _ANSWERS
    ]
    if not outputs:
        return
    kinds = frozenset(_ANSWERS.values())
    stored: set[str] = set()
    if session is not None:
        recent = await session.get_items(limit=_RECENT)
        stored = _call_ids(recent, kinds)
        wanted = {str(item.get("call_id")) for _, item in outputs}
        if not wanted <= stored | _call_ids(run_input, kinds) and len(recent) == _RECENT:
            stored = _call_ids(await session.get_items(), kinds)
    seen: set[str] = set()
    for index, item in enumerate(run_input):
        kind = str(item.get("type"))
        call_id = item.get("call_id")
        if kind in kinds:
            seen.add(str(call_id))
        elif kind in _ANSWERS and str(call_id) not in stored and str(call_id) not in seen:
            where = (
                f"'{param}[{index}]' is a {kind} that"
                if param == "input"
                else f"a tool message in '{param}'"
            )
            raise bad_request(
                f"{where} answers call_id {call_id!r}, but no call with that id comes before "
                "it in the conversation or the request; nothing was stored",
                param=f"{param}[{index}]" if param == "input" else param,
            )


async def run_turn(
    turn: Turn, on_event: Callable[[StreamEvent], None] | None = None
) -> TurnOutcome:
    """Run ``turn`` (streamed when ``on_event`` is given, each event handed to it); the caller
    holds the session's lease."""
    session = turn.session
    run_input = list(turn.input)
    await check_answers(session, run_input, turn.param)
    if session is not None:
        answers = _answers_end(run_input)
        if answers:
            await session.add_items(run_input[:answers])
            run_input = run_input[answers:]
    if on_event is None:
        result: Any = await Runner.run(
            turn.agent,
            run_input,
            session=session,
            run_config=turn.run_config,
            max_turns=MAX_TURNS,
            hooks=turn.hooks,
        )
    else:
        result = Runner.run_streamed(
            turn.agent,
            run_input,
            session=session,
            run_config=turn.run_config,
            max_turns=MAX_TURNS,
            hooks=turn.hooks,
        )
        async for event in result.stream_events():
            on_event(event)
    output = [stamp_id(run_item.raw_item) for run_item in result.new_items]
    waiting: list[Item] = []
    if result.interruptions:
        waiting = [approval.raw_item for approval in result.interruptions]
        strangers = [
            call.get("name") for call in waiting if call.get("name") not in turn.client_tools
        ]
        if strangers:  # ServedAgents refuses such tools; a safety net
            raise RunError(f"the run stopped for approval of {strangers}, which HTTP cannot give")
        if session is not None and not session.readonly:
            unsaved = [item for item in output if not any(item is w for w in session.written)]
            records = {PENDING_RUN_RECORD: None} if "records" in session.capabilities else None
            await session.add_items(unsaved, records=records)
    usage = result.context_wrapper.usage if result.context_wrapper is not None else Usage()
    final = result.final_output
    return TurnOutcome(
        output=output,
        usage=usage,
        waiting=waiting,
        final_text=final if isinstance(final, str) else "",
    )
