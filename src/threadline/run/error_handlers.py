"""Run error handlers: ``Runner.run(..., error_handlers={"max_turns": handler})`` (the SDK's API).

When a run reaches ``max_turns`` and a ``"max_turns"`` handler is given, the handler is called
with a :class:`RunErrorHandlerInput` (the error, the run context and a :class:`RunErrorData`
snapshot) instead of the run raising :class:`~threadline.errors.MaxTurnsExceeded`. It returns
(sync or async):

* ``None`` — the error is raised after all;
* a :class:`RunErrorHandlerResult` — ``final_output`` ends the run; with
  ``include_in_history`` (the default) it is also an assistant message in ``new_items`` and,
  with a session, stored, so the next turn reads it;
* a dict ``{"final_output": ..., "include_in_history": ...}`` — the same;
* any other value — the final output.

A structured ``output_type`` validates the handler's output; an invalid one is a
:class:`~threadline.errors.UserError`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

from ..context import RunContextWrapper
from ..errors import MaxTurnsExceeded, UserError
from ..items import Item

if TYPE_CHECKING:
    from ..agent import Agent
    from ..models.base import ModelResponse
    from .run_items import RunItem

__all__ = [
    "RunErrorData",
    "RunErrorHandler",
    "RunErrorHandlerInput",
    "RunErrorHandlerResult",
    "RunErrorHandlers",
    "check_error_handlers",
    "handle_max_turns",
]

TContext = TypeVar("TContext")

_SUPPORTED = ("max_turns",)
_SDK_ONLY = ("model_refusal", "invalid_final_output")


@dataclass
class RunErrorData:
    """A snapshot of the run when the error happened."""

    input: str | list[Item]
    new_items: list[RunItem]
    history: list[Item]
    """The input followed by the run's new items, as items."""
    output: list[Item]
    """The run's new items, as items."""
    raw_responses: list[ModelResponse]
    last_agent: Agent[Any]


@dataclass
class RunErrorHandlerInput(Generic[TContext]):
    """What an error handler is called with."""

    error: MaxTurnsExceeded
    context: RunContextWrapper[TContext]
    run_data: RunErrorData


@dataclass
class RunErrorHandlerResult:
    """A handler's answer: the run's ``final_output``, and whether it joins the history."""

    final_output: Any
    include_in_history: bool = True


RunErrorHandler = Callable[[RunErrorHandlerInput[Any]], Any]
"""A function (sync or async) of :class:`RunErrorHandlerInput` returning a final output,
a :class:`RunErrorHandlerResult`, a dict of its fields, or ``None`` to raise the error."""


class RunErrorHandlers(TypedDict, total=False):
    """Error handlers by error kind; threadline handles ``max_turns``."""

    max_turns: RunErrorHandler


def check_error_handlers(handlers: object) -> dict[str, RunErrorHandler] | None:
    """``handlers`` as a dict of callables, or a :class:`~threadline.errors.UserError`."""
    if handlers is None:
        return None
    if not isinstance(handlers, dict):
        raise UserError(
            f"error_handlers must be a dict such as {{'max_turns': handler}}, got "
            f"{type(handlers).__name__}"
        )
    for kind, handler in handlers.items():
        if kind in _SDK_ONLY:
            raise UserError(
                f"error_handlers[{kind!r}] is not supported by threadline (only 'max_turns' "
                "is); see docs/porting.md"
            )
        if kind not in _SUPPORTED:
            raise UserError(f"error_handlers has an unknown kind {kind!r}; use 'max_turns'")
        if not callable(handler):
            raise UserError(
                f"error_handlers[{kind!r}] must be a function, got {type(handler).__name__}"
            )
    return dict(handlers)


def _result_of(value: Any) -> RunErrorHandlerResult | None:
    if value is None or isinstance(value, RunErrorHandlerResult):
        return value
    if isinstance(value, dict) and "final_output" in value:
        extra = set(value) - {"final_output", "include_in_history"}
        if extra:
            raise UserError(
                f"an error handler returned a dict with unknown keys {sorted(extra)}; use "
                "final_output and include_in_history"
            )
        return RunErrorHandlerResult(**value)
    return RunErrorHandlerResult(final_output=value)


def _output_text(agent: Agent[Any], output: Any) -> tuple[Any, str]:
    """The validated final output, and its text as the model would have written it."""
    schema = agent.output_schema
    if schema is None:
        return output, output if isinstance(output, str) else str(output)
    from pydantic import ValidationError

    try:
        value = schema._adapter.validate_python(output)
        payload = schema._adapter.dump_python(value, mode="json")
    except (ValidationError, TypeError, ValueError) as exc:
        raise UserError(
            f"the max_turns error handler returned a final output that does not match agent "
            f"{agent.name!r}'s output_type {schema.output_schema.name} ({type(exc).__name__})"
        ) from exc
    wrapped = {"response": payload} if schema._wrapped else payload
    return value, json.dumps(wrapped, ensure_ascii=False)


async def handle_max_turns(
    handler: RunErrorHandler,
    error: MaxTurnsExceeded,
    context: RunContextWrapper[Any],
    data: RunErrorData,
) -> tuple[Any, str | None] | None:
    """Call ``handler``: ``None`` when the error stands, else ``(final_output, text)`` where
    ``text`` is the assistant message to add to the history (``None``: add nothing)."""
    value = handler(RunErrorHandlerInput(error=error, context=context, run_data=data))
    if inspect.isawaitable(value):
        value = await value
    result = _result_of(value)
    if result is None:
        return None
    output, text = _output_text(data.last_agent, result.final_output)
    return output, text if result.include_in_history else None
