"""Tool guardrails: checks around one function tool's call (the SDK's API and semantics).

A **tool input guardrail** runs before the tool, with the call's
:class:`~threadline.context.ToolContext` (name, call id and raw JSON arguments); a **tool
output guardrail** runs after it, with the tool's return value as well. Each returns a
:class:`ToolGuardrailFunctionOutput` whose ``behavior`` decides:

* ``allow`` (the default) — carry on;
* ``reject_content`` — the tool is not run (input) or its result is not shown (output); the
  guardrail's ``message`` is the call's output, so the model reads why and the run goes on;
* ``raise_exception`` — the run stops with
  :class:`~threadline.errors.ToolInputGuardrailTripwireTriggered` /
  :class:`~threadline.errors.ToolOutputGuardrailTripwireTriggered`.

The guardrails of a tool run one after another in the order given; the first that does not
allow decides. What a session keeps: a rejected call is stored with the rejection message as
its output (the history stays valid to send); a run stopped by a tripwire stores nothing of the
step that made the call, as when a tool fails the run.

```python
@tool_input_guardrail
def no_secrets(data):
    if "password" in data.context.tool_arguments:
        return ToolGuardrailFunctionOutput.reject_content("Arguments may not hold a password.")
    return ToolGuardrailFunctionOutput.allow()

@function_tool(tool_input_guardrails=[no_secrets])
def lookup(query: str) -> str: ...
```
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypedDict, TypeVar, overload

from ..context import ToolContext
from ..errors import UserError

__all__ = [
    "AllowBehavior",
    "RaiseExceptionBehavior",
    "RejectContentBehavior",
    "ToolGuardrailFunctionOutput",
    "ToolInputGuardrail",
    "ToolInputGuardrailData",
    "ToolInputGuardrailResult",
    "ToolOutputGuardrail",
    "ToolOutputGuardrailData",
    "ToolOutputGuardrailResult",
    "tool_input_guardrail",
    "tool_output_guardrail",
]

TContext = TypeVar("TContext")


class AllowBehavior(TypedDict):
    """Let the tool call go on."""

    type: Literal["allow"]


class RejectContentBehavior(TypedDict):
    """Answer the call with ``message`` instead of running it / showing its result."""

    type: Literal["reject_content"]
    message: str


class RaiseExceptionBehavior(TypedDict):
    """Stop the run with a tool guardrail tripwire exception."""

    type: Literal["raise_exception"]


Behavior = AllowBehavior | RejectContentBehavior | RaiseExceptionBehavior
_BEHAVIORS = ("allow", "reject_content", "raise_exception")


@dataclass
class ToolGuardrailFunctionOutput:
    """What a tool guardrail function returns: ``output_info`` for the caller, and the
    ``behavior`` (build it with :meth:`allow`, :meth:`reject_content` or
    :meth:`raise_exception`)."""

    output_info: Any = None
    behavior: Behavior = field(default_factory=lambda: AllowBehavior(type="allow"))

    @classmethod
    def allow(cls, output_info: Any = None) -> ToolGuardrailFunctionOutput:
        """Let the call go on."""
        return cls(output_info=output_info, behavior=AllowBehavior(type="allow"))

    @classmethod
    def reject_content(cls, message: str, output_info: Any = None) -> ToolGuardrailFunctionOutput:
        """Answer the call with ``message`` (what the model reads) and go on with the run."""
        return cls(
            output_info=output_info,
            behavior=RejectContentBehavior(type="reject_content", message=message),
        )

    @classmethod
    def raise_exception(cls, output_info: Any = None) -> ToolGuardrailFunctionOutput:
        """Stop the run with the tripwire exception."""
        return cls(output_info=output_info, behavior=RaiseExceptionBehavior(type="raise_exception"))


@dataclass
class ToolInputGuardrailData:
    """What a tool input guardrail sees: the call's context and the agent running it."""

    context: ToolContext[Any]
    agent: Any


@dataclass
class ToolOutputGuardrailData(ToolInputGuardrailData):
    """What a tool output guardrail sees: the input data and the tool's return value."""

    output: Any


def _check_output(name: str, value: object) -> ToolGuardrailFunctionOutput:
    if not isinstance(value, ToolGuardrailFunctionOutput):
        raise UserError(
            f"tool guardrail {name!r} returned {type(value).__name__}; return a "
            "ToolGuardrailFunctionOutput (.allow(), .reject_content(message) or "
            ".raise_exception())"
        )
    behavior = value.behavior
    kind = behavior.get("type") if isinstance(behavior, dict) else None
    if kind not in _BEHAVIORS:
        raise UserError(
            f"tool guardrail {name!r} returned an unknown behavior {behavior!r}; use "
            "ToolGuardrailFunctionOutput.allow(), .reject_content(message) or .raise_exception()"
        )
    if kind == "reject_content" and not isinstance(behavior.get("message"), str):
        raise UserError(f"tool guardrail {name!r}: a reject_content behavior needs a message")
    return value


async def _call(function: Callable[[Any], Any], name: str, data: Any) -> Any:
    value = function(data)
    if inspect.isawaitable(value):
        value = await value
    return _check_output(name, value)


@dataclass
class _ToolGuardrail(Generic[TContext]):
    """What both kinds of tool guardrail share: the function, its name, and calling it."""

    guardrail_function: Callable[[Any], Any]
    name: str | None = None

    _default_name: ClassVar[str] = "tool_guardrail"

    def __post_init__(self) -> None:
        if not callable(self.guardrail_function):
            raise UserError(
                f"a tool guardrail needs a function, got {type(self.guardrail_function).__name__}"
            )

    def get_name(self) -> str:
        """The guardrail's name."""
        return self.name or str(getattr(self.guardrail_function, "__name__", self._default_name))

    async def _run(self, data: Any) -> ToolGuardrailFunctionOutput:
        return await _call(self.guardrail_function, self.get_name(), data)  # type: ignore[no-any-return]


@dataclass
class ToolInputGuardrail(_ToolGuardrail[TContext]):
    """A check run before a function tool; ``name`` defaults to the function's name."""

    guardrail_function: Callable[[ToolInputGuardrailData], Any]
    _default_name: ClassVar[str] = "tool_input_guardrail"

    async def run(self, data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        """Call the guardrail function (sync or async) on ``data``."""
        return await self._run(data)


@dataclass
class ToolOutputGuardrail(_ToolGuardrail[TContext]):
    """A check run after a function tool; ``name`` defaults to the function's name."""

    guardrail_function: Callable[[ToolOutputGuardrailData], Any]
    _default_name: ClassVar[str] = "tool_output_guardrail"

    async def run(self, data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
        """Call the guardrail function (sync or async) on ``data``."""
        return await self._run(data)


@dataclass
class ToolInputGuardrailResult:
    """One tool input guardrail's outcome in a run."""

    guardrail: ToolInputGuardrail[Any]
    output: ToolGuardrailFunctionOutput


@dataclass
class ToolOutputGuardrailResult:
    """One tool output guardrail's outcome in a run."""

    guardrail: ToolOutputGuardrail[Any]
    output: ToolGuardrailFunctionOutput


InputFunction = Callable[[ToolInputGuardrailData], Any]
OutputFunction = Callable[[ToolOutputGuardrailData], Any]


@overload
def tool_input_guardrail(
    func: InputFunction, *, name: str | None = None
) -> ToolInputGuardrail[Any]: ...


@overload
def tool_input_guardrail(
    func: None = None, *, name: str | None = None
) -> Callable[[InputFunction], ToolInputGuardrail[Any]]: ...


def tool_input_guardrail(
    func: InputFunction | None = None, *, name: str | None = None
) -> ToolInputGuardrail[Any] | Callable[[InputFunction], ToolInputGuardrail[Any]]:
    """Make a :class:`ToolInputGuardrail` of a function of ``ToolInputGuardrailData``
    (sync or async), used bare or as ``@tool_input_guardrail(name=...)``."""

    def decorate(function: InputFunction) -> ToolInputGuardrail[Any]:
        return ToolInputGuardrail(guardrail_function=function, name=name)

    return decorate if func is None else decorate(func)


@overload
def tool_output_guardrail(
    func: OutputFunction, *, name: str | None = None
) -> ToolOutputGuardrail[Any]: ...


@overload
def tool_output_guardrail(
    func: None = None, *, name: str | None = None
) -> Callable[[OutputFunction], ToolOutputGuardrail[Any]]: ...


def tool_output_guardrail(
    func: OutputFunction | None = None, *, name: str | None = None
) -> ToolOutputGuardrail[Any] | Callable[[OutputFunction], ToolOutputGuardrail[Any]]:
    """Make a :class:`ToolOutputGuardrail` of a function of ``ToolOutputGuardrailData``
    (sync or async), used bare or as ``@tool_output_guardrail(name=...)``."""

    def decorate(function: OutputFunction) -> ToolOutputGuardrail[Any]:
        return ToolOutputGuardrail(guardrail_function=function, name=name)

    return decorate if func is None else decorate(func)
