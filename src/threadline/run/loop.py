"""The turn loop: call the model, carry out what it asked for, persist, repeat.

Decisions are made by the pure functions of :mod:`threadline.run.steps`; this module performs
the effects (model calls, tools, persistence, events) in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..context import RunContextWrapper
from ..errors import (
    ContextWindowExceededError,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    ModelBehaviorError,
    OutputGuardrailTripwireTriggered,
    UserError,
)
from ..items import Item, assistant_message, function_call_output, input_to_items
from ..models._chat_convert import new_item_id
from ..models.base import Model, ModelRequest, ModelResponse, ResponseCompleted
from ..sessions.pending import PENDING_RUN_RECORD
from ..tools.base import FunctionTool
from ..tracing import span
from .approvals import ApprovalBook, gate_calls
from .compaction import start_compaction
from .config import RunConfig
from .context_budget import default_history_budget, estimate_request, observe_usage
from .error_handlers import RunErrorData, handle_max_turns
from .events import (
    AgentUpdatedStreamEvent,
    RunItemStreamEvent,
    StreamEvent,
    raw_event_for,
)
from .hooks import RunHooks
from .model_resolution import resolve_model
from .overflow import CallAttempt, ContextRetry, retry_after_overflow
from .persistence import SessionMemory, session_memory
from .result import RunResult
from .run_items import (
    HandoffOutputItem,
    MessageOutputItem,
    RunItem,
    ToolCallOutputItem,
    run_item_for,
)
from .state import RunState, check_pending_record, find_agent, new_state_id, refuse_pending_run
from .steps import PlannedCall, StepPlan, plan_step, tool_specs
from .tool_exec import ToolResult, run_tools

if TYPE_CHECKING:
    from ..agent import Agent
    from ..guardrails import (
        InputGuardrail,
        InputGuardrailResult,
        OutputGuardrail,
        OutputGuardrailResult,
    )

__all__ = ["run_agent"]

Emit = Callable[[StreamEvent], None]

_ITEM_EVENTS = {
    "message_output_item": "message_output_created",
    "tool_call_item": "tool_called",
    "tool_call_output_item": "tool_output",
    "handoff_call_item": "handoff_requested",
    "handoff_output_item": "handoff_occured",
    "reasoning_item": "reasoning_item_created",
}


@dataclass
class _Run:
    """The mutable state of one run."""

    agent: Agent[Any]
    context: RunContextWrapper[Any]
    config: RunConfig
    hooks: RunHooks[Any]
    max_turns: int
    emit: Emit | None
    memory: SessionMemory | None = None
    previous_response_id: str | None = None
    conversation_id: str | None = None
    sent: int = 0
    """With server-side state, how many of ``model_input`` the server already holds."""
    calibrate: bool = False
    """Compare the next call's estimate with its reported input tokens (see context_budget)."""
    model_input: list[Item] = field(default_factory=list)
    new_items: list[RunItem] = field(default_factory=list)
    responses: list[ModelResponse] = field(default_factory=list)
    original_input: str | list[Item] = ""
    unsaved_input: list[Item] = field(default_factory=list)
    """The input, held back from the session until every input guardrail passed."""
    input_guardrail_results: list[InputGuardrailResult] = field(default_factory=list)
    output_guardrail_results: list[OutputGuardrailResult] = field(default_factory=list)
    error_handlers: dict[str, Any] | None = None
    auto_previous_response_id: bool = False
    """Chain each model call to the previous response (Responses models), sending new items."""
    history_len: int = 0
    """How many of ``model_input`` are the input history a handoff's input filter sees."""
    pre_start: int = 0
    """Where the run items a handoff's input filter sees as ``pre_handoff_items`` start."""
    enabled_tools: list[FunctionTool] | None = None
    """The agent's tools offered in the last model call (``is_enabled``)."""
    tool_input_guardrail_results: list[Any] = field(default_factory=list)
    tool_output_guardrail_results: list[Any] = field(default_factory=list)
    filtered: bool = False
    """Whether a handoff's input filter rewrote ``model_input`` (it is no longer the session's)."""
    approvals: ApprovalBook = field(default_factory=ApprovalBook)
    turns: int = 0
    """Model calls made (a resumed run counts those before its interruption)."""
    resumed: RunState | None = None
    """The state this run resumes, until its interrupted step is resolved."""
    resumed_response: ModelResponse | None = None
    """The interrupted step's model response (rebuilt from the state), when resuming."""
    context_retries: list[ContextRetry] = field(default_factory=list)
    """Model calls retried with less history after a context overflow (see overflow.py)."""

    def record(self, item: RunItem) -> None:
        self.new_items.append(item)
        if self.emit is not None and item.type in _ITEM_EVENTS:
            self.emit(RunItemStreamEvent(name=_ITEM_EVENTS[item.type], item=item))  # type: ignore[arg-type]


async def run_agent(
    starting_agent: Agent[Any],
    input: str | list[Item] | RunState,
    *,
    context: Any,
    max_turns: int,
    hooks: RunHooks[Any],
    config: RunConfig,
    session: Any,
    emit: Emit | None = None,
    context_wrapper: RunContextWrapper[Any] | None = None,
    previous_response_id: str | None = None,
    conversation_id: str | None = None,
    error_handlers: dict[str, Any] | None = None,
    auto_previous_response_id: bool = False,
) -> RunResult:
    """Run ``starting_agent`` until it produces a final output or stops for approvals; see
    :class:`Runner`. ``input`` may be a :class:`RunState` to resume."""
    resume = input if isinstance(input, RunState) else None
    if resume is not None:
        agent = find_agent(starting_agent, resume.agent.name)
        resume.begin_resume(session)  # from here on, the finally below ends it
        if context_wrapper is None:
            usage = copy.deepcopy(resume.usage)
            context_wrapper = RunContextWrapper(
                resume.context if context is None else context, usage=usage
            )
        original_input: str | list[Item] = resume.original_input
        max_turns = resume.max_turns  # as the SDK: the limit the run started with
        previous_response_id = resume.previous_response_id
        conversation_id = resume.conversation_id
        auto_previous_response_id = resume.auto_previous_response_id
    else:
        assert not isinstance(input, RunState)
        agent, original_input = starting_agent, input
    run = _Run(
        agent=agent,
        context=context_wrapper or RunContextWrapper(context),
        config=config,
        hooks=hooks,
        max_turns=max_turns,
        emit=emit,
        previous_response_id=previous_response_id,
        conversation_id=conversation_id,
        original_input=original_input,
        error_handlers=error_handlers,
        auto_previous_response_id=auto_previous_response_id,
    )
    try:
        with span(
            "run", config.workflow_name, disabled=config.tracing_disabled, agent=agent.name
        ) as run_span:
            async with session_memory(
                session, config, run.context, starts_with_read=resume is None
            ) as memory:
                run.memory = memory
                if resume is not None:
                    await _start_resumed(run, resume)
                else:
                    await _start(run, input_to_items(original_input))
                outcome = await _turns(run)
            if run_span is not None:
                run_span.attributes["usage"] = vars(run.context.usage).copy()
    finally:
        if resume is not None:
            resume.end_resume()  # a failed resume may be retried
    interrupted = outcome if isinstance(outcome, RunState) else None
    # the session is compacted once a run has finished, not while one waits for approvals
    compaction = (
        None if interrupted is not None else start_compaction(run.memory, config, run.agent)
    )
    return RunResult(
        input=original_input,
        new_items=run.new_items,
        final_output=None if interrupted is not None else outcome,
        last_agent=run.agent,
        raw_responses=run.responses,
        context_wrapper=run.context,
        input_guardrail_results=run.input_guardrail_results,
        output_guardrail_results=run.output_guardrail_results,
        compaction=compaction,
        tool_input_guardrail_results=run.tool_input_guardrail_results,
        tool_output_guardrail_results=run.tool_output_guardrail_results,
        interruptions=[] if interrupted is None else interrupted.get_interruptions(),
        context_retries=run.context_retries,
        _state=interrupted,
    )


async def _start(run: _Run, new_input: list[Item]) -> None:
    """A new run: refuse it while the session waits for approvals, then load and save."""
    memory = run.memory
    guarded = bool(_input_guardrails(run))
    if memory is None:
        run.model_input = list(new_input)
        run.history_len = len(run.model_input)
        return
    session_id = memory.session.session_id

    def no_pending_run(value: Any) -> None:
        refuse_pending_run(session_id, value)

    # a guarded input is stored only once the guardrails let it through
    run.model_input = await memory.start(
        new_input,
        save=not guarded,
        refuse=no_pending_run if memory.keeps_records else None,
        default_max_tokens=await _fitted_budget(run, new_input),
    )
    run.unsaved_input = list(new_input) if guarded else []
    run.history_len = len(run.model_input)


async def _fitted_budget(run: _Run, new_input: list[Item]) -> int | None:
    """The history budget that fits the model's context window, when the session's settings
    set no ``max_tokens`` (an explicit budget always wins); ``None`` when none applies."""
    memory = run.memory
    if memory is None or memory.settings.max_tokens is not None:
        return None
    fitted = await default_history_budget(run.agent, run.config, run.context, new_input)
    run.calibrate = fitted is not None
    return None if fitted is None else fitted.history_tokens


async def _start_resumed(run: _Run, state: RunState) -> None:
    """A resumed run: check it is the session's pending run, then rebuild what it had."""
    run.resumed = state
    run.approvals = state.approvals.copy()
    run.turns = state.turns
    run.new_items = list(state.new_items)
    run.sent = state.sent
    run.pre_start = state.pre_start
    run.filtered = state.model_input is not None and state.session_id is not None
    offered = state.offered_tools
    if offered is not None:
        run.enabled_tools = [tool for tool in run.agent.tools if tool.name in offered]
    memory = run.memory
    if memory is not None and memory.keeps_records:
        await check_pending_record(memory.session, state.id)
    if state.model_input is not None:  # no session, or a handoff filter rewrote the history
        run.model_input = list(state.model_input)
        run.history_len = state.history_len
        return
    assert memory is not None  # begin_resume checked it
    run.model_input = await memory.load_history(await _fitted_budget(run, []))
    # the run's items before the interrupted step are stored after its input history now
    before_step = len(state.new_items) - len(state.step) - len(state.answered)
    run.history_len = max(len(run.model_input) - before_step, 0)


_NOT_FINAL: Any = object()


async def _turns(run: _Run) -> Any:
    """The run's steps until a final output (returned) or an interruption (its
    :class:`RunState` is returned)."""
    await _enter_agent(run, run.agent)
    if run.resumed is not None:
        state = run.resumed
        response = ModelResponse(
            output=[dict(item) for item in state.step], response_id=state.response_id
        )
        run.resumed_response = response
        step_start = len(state.new_items) - len(state.step) - len(state.answered)
        outcome = await _finish_step(run, response, dict(state.answered), step_start)
        if outcome is not _NOT_FINAL:
            return outcome
    for _ in range(run.turns, run.max_turns):
        guards = _input_guardrails(run) if run.turns == 0 else []
        response = await (_guarded_first_call(run, guards) if guards else _call_model(run))
        run.turns += 1
        if run.unsaved_input and run.memory is not None:
            await run.memory.save(run.unsaved_input, run_input=True)
            run.unsaved_input = []
        step_start = len(run.new_items)
        for raw in response.output:
            run.record(run_item_for(run.agent, raw, _handoff_names(run.agent)))
        outcome = await _finish_step(run, response, {}, step_start)
        if outcome is not _NOT_FINAL:
            return outcome
    return await _max_turns_reached(run)


async def _finish_step(
    run: _Run, response: ModelResponse, done: dict[str, Item], step_start: int
) -> Any:
    """Carry out what ``response`` asked for and persist the step; the final output,
    a :class:`RunState` when calls wait for approval, or ``_NOT_FINAL`` to go on.

    ``done`` holds outputs known before an interruption (by call id); they are not run again.
    ``step_start`` is where the step's items begin in ``run.new_items``.
    """
    plan = plan_step(run.agent, response, run.enabled_tools)
    gate = await gate_calls(plan.tool_calls, run.agent, run.context, run.approvals, done)
    ran = await run_tools(
        gate.run,
        run.agent,
        run.context,
        run.hooks,
        _nested_runner(run),
        run.config.tracing_disabled,
    )
    fresh = {str(p.call["call_id"]): r for p, r in zip(gate.run, ran, strict=True)}
    for result in ran:
        run.tool_input_guardrail_results += result.input_guardrail_results
        run.tool_output_guardrail_results += result.output_guardrail_results
    results: list[ToolResult] = []
    for planned in plan.tool_calls:
        call_id = str(planned.call["call_id"])
        if call_id in fresh:
            result = fresh[call_id]
        elif call_id in gate.answered:
            item = gate.answered[call_id]
            result = ToolResult(item, item.get("output"))
        else:
            continue  # waiting for a decision
        results.append(result)
        if call_id not in done:
            run.record(
                ToolCallOutputItem(agent=run.agent, raw_item=result.item, output=result.value)
            )
    if gate.waiting:
        answered = {str(r.item["call_id"]): r.item for r in results}
        return await _interrupt(run, response, answered, gate.waiting)
    step_items = list(response.output)
    step_items += [result.item for result in results]
    step_items += _handoff_outputs(run, plan)
    for refused in plan.refused_outputs:
        step_items.append(refused)
        run.record(ToolCallOutputItem(agent=run.agent, raw_item=refused, output=refused["output"]))
    if _server_state(run):
        # the server stored the input it was sent and its own output; only the rest is new
        run.sent = len(run.model_input) + len(response.output)
        if run.previous_response_id is not None or run.auto_previous_response_id:
            run.previous_response_id = response.response_id
    run.model_input += step_items
    final = _NOT_FINAL
    if plan.handoff is None:
        if run.agent.tool_use_behavior == "stop_on_first_tool" and results:
            final = results[0].value
        elif not plan.has_calls:
            final = _final_output(run.agent, plan)
    if final is not _NOT_FINAL:
        await _check_output(run, final)  # a blocked answer is not stored
    if run.memory is not None:
        # a resumed step clears the pending run in the same transaction that stores it
        clear = run.resumed is not None and run.memory.keeps_records
        try:
            await run.memory.save(
                step_items,
                {PENDING_RUN_RECORD: None} if clear else None,
                last=final is not _NOT_FINAL,
            )
        except BaseException:
            if plan.handoff is not None and run.emit is not None:
                # the handoff happened; the stream says so before the error (as the SDK)
                run.emit(AgentUpdatedStreamEvent(new_agent=plan.handoff.agent))
            raise
    if run.resumed is not None:
        run.resumed.mark_resumed()
        run.resumed = None
    if plan.handoff is not None:
        await _take_handoff(run, plan, step_start)
        return _NOT_FINAL
    if final is not _NOT_FINAL:
        return await _finish(run, final)
    return _NOT_FINAL


async def _interrupt(
    run: _Run, response: ModelResponse, answered: dict[str, Item], waiting: list[PlannedCall]
) -> RunState:
    """Stop the run: the step's calls in ``waiting`` need a decision.

    Nothing of the step is added to the history (it would hold calls without outputs); with
    a session that keeps records the state is stored as its pending run instead, replacing
    the one this run resumed in the same write.
    """
    memory = run.memory
    state = RunState(
        id=new_state_id(),
        agent=run.agent,
        original_input=run.original_input,
        step=[dict(item) for item in response.output],
        answered=answered,
        waiting=[dict(p.call) for p in waiting],
        approvals=run.approvals.copy(),
        max_turns=run.max_turns,
        turns=run.turns,
        context=run.context.context,
        usage=copy.deepcopy(run.context.usage),
        session_id=None if memory is None else memory.session.session_id,
        model_input=list(run.model_input) if memory is None or run.filtered else None,
        history_len=run.history_len,
        pre_start=run.pre_start,
        offered_tools=None
        if run.enabled_tools is None
        else [tool.name for tool in run.enabled_tools],
        auto_previous_response_id=run.auto_previous_response_id,
        sent=run.sent,
        previous_response_id=run.previous_response_id,
        conversation_id=run.conversation_id,
        response_id=response.response_id,
        new_items=list(run.new_items),
    )
    if memory is not None and memory.keeps_records:
        await memory.save([], {PENDING_RUN_RECORD: state.record_value()})
    if run.resumed is not None:
        run.resumed.mark_resumed()
        run.resumed = None
    return state


async def _max_turns_reached(run: _Run) -> Any:
    """Raise :class:`MaxTurnsExceeded`, unless a ``max_turns`` error handler ends the run."""
    error = MaxTurnsExceeded(run.max_turns)
    handler = (run.error_handlers or {}).get("max_turns")
    if handler is None:
        raise error
    output = [item.to_input_item() for item in run.new_items]
    data = RunErrorData(
        input=run.original_input,
        new_items=list(run.new_items),
        history=input_to_items(run.original_input) + output,
        output=output,
        raw_responses=list(run.responses),
        last_agent=run.agent,
    )
    handled = await handle_max_turns(handler, error, run.context, data)
    if handled is None:
        raise error
    final, text = handled
    if text is not None:
        message = assistant_message(text, item_id=new_item_id("msg"))
        run.record(MessageOutputItem(agent=run.agent, raw_item=message))
        if run.memory is not None:
            await run.memory.save([message])
    return await _finish(run, final)


def _input_guardrails(run: _Run) -> list[InputGuardrail[Any]]:
    return [*run.agent.input_guardrails, *(run.config.input_guardrails or [])]


async def _run_input_guardrails(run: _Run, guards: list[InputGuardrail[Any]]) -> None:
    results = await asyncio.gather(
        *(guard.run(run.agent, run.original_input, run.context) for guard in guards)
    )
    run.input_guardrail_results += results
    for result in results:
        if result.output.tripwire_triggered:
            raise InputGuardrailTripwireTriggered(result)


async def _guarded_first_call(run: _Run, guards: list[InputGuardrail[Any]]) -> ModelResponse:
    """The first model call with the input guardrails: the sequential ones first, the parallel
    ones beside the call (a triggered tripwire cancels it)."""
    before = [guard for guard in guards if not guard.run_in_parallel]
    beside = [guard for guard in guards if guard.run_in_parallel]
    if before:
        await _run_input_guardrails(run, before)
    if not beside:
        return await _call_model(run)
    call = asyncio.ensure_future(_call_model(run))
    try:
        await _run_input_guardrails(run, beside)
    except BaseException:
        call.cancel()
        with contextlib.suppress(BaseException):
            await call
        raise
    return await call


async def _check_output(run: _Run, output: Any) -> None:
    guards: list[OutputGuardrail[Any]] = [
        *run.agent.output_guardrails,
        *(run.config.output_guardrails or []),
    ]
    if not guards:
        return
    results = await asyncio.gather(*(guard.run(run.context, run.agent, output) for guard in guards))
    run.output_guardrail_results += results
    for result in results:
        if result.output.tripwire_triggered:
            raise OutputGuardrailTripwireTriggered(result)


def _server_state(run: _Run) -> bool:
    return (
        run.previous_response_id is not None
        or run.conversation_id is not None
        or (run.auto_previous_response_id and _chains_responses(run))
    )


def _chains_responses(run: _Run) -> bool:
    """Whether the last response can be chained to (``auto_previous_response_id``): it has an
    id and its model keeps responses on the server (a Responses model)."""
    last = run.responses[-1] if run.responses else run.resumed_response
    model = resolve_model(run.agent, run.config)
    return (
        last is not None
        and last.response_id is not None
        and bool(getattr(model, "supports_previous_response_id", False))
    )


def _final_output(agent: Agent[Any], plan: StepPlan) -> Any:
    schema = agent.output_schema
    if schema is None:
        return plan.final_text if plan.final_text is not None else ""
    if plan.final_text is None:
        raise ModelBehaviorError(
            f"agent {agent.name!r} expects structured output but the model returned no message"
        )
    return schema.validate_json(plan.final_text)


async def _finish(run: _Run, output: Any) -> Any:
    await run.hooks.on_agent_end(run.context, run.agent, output)
    return output


async def _enter_agent(run: _Run, agent: Agent[Any]) -> None:
    run.agent = agent
    if run.emit is not None:
        run.emit(AgentUpdatedStreamEvent(new_agent=agent))
    await run.hooks.on_agent_start(run.context, agent)


def _handoff_names(agent: Agent[Any]) -> frozenset[str]:
    return frozenset(h.tool_name for h in agent.get_handoffs())


def _handoff_outputs(run: _Run, plan: StepPlan) -> list[Item]:
    outputs = list(plan.extra_handoff_outputs)
    if plan.handoff is not None and plan.handoff_call is not None:
        target = plan.handoff.agent
        item = function_call_output(
            plan.handoff_call["call_id"], f'{{"assistant": "{target.name}"}}'
        )
        outputs.insert(0, item)
        run.record(
            HandoffOutputItem(
                agent=run.agent, raw_item=item, source_agent=run.agent, target_agent=target
            )
        )
    return outputs


async def _take_handoff(run: _Run, plan: StepPlan, step_start: int) -> None:
    assert plan.handoff is not None
    source, target = run.agent, plan.handoff.agent
    if plan.handoff.input_filter is not None:
        await _filter_handoff_input(run, plan.handoff.input_filter, step_start)
    with span(
        "handoff",
        f"{source.name} -> {target.name}",
        disabled=run.config.tracing_disabled,
        from_agent=source.name,
        to_agent=target.name,
    ):
        if plan.handoff.on_handoff is not None:
            outcome = plan.handoff.on_handoff(run.context)
            if inspect.isawaitable(outcome):
                await outcome
        await run.hooks.on_handoff(run.context, source, target)
    await _enter_agent(run, target)


async def _filter_handoff_input(run: _Run, input_filter: Any, step_start: int) -> None:
    """Replace what the next agent sees with what ``input_filter`` makes of it.

    The session is not touched: it keeps every item as it was produced.
    """
    from ..agent import HandoffInputData

    if _server_state(run):
        raise UserError(
            "a handoff input_filter cannot rewrite a history the server keeps "
            "(previous_response_id, conversation_id or auto_previous_response_id); drop one"
        )
    given = run.original_input
    history: str | tuple[Item, ...] = tuple(run.model_input[: run.history_len])
    if run.memory is None and run.pre_start == 0 and isinstance(given, str):
        history = given  # as the SDK: the run's input as given, when it is all the history
    data = HandoffInputData(
        input_history=history,
        pre_handoff_items=tuple(run.new_items[run.pre_start : step_start]),
        new_items=tuple(run.new_items[step_start:]),
        run_context=run.context,
    )
    filtered = input_filter(data)
    if inspect.isawaitable(filtered):
        filtered = await filtered
    if not isinstance(filtered, HandoffInputData):
        raise UserError(
            f"the handoff input_filter returned {type(filtered).__name__}; return a "
            "HandoffInputData (data.clone(...))"
        )
    kept = filtered.input_history
    shown = filtered.new_items if filtered.input_items is None else filtered.input_items
    items = input_to_items(kept) if isinstance(kept, str) else list(kept)
    items += [item.to_input_item() for item in (*filtered.pre_handoff_items, *shown)]
    run.model_input = items
    run.filtered = True
    # What the next agent saw is the input history of any later handoff.
    run.history_len = len(items)
    run.pre_start = len(run.new_items)


async def _offered_tools(run: _Run, agent: Agent[Any]) -> list[FunctionTool]:
    """The agent's tools whose ``is_enabled`` (a bool or a function) says yes right now."""
    offered = []
    for tool in agent.tools:
        enabled = tool.is_enabled
        if callable(enabled):
            enabled = enabled(run.context, agent)
            if inspect.isawaitable(enabled):
                enabled = await enabled
        if enabled:
            offered.append(tool)
    return offered


async def _call_model(run: _Run) -> ModelResponse:
    agent = run.agent
    model = resolve_model(agent, run.config)
    schema = agent.output_schema
    run.enabled_tools = await _offered_tools(run, agent)
    tools = tool_specs(agent, run.enabled_tools)
    settings = agent.model_settings.resolve(run.config.model_settings)
    if not tools and settings.tool_choice is not None:
        settings = dataclasses.replace(settings, tool_choice=None)  # endpoints reject it
    request = ModelRequest(
        instructions=await agent.get_instructions(run.context),
        input=run.model_input[run.sent :],
        previous_response_id=run.previous_response_id,
        conversation_id=run.conversation_id,
        settings=settings,
        tools=tools,
        output_schema=schema.output_schema if schema is not None else None,
    )
    attempt = CallAttempt()
    while True:
        try:
            response = await _send(run, model, request, attempt)
            break
        except ContextWindowExceededError as exc:  # less history, then a compaction
            retry = await retry_after_overflow(
                run, model, request, exc, attempt, server_state=_server_state(run)
            )
            request = dataclasses.replace(request, input=run.model_input[run.sent :])
            attempt = CallAttempt(retry)
    if run.calibrate:
        run.calibrate = False
        if request.previous_response_id is None and request.conversation_id is None:
            # with server-side state the usage counts history the request did not carry
            observe_usage(model, estimate_request(model, request), response.usage.input_tokens)
    run.context.usage.add(response.usage)
    if run.memory is not None:
        run.memory.note_request(request, response.usage)
    run.responses.append(response)
    return response


async def _send(
    run: _Run, model: Model, request: ModelRequest, attempt: CallAttempt
) -> ModelResponse:
    """One attempt at a model call, in its own model span."""
    with span(
        "model",
        getattr(model, "model", type(model).__name__),
        disabled=run.config.tracing_disabled,
        agent=run.agent.name,
    ) as model_span:
        if model_span is not None and attempt.retry is not None:
            model_span.attributes["context_retry"] = attempt.retry.stage
        try:
            response = await (
                _stream(model, request, run.emit, attempt)
                if run.emit
                else model.get_response(request)
            )
        except ContextWindowExceededError as exc:
            if run.calibrate and exc.requested_tokens is not None:  # the next run fits better
                observe_usage(model, estimate_request(model, request), exc.requested_tokens)
            raise
        except Exception as exc:
            loop_error = _other_loop_error(exc)
            if loop_error is None:
                raise
            raise UserError(
                f"the client of model {model!r} belongs to another event loop "
                f"({type(loop_error).__name__}: {loop_error}): a client's connections belong to "
                "the loop that opened them, and each asyncio.run() has its own; create the "
                "client inside the coroutine asyncio.run runs (async with AsyncOpenAI(...)), "
                "keep to Runner.run_sync (one loop per thread), or let threadline make the "
                "client (OPENAI_API_KEY or OpenAIProvider(api_key=...)), one per loop"
            ) from exc
        if model_span is not None:
            model_span.attributes["usage"] = vars(response.usage).copy()
    return response


def _other_loop_error(exc: BaseException) -> RuntimeError | None:
    """The asyncio error in ``exc``'s chain that says an object of another loop was used.

    Raised while this loop runs, "Event loop is closed" is about some other loop: typically a
    client's pooled connection opened under an earlier ``asyncio.run``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RuntimeError) and (
            str(current) == "Event loop is closed"
            or str(current).endswith("is bound to a different event loop")
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


async def _stream(
    model: Model, request: ModelRequest, emit: Emit, attempt: CallAttempt
) -> ModelResponse:
    async for event in model.stream_response(request):
        if isinstance(event, ResponseCompleted):
            return event.response
        emit(raw_event_for(event, attempt.events))
        attempt.events += 1
    raise ModelBehaviorError("the model's stream ended without a completed response")


def _nested_runner(run: _Run) -> Callable[[Any, str], Any]:
    async def nested(agent: Agent[Any], text: str) -> RunResult:
        wrapper = RunContextWrapper(run.context.context)
        result = await run_agent(
            agent,
            text,
            context=run.context.context,
            max_turns=run.max_turns,
            hooks=run.hooks,
            config=run.config,
            session=None,
            context_wrapper=wrapper,
        )
        run.context.usage.add(wrapper.usage)
        if result.interruptions:
            names = ", ".join(str(i.tool_name) for i in result.interruptions)
            raise UserError(
                f"agent {agent.name!r}, run as a tool, stopped for approval of {names}: "
                "approvals inside Agent.as_tool are not supported; give the approval-gated "
                "tools to the outer agent"
            )
        return result

    return nested
