"""What a run returns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..context import RunContextWrapper
from ..errors import UserError
from ..items import Item
from ..models.base import ModelResponse
from ..usage import Usage
from .events import StreamEvent
from .run_items import RunItem

if TYPE_CHECKING:
    from ..agent import Agent
    from ..guardrails import InputGuardrailResult, OutputGuardrailResult
    from ..tools.guardrails import ToolInputGuardrailResult, ToolOutputGuardrailResult
    from .approvals import ToolApprovalItem
    from .compaction import CompactionResult
    from .overflow import ContextRetry
    from .state import RunState

__all__ = ["RunResult", "RunResultStreaming"]


@dataclass
class RunResult:
    """The outcome of a run.

    ``input`` is what the caller passed; ``new_items`` what the run produced (messages, tool
    calls and outputs, handoffs); ``final_output`` the last agent's answer (text, or the
    validated ``output_type`` value); ``raw_responses`` every model response;
    ``input_guardrail_results`` / ``output_guardrail_results`` what the guardrails said, and
    ``tool_input_guardrail_results`` / ``tool_output_guardrail_results`` the tool guardrails;
    ``compaction`` the background compaction this run started (``await result.compaction``
    gives its :class:`~threadline.run.compaction.CompactionResult`; it never raises), or
    ``None`` when the session has no ``compact_at``. ``context_retries`` lists the model calls
    retried with less history after the endpoint refused them as too long for the context
    window (:class:`~threadline.run.overflow.ContextRetry`; empty when none was).

    A run that stopped for approvals has ``interruptions`` (the waiting
    :class:`~threadline.run.approvals.ToolApprovalItem` calls) and ``final_output`` ``None``;
    ``to_state()`` is the run to decide on and resume.
    """

    input: str | list[Item]
    new_items: list[RunItem]
    final_output: Any
    last_agent: Agent[Any]
    raw_responses: list[ModelResponse]
    context_wrapper: RunContextWrapper[Any]
    input_guardrail_results: list[InputGuardrailResult] = field(default_factory=list)
    output_guardrail_results: list[OutputGuardrailResult] = field(default_factory=list)
    tool_input_guardrail_results: list[ToolInputGuardrailResult] = field(default_factory=list)
    tool_output_guardrail_results: list[ToolOutputGuardrailResult] = field(default_factory=list)
    compaction: asyncio.Task[CompactionResult] | None = field(default=None, repr=False)
    interruptions: list[ToolApprovalItem] = field(default_factory=list)
    context_retries: list[ContextRetry] = field(default_factory=list)
    _state: RunState | None = field(default=None, repr=False)

    @property
    def usage(self) -> Usage:
        """Requests and tokens summed over the run's model calls."""
        return self.context_wrapper.usage

    def to_state(self) -> RunState:
        """The interrupted run as a :class:`~threadline.RunState`: approve or reject each of
        its interruptions, then resume with ``Runner.run(agent, state)``."""
        return _state_of(self._state)

    def to_input_list(self) -> list[Item]:
        """The input followed by the new items: the next turn's input, for memory by hand."""
        from ..items import input_to_items

        return input_to_items(self.input) + [item.to_input_item() for item in self.new_items]

    def final_output_as(self, cls: type[Any], raise_if_incorrect_type: bool = False) -> Any:
        """``final_output``, checked to be a ``cls`` when ``raise_if_incorrect_type``."""
        if raise_if_incorrect_type and not isinstance(self.final_output, cls):
            raise TypeError(
                f"final_output is {type(self.final_output).__name__}, not {cls.__name__}"
            )
        return self.final_output

    @property
    def last_response_id(self) -> str | None:
        """The id of the last model response, when the provider gives one."""
        return self.raw_responses[-1].response_id if self.raw_responses else None


def _state_of(state: RunState | None) -> RunState:
    if state is None:
        raise UserError(
            "this run did not stop for approvals (result.interruptions is empty), so there "
            "is no state to resume: start the next turn with a new Runner.run"
        )
    return state


_DONE = object()


@dataclass
class RunResultStreaming:
    """A run in progress. Iterate ``stream_events()``; afterwards the fields are final.

    The run starts when ``stream_events()`` is first iterated. An exception raised by the run
    is re-raised from ``stream_events()`` once the events before it were delivered.
    ``cancel()`` stops the run; what was persisted stays valid to send.
    """

    input: str | list[Item]
    current_agent: Agent[Any]
    _start: Callable[[RunResultStreaming], Coroutine[Any, Any, RunResult]] = field(repr=False)
    new_items: list[RunItem] = field(default_factory=list)
    raw_responses: list[ModelResponse] = field(default_factory=list)
    final_output: Any = None
    is_complete: bool = False
    context_wrapper: RunContextWrapper[Any] | None = None
    _queue: asyncio.Queue[Any] | None = field(default=None, repr=False)
    _task: asyncio.Task[RunResult] | None = field(default=None, repr=False)
    _result: RunResult | None = field(default=None, repr=False)
    _cancel_requested: bool = field(default=False, repr=False)
    input_guardrail_results: list[InputGuardrailResult] = field(default_factory=list)
    output_guardrail_results: list[OutputGuardrailResult] = field(default_factory=list)
    tool_input_guardrail_results: list[ToolInputGuardrailResult] = field(default_factory=list)
    tool_output_guardrail_results: list[ToolOutputGuardrailResult] = field(default_factory=list)
    interruptions: list[ToolApprovalItem] = field(default_factory=list)
    """Set when the stream has ended: the calls waiting for approval, if the run stopped."""
    context_retries: list[ContextRetry] = field(default_factory=list)
    """Set when the stream has ended: as :attr:`RunResult.context_retries`."""

    @property
    def last_agent(self) -> Agent[Any]:
        """The agent active at the end (or now, while running)."""
        return self.current_agent

    @property
    def usage(self) -> Usage:
        """Usage so far."""
        return self.context_wrapper.usage if self.context_wrapper else Usage()

    def emit(self, event: StreamEvent) -> None:
        """Used by the runner to deliver an event."""
        if self._queue is not None:
            self._queue.put_nowait(event)

    async def stream_events(self) -> AsyncIterator[StreamEvent]:
        """Yield events until the run ends; re-raise the run's exception if it failed."""
        if self._task is not None:
            raise UserError("stream_events() can only be iterated once per streamed run")
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._start(self))
        self._task.add_done_callback(lambda _task: self._queue.put_nowait(_DONE))  # type: ignore[union-attr]
        try:
            while True:
                event = await self._queue.get()
                if event is _DONE:
                    break
                yield event
        finally:
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._task.cancelled() and self._cancel_requested:
            return  # cancel() was asked for: the stream just ends, is_complete stays False
        result = self._task.result()
        self._finish(result)

    def _finish(self, result: RunResult) -> None:
        self._result = result
        self.final_output = result.final_output
        self.new_items = result.new_items
        self.raw_responses = result.raw_responses
        self.current_agent = result.last_agent
        self.context_wrapper = result.context_wrapper
        self.input_guardrail_results = result.input_guardrail_results
        self.output_guardrail_results = result.output_guardrail_results
        self.tool_input_guardrail_results = result.tool_input_guardrail_results
        self.tool_output_guardrail_results = result.tool_output_guardrail_results
        self.interruptions = result.interruptions
        self.context_retries = result.context_retries
        self.is_complete = True

    @property
    def compaction(self) -> asyncio.Task[CompactionResult] | None:
        """As :attr:`RunResult.compaction`, once the stream has completed (``None`` before)."""
        return None if self._result is None else self._result.compaction

    def cancel(self) -> None:
        """Stop the run; ``stream_events()`` then ends without an error."""
        if self._task is not None and not self._task.done():
            self._cancel_requested = True
            self._task.cancel()

    def to_state(self) -> RunState:
        """As :meth:`RunResult.to_state`, once the stream has ended."""
        if self._result is None:
            raise UserError("the streamed run has not ended; iterate stream_events() first")
        return _state_of(self._result._state)

    def to_input_list(self) -> list[Item]:
        """As :meth:`RunResult.to_input_list`, once the stream has completed."""
        if self._result is None:
            raise UserError("the streamed run has not completed; iterate stream_events() first")
        return self._result.to_input_list()
