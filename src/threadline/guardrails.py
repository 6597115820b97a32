"""Guardrails: checks that run beside an agent and can stop the run (the SDK's API).

An **input guardrail** sees the run's input before (or while) the starting agent's first model
call runs; an **output guardrail** sees the final output. Each returns a
:class:`GuardrailFunctionOutput`; when its ``tripwire_triggered`` is true the run stops with
:class:`~threadline.errors.InputGuardrailTripwireTriggered` or
:class:`~threadline.errors.OutputGuardrailTripwireTriggered`.

What a tripped run stores in its session: nothing of a rejected input (the input is written
only once every input guardrail passed), and, for a rejected output, the user input but not
the final step that produced the blocked answer, so the history stays valid to send.

```python
@input_guardrail
async def no_homework(ctx, agent, user_input):
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="homework" in str(user_input))

agent = Agent(name="Assistant", input_guardrails=[no_homework])
```
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .context import RunContextWrapper
from .errors import UserError
from .items import Item

if TYPE_CHECKING:
    from .agent import Agent

__all__ = [
    "GuardrailFunctionOutput",
    "InputGuardrail",
    "InputGuardrailResult",
    "OutputGuardrail",
    "OutputGuardrailResult",
    "input_guardrail",
    "output_guardrail",
]

TContext = TypeVar("TContext")

InputGuardrailFunction = Callable[
    [RunContextWrapper[Any], "Agent[Any]", "str | list[Item]"],
    "GuardrailFunctionOutput | Awaitable[GuardrailFunctionOutput]",
]
OutputGuardrailFunction = Callable[
    [RunContextWrapper[Any], "Agent[Any]", Any],
    "GuardrailFunctionOutput | Awaitable[GuardrailFunctionOutput]",
]


@dataclass
class GuardrailFunctionOutput:
    """What a guardrail function returns: any ``output_info`` for the caller, and whether
    the tripwire was triggered (which stops the run)."""

    output_info: Any
    tripwire_triggered: bool


async def _call(function: Callable[..., Any], name: str, *args: Any) -> GuardrailFunctionOutput:
    outcome = function(*args)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    if not isinstance(outcome, GuardrailFunctionOutput):
        raise UserError(
            f"guardrail {name!r} must return a GuardrailFunctionOutput, "
            f"got {type(outcome).__name__}"
        )
    return outcome


def _name_of(function: Callable[..., Any]) -> str:
    return str(getattr(function, "__name__", type(function).__name__))


@dataclass
class InputGuardrail(Generic[TContext]):
    """A check of the run's input, for the starting agent.

    ``run_in_parallel`` (the default) runs it while the first model call runs, cancelling that
    call when the tripwire triggers; ``False`` runs it before the model is called at all.
    """

    guardrail_function: InputGuardrailFunction
    name: str | None = None
    run_in_parallel: bool = True

    def get_name(self) -> str:
        """The guardrail's name: ``name``, else the function's name."""
        return self.name or _name_of(self.guardrail_function)

    async def run(
        self, agent: Agent[Any], input: str | list[Item], context: RunContextWrapper[Any]
    ) -> InputGuardrailResult:
        """Run the check on ``input``."""
        output = await _call(self.guardrail_function, self.get_name(), context, agent, input)
        return InputGuardrailResult(guardrail=self, output=output)


@dataclass
class InputGuardrailResult:
    """One input guardrail's outcome."""

    guardrail: InputGuardrail[Any]
    output: GuardrailFunctionOutput


@dataclass
class OutputGuardrail(Generic[TContext]):
    """A check of the final output of the agent that produced it."""

    guardrail_function: OutputGuardrailFunction
    name: str | None = None

    def get_name(self) -> str:
        """The guardrail's name: ``name``, else the function's name."""
        return self.name or _name_of(self.guardrail_function)

    async def run(
        self, context: RunContextWrapper[Any], agent: Agent[Any], agent_output: Any
    ) -> OutputGuardrailResult:
        """Run the check on ``agent_output``."""
        output = await _call(self.guardrail_function, self.get_name(), context, agent, agent_output)
        return OutputGuardrailResult(
            guardrail=self, agent_output=agent_output, agent=agent, output=output
        )


@dataclass
class OutputGuardrailResult:
    """One output guardrail's outcome, with the output it saw and the agent that made it."""

    guardrail: OutputGuardrail[Any]
    agent_output: Any
    agent: Agent[Any]
    output: GuardrailFunctionOutput


@overload
def input_guardrail(func: InputGuardrailFunction) -> InputGuardrail[Any]: ...


@overload
def input_guardrail(
    func: None = None, *, name: str | None = None, run_in_parallel: bool = True
) -> Callable[[InputGuardrailFunction], InputGuardrail[Any]]: ...


def input_guardrail(
    func: InputGuardrailFunction | None = None,
    *,
    name: str | None = None,
    run_in_parallel: bool = True,
) -> InputGuardrail[Any] | Callable[[InputGuardrailFunction], InputGuardrail[Any]]:
    """Make an :class:`InputGuardrail` of a function ``(context, agent, input)``, sync or
    async: ``@input_guardrail`` or ``@input_guardrail(name=..., run_in_parallel=False)``."""

    def wrap(function: InputGuardrailFunction) -> InputGuardrail[Any]:
        if not callable(function):
            raise UserError(f"input_guardrail needs a function, got {type(function).__name__}")
        return InputGuardrail(function, name=name, run_in_parallel=run_in_parallel)

    return wrap if func is None else wrap(func)


@overload
def output_guardrail(func: OutputGuardrailFunction) -> OutputGuardrail[Any]: ...


@overload
def output_guardrail(
    func: None = None, *, name: str | None = None
) -> Callable[[OutputGuardrailFunction], OutputGuardrail[Any]]: ...


def output_guardrail(
    func: OutputGuardrailFunction | None = None, *, name: str | None = None
) -> OutputGuardrail[Any] | Callable[[OutputGuardrailFunction], OutputGuardrail[Any]]:
    """Make an :class:`OutputGuardrail` of a function ``(context, agent, output)``, sync or
    async: ``@output_guardrail`` or ``@output_guardrail(name=...)``."""

    def wrap(function: OutputGuardrailFunction) -> OutputGuardrail[Any]:
        if not callable(function):
            raise UserError(f"output_guardrail needs a function, got {type(function).__name__}")
        return OutputGuardrail(function, name=name)

    return wrap if func is None else wrap(func)
