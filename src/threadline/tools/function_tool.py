"""``@function_tool``: turn a typed Python function into a :class:`FunctionTool`.

```python
@function_tool
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    \"\"\"Get the weather for a city.

    Args:
        city: The city to look up.
        unit: Temperature unit.
    \"\"\"
```

The tool's name is the function's name, its description the docstring without the parameter
section, and its parameters schema is built by pydantic from the type hints, with each
parameter's description taken from the docstring (Google, NumPy or Sphinx layout). An optional
first parameter annotated ``RunContextWrapper[...]`` or ``ToolContext[...]`` receives the run
context and is not part of the schema.

With ``strict_mode=True`` (the default) the schema is made strict as OpenAI structured outputs
require (see :func:`threadline.tools._schema.ensure_strict_json_schema`): every parameter is
listed in ``required``, including those with a default, so the model always sends a value; the
default is named in the parameter's description instead. Python defaults still fill in any
argument a (non-strict) model leaves out.

``tool.on_invoke_tool`` is a :class:`ToolInvoker`; the decorated function stays reachable as
``tool.on_invoke_tool.function``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from threadline.context import RunContextWrapper, ToolContext
from threadline.errors import ToolArgumentsError, UserError
from threadline.tools._docstring import DocstringStyle, ParsedDocstring, parse_docstring
from threadline.tools._schema import (
    FieldSpec,
    StrictSchemaError,
    arguments_model,
    ensure_strict_json_schema,
    pointer,
    strip_titles,
)
from threadline.tools.base import (
    ApprovalFunction,
    FunctionTool,
    ToolErrorFunction,
    default_tool_error_function,
)
from threadline.tools.guardrails import ToolInputGuardrail, ToolOutputGuardrail

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

__all__ = ["ToolInvoker", "function_tool", "tool_output_to_str"]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_REPORTED_PROBLEMS = 5


@dataclasses.dataclass(frozen=True)
class _Param:
    """How one parameter of the function is filled: from the context or a model field."""

    name: str
    field: str | None  # None: this parameter receives the context
    positional_only: bool


class ToolInvoker:
    """The ``on_invoke_tool`` of a function tool: validates the JSON arguments, calls the function.

    Attributes: ``function`` (the decorated function), ``arguments_model`` (the pydantic model
    the arguments are validated with), ``tool_name`` and ``takes_context``.
    """

    def __init__(
        self,
        *,
        tool_name: str,
        function: Callable[..., Any],
        arguments_model: type[BaseModel],
        params: list[_Param],
    ) -> None:
        self.tool_name = tool_name
        self.function = function
        self.arguments_model = arguments_model
        self.takes_context = any(param.field is None for param in params)
        self._params = params
        call = getattr(function, "__call__", None)  # noqa: B004 - async callable objects
        self._is_async = inspect.iscoroutinefunction(function) or (
            not inspect.isroutine(function) and inspect.iscoroutinefunction(call)
        )

    async def __call__(self, ctx: ToolContext[Any], arguments: str) -> Any:
        """Validate ``arguments`` (a JSON object; empty means ``{}``) and call the function.

        Returns the function's result unchanged (:func:`tool_output_to_str` converts it for the
        model). Bad arguments raise :class:`~threadline.errors.ToolArgumentsError`; exceptions
        raised by the function propagate unchanged. A sync function runs in a worker thread.
        """
        args, kwargs = self.bind(ctx, arguments)
        if self._is_async:
            result = await self.function(*args, **kwargs)
        else:
            import asyncio

            result = await asyncio.to_thread(self.function, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def bind(self, ctx: ToolContext[Any], arguments: str) -> tuple[list[Any], dict[str, Any]]:
        """Parse and validate ``arguments``; return the positional and keyword call arguments."""
        from pydantic import ValidationError

        data = self._parse_json(arguments)
        try:
            parsed = self.arguments_model.model_validate(data)
        except ValidationError as exc:
            raise ToolArgumentsError(self.tool_name, _describe_validation_error(exc)) from exc
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param in self._params:
            value = ctx if param.field is None else getattr(parsed, param.field)
            if param.positional_only:
                args.append(value)
            else:
                kwargs[param.name] = value
        return args, kwargs

    def _parse_json(self, arguments: str) -> dict[str, Any]:
        if arguments is None or not arguments.strip():
            return {}
        try:
            data = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ToolArgumentsError(
                self.tool_name,
                f"the arguments are not valid JSON ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno})",
            ) from exc
        if not isinstance(data, dict):
            raise ToolArgumentsError(
                self.tool_name, f"the arguments must be a JSON object, got {_json_kind(data)}"
            )
        return data


@overload
def function_tool(
    func: Callable[..., Any],
    *,
    name_override: str | None = None,
    description_override: str | None = None,
    docstring_style: DocstringStyle | None = None,
    use_docstring_info: bool = True,
    failure_error_function: ToolErrorFunction | None = default_tool_error_function,
    strict_mode: bool = True,
    tool_input_guardrails: list[ToolInputGuardrail[Any]] | None = None,
    tool_output_guardrails: list[ToolOutputGuardrail[Any]] | None = None,
    is_enabled: bool | Callable[[RunContextWrapper[Any], Any], Any] = True,
    needs_approval: bool | ApprovalFunction = False,
) -> FunctionTool: ...


@overload
def function_tool(
    func: None = None,
    *,
    name_override: str | None = None,
    description_override: str | None = None,
    docstring_style: DocstringStyle | None = None,
    use_docstring_info: bool = True,
    failure_error_function: ToolErrorFunction | None = default_tool_error_function,
    strict_mode: bool = True,
    tool_input_guardrails: list[ToolInputGuardrail[Any]] | None = None,
    tool_output_guardrails: list[ToolOutputGuardrail[Any]] | None = None,
    is_enabled: bool | Callable[[RunContextWrapper[Any], Any], Any] = True,
    needs_approval: bool | ApprovalFunction = False,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    func: Callable[..., Any] | None = None,
    *,
    name_override: str | None = None,
    description_override: str | None = None,
    docstring_style: DocstringStyle | None = None,
    use_docstring_info: bool = True,
    failure_error_function: ToolErrorFunction | None = default_tool_error_function,
    strict_mode: bool = True,
    tool_input_guardrails: list[ToolInputGuardrail[Any]] | None = None,
    tool_output_guardrails: list[ToolOutputGuardrail[Any]] | None = None,
    is_enabled: bool | Callable[[RunContextWrapper[Any], Any], Any] = True,
    needs_approval: bool | ApprovalFunction = False,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a :class:`FunctionTool` from a typed function, used bare or with arguments.

    ``name_override`` / ``description_override`` replace the name and the docstring
    description; ``docstring_style`` forces one docstring layout (default: detect);
    ``use_docstring_info=False`` ignores the docstring. ``failure_error_function`` turns an
    exception raised by the function into the output the model sees (``None``: the run fails).
    ``strict_mode`` makes the schema strict (all parameters required, no extra keys).
    ``tool_input_guardrails`` / ``tool_output_guardrails`` check each call before / after the
    function runs (see :mod:`threadline.tools.guardrails`). ``is_enabled`` (a bool, or a
    function of ``(context_wrapper, agent)``, sync or async) says whether the model is offered
    the tool before each model call. ``needs_approval`` (``True``, or
    ``(ctx, arguments, call_id) -> bool``, sync or async) makes the run stop for a human
    decision before a call runs (``result.interruptions``). Raises
    :class:`~threadline.errors.UserError` when the function cannot be described as a tool.
    """
    if not isinstance(needs_approval, bool) and not callable(needs_approval):
        raise UserError(
            "needs_approval must be True, False or a function (ctx, arguments, call_id) -> "
            f"bool, got {type(needs_approval).__name__}"
        )
    # Types defined in the calling function (not at module level) are found through its locals.
    caller = sys._getframe(1)
    localns = None if caller.f_locals is caller.f_globals else dict(caller.f_locals)
    del caller

    def decorate(function: Callable[..., Any]) -> FunctionTool:
        tool = _build_tool(
            function,
            localns=localns,
            name_override=name_override,
            description_override=description_override,
            docstring_style=docstring_style,
            use_docstring_info=use_docstring_info,
            failure_error_function=failure_error_function,
            strict_mode=strict_mode,
            needs_approval=needs_approval,
        )
        if tool_input_guardrails or tool_output_guardrails or is_enabled is not True:
            tool = dataclasses.replace(
                tool,
                tool_input_guardrails=tool_input_guardrails,
                tool_output_guardrails=tool_output_guardrails,
                is_enabled=is_enabled,
            )
        return tool

    return decorate if func is None else decorate(func)


def tool_output_to_str(value: Any) -> str:
    """Turn a tool's return value into the text the model sees.

    ``str`` as is; ``None`` as ``""``; a pydantic model with ``model_dump_json()``; dicts, lists,
    tuples and dataclass instances as compact JSON, models inside them by field name (values
    JSON cannot hold are written with ``str``); anything else with ``str(value)``.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, (dict, list, tuple)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        from pydantic_core import to_json

        # Field names, not aliases, as model_dump_json() writes a model by default.
        return to_json(value, by_alias=False, fallback=str).decode()
    return str(value)


def _build_tool(
    function: Callable[..., Any],
    *,
    localns: dict[str, Any] | None,
    name_override: str | None,
    description_override: str | None,
    docstring_style: DocstringStyle | None,
    use_docstring_info: bool,
    failure_error_function: ToolErrorFunction | None,
    strict_mode: bool,
    needs_approval: bool | ApprovalFunction = False,
) -> FunctionTool:
    if not callable(function):
        raise UserError(f"@function_tool needs a function, got {type(function).__name__}")
    func_name = getattr(function, "__name__", None) or type(function).__name__
    name = name_override if name_override is not None else func_name
    if not _TOOL_NAME.match(name):
        raise UserError(
            f"tool name {name!r} (from function {func_name!r}) is not valid: use 1-64 letters, "
            "digits, '_' or '-', e.g. @function_tool(name_override='my_tool')"
        )
    doc = (
        parse_docstring(inspect.getdoc(function), docstring_style)
        if use_docstring_info
        else ParsedDocstring()
    )
    params, fields = _read_signature(function, func_name, localns, doc)
    model, schema = arguments_model(func_name, fields)
    schema = strip_titles(schema)
    if strict_mode:
        schema = _strict(schema, func_name)
    invoker = ToolInvoker(tool_name=name, function=function, arguments_model=model, params=params)
    return FunctionTool(
        name=name,
        description=description_override if description_override is not None else doc.description,
        params_json_schema=schema,
        on_invoke_tool=invoker,
        strict_json_schema=strict_mode,
        failure_error_function=failure_error_function,
        needs_approval=needs_approval,
    )


def _read_signature(
    function: Callable[..., Any],
    func_name: str,
    localns: dict[str, Any] | None,
    doc: ParsedDocstring,
) -> tuple[list[_Param], dict[str, FieldSpec]]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise UserError(f"function tool {func_name!r}: cannot read its signature ({exc})") from exc
    hints = _type_hints(function, func_name, localns)
    params: list[_Param] = []
    fields: dict[str, FieldSpec] = {}
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            stars = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise UserError(
                f"function tool {func_name!r}: parameter {stars}{param.name} is not supported; "
                "a tool takes named parameters only, so list each one explicitly"
            )
        if param.name not in hints:
            raise UserError(
                f"function tool {func_name!r}: parameter {param.name!r} has no type hint; "
                f"annotate it (e.g. {param.name}: str) so its JSON schema can be built"
            )
        annotation = hints[param.name]
        positional_only = param.kind is param.POSITIONAL_ONLY
        if _is_context_type(annotation):
            if index != 0:
                raise UserError(
                    f"function tool {func_name!r}: the context parameter {param.name!r} must be "
                    "the first parameter"
                )
            params.append(_Param(param.name, None, positional_only))
            continue
        field = f"p{len(fields)}"
        fields[param.name] = (annotation, param.default, doc.params.get(param.name))
        params.append(_Param(param.name, field, positional_only))
    return params, fields


def _type_hints(
    function: Callable[..., Any], func_name: str, localns: dict[str, Any] | None
) -> dict[str, Any]:
    target = function if inspect.isroutine(function) else getattr(function, "__call__", function)  # noqa: B004
    try:
        return typing.get_type_hints(target, localns=localns, include_extras=True)
    except Exception as exc:  # NameError for unknown names, TypeError for bad annotations
        raise UserError(
            f"function tool {func_name!r}: cannot resolve its type hints ({exc}); make every "
            "type used in the signature importable from the function's module"
        ) from exc


def _is_context_type(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, (RunContextWrapper, ToolContext))


def _strict(schema: dict[str, Any], func_name: str) -> dict[str, Any]:
    try:
        return ensure_strict_json_schema(schema)
    except StrictSchemaError as exc:
        path = exc.path
        if len(path) >= 2 and path[0] == "properties":
            where = f"parameter {path[1]!r}"
        else:
            where = f"the schema at {pointer(path)}"
        raise UserError(
            f"function tool {func_name!r}: {where} cannot be used in strict mode: {exc.reason}; "
            "or pass @function_tool(strict_mode=False)"
        ) from exc


def _describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad argument, e.g. ``unit: Input should be 'c' or 'f' (got "k")``."""
    problems: list[str] = []
    errors = exc.errors(include_url=False)
    for error in errors[:_MAX_REPORTED_PROBLEMS]:
        location = _format_location(error["loc"])
        if error["type"] == "missing":
            kind = "argument" if len(error["loc"]) == 1 else "field"
            problems.append(f"{location}: missing required {kind}")
        elif error["type"] == "extra_forbidden":
            kind = "argument" if len(error["loc"]) == 1 else "field"
            problems.append(f"{location}: unexpected {kind}")
        else:
            problems.append(f"{location}: {error['msg']} (got {_short_json(error['input'])})")
    if len(errors) > _MAX_REPORTED_PROBLEMS:
        problems.append(f"and {len(errors) - _MAX_REPORTED_PROBLEMS} more")
    return "; ".join(problems)


def _format_location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "arguments"


def _short_json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"
