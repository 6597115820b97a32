"""``Runner``: the entry points of a run (async, sync and streamed)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..items import Item, input_to_items
from ._sync_loop import thread_loop
from .config import DEFAULT_MAX_TURNS, RunConfig
from .error_handlers import RunErrorHandlers, check_error_handlers
from .hooks import RunHooks
from .loop import run_agent
from .result import RunResult, RunResultStreaming
from .state import RunState

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["Runner"]


def _check(
    agent: object,
    input: object,
    max_turns: object,
    session: object,
    previous_response_id: object,
    conversation_id: object,
    auto_previous_response_id: object = False,
) -> None:
    from ..agent import Agent

    if not isinstance(agent, Agent):
        raise UserError(f"the starting agent must be an Agent, got {type(agent).__name__}")
    if not isinstance(input, (str, list, RunState)):
        raise UserError(
            "input must be a string or a list of items (or a RunState to resume), got "
            f"{type(input).__name__}"
        )
    if isinstance(input, list):
        input_to_items(input)  # validates, naming the bad item
    if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
        raise UserError(f"max_turns must be a positive integer, got {max_turns!r}")
    if not isinstance(auto_previous_response_id, bool):
        raise UserError(
            f"auto_previous_response_id must be True or False, got {auto_previous_response_id!r}"
        )
    if isinstance(input, RunState) and (
        previous_response_id is not None or conversation_id is not None or auto_previous_response_id
    ):
        raise UserError(
            "a RunState resumes with the server-side state it was saved with: do not pass "
            "previous_response_id, conversation_id or auto_previous_response_id with it"
        )
    if session is not None and (
        previous_response_id is not None or conversation_id is not None or auto_previous_response_id
    ):
        raise UserError(
            "a session cannot be combined with previous_response_id, conversation_id or "
            "auto_previous_response_id: either threadline keeps the history (session) or the "
            "server does, not both"
        )


class Runner:
    """Runs agents. Every entry point takes the same arguments.

    ``context`` is any object, reachable from tools, dynamic instructions and hooks through
    the ``RunContextWrapper``. ``session`` gives the run memory: its history is loaded and
    sent before ``input``, and the input and each completed step are stored. Without a
    session, a run remembers nothing.

    ``input`` may be a :class:`~threadline.RunState` (``result.to_state()`` of a run that
    stopped for approvals, once its interruptions are approved or rejected): the run resumes
    where it stopped, with the same session (``context``, when given, replaces the saved one;
    ``max_turns`` is the one the run started with, counting every model call of the run).
    """

    @classmethod
    async def run(
        cls,
        starting_agent: Agent[Any],
        input: str | list[Item] | RunState,
        *,
        context: Any = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        session: Any = None,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        error_handlers: RunErrorHandlers | None = None,
        auto_previous_response_id: bool = False,
    ) -> RunResult:
        """Run the agent loop until a final output; return the :class:`RunResult`.

        ``previous_response_id`` / ``conversation_id`` keep the history on the server instead
        (Responses API only); they cannot be combined with a ``session``.
        ``auto_previous_response_id=True`` chains each model call to the previous response
        when the model is a Responses model (only new items are sent); with another model
        every call sends the whole history, as without it. ``error_handlers={"max_turns":
        handler}`` lets ``handler`` end a run that reached ``max_turns`` with a final output
        instead of :class:`~threadline.errors.MaxTurnsExceeded` (see
        :mod:`threadline.run.error_handlers`).
        """
        _check(
            starting_agent,
            input,
            max_turns,
            session,
            previous_response_id,
            conversation_id,
            auto_previous_response_id,
        )
        handlers = check_error_handlers(error_handlers)
        return await run_agent(
            starting_agent,
            input,
            context=context,
            max_turns=max_turns,
            hooks=hooks or RunHooks(),
            config=run_config or RunConfig(),
            session=session,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            error_handlers=handlers,
            auto_previous_response_id=auto_previous_response_id,
        )

    @classmethod
    def run_sync(
        cls,
        starting_agent: Agent[Any],
        input: str | list[Item] | RunState,
        *,
        context: Any = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        session: Any = None,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        error_handlers: RunErrorHandlers | None = None,
        auto_previous_response_id: bool = False,
    ) -> RunResult:
        """:meth:`run` for synchronous code. Not callable from inside a running event loop.

        Runs on one event loop per thread, kept between calls, so clients and connection
        pools created by one call stay usable in the next; the loop is shut down (its clients
        closed) when the thread ends or the interpreter exits.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise UserError(
                "Runner.run_sync() cannot be called while an event loop is running "
                "(e.g. in async code or Jupyter); use 'await Runner.run(...)' instead"
            )
        loop = thread_loop()
        coro = cls.run(
            starting_agent,
            input,
            context=context,
            max_turns=max_turns,
            hooks=hooks,
            run_config=run_config,
            session=session,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            error_handlers=error_handlers,
            auto_previous_response_id=auto_previous_response_id,
        )
        task = loop.create_task(coro)
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            raise

    @classmethod
    def run_streamed(
        cls,
        starting_agent: Agent[Any],
        input: str | list[Item] | RunState,
        *,
        context: Any = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        session: Any = None,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        error_handlers: RunErrorHandlers | None = None,
        auto_previous_response_id: bool = False,
    ) -> RunResultStreaming:
        """Start a streamed run; iterate ``stream_events()`` on the result.

        Text arrives as raw response events as it is generated, completed items as run item
        events. Sessions are read and written exactly as in :meth:`run`.
        """
        _check(
            starting_agent,
            input,
            max_turns,
            session,
            previous_response_id,
            conversation_id,
            auto_previous_response_id,
        )
        handlers = check_error_handlers(error_handlers)

        async def start(streaming: RunResultStreaming) -> RunResult:
            def emit(event: Any) -> None:
                if event.type == "agent_updated_stream_event":
                    streaming.current_agent = event.new_agent
                streaming.emit(event)

            return await run_agent(
                starting_agent,
                input,
                context=context,
                max_turns=max_turns,
                hooks=hooks or RunHooks(),
                config=run_config or RunConfig(),
                session=session,
                emit=emit,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                error_handlers=handlers,
                auto_previous_response_id=auto_previous_response_id,
            )

        shown = input.original_input if isinstance(input, RunState) else input
        return RunResultStreaming(input=shown, current_agent=starting_agent, _start=start)
