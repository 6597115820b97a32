"""@function_tool: decoration, overrides, context injection and invocation."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import threading
import typing
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from threadline.context import RunContextWrapper, ToolContext
from threadline.errors import ModelBehaviorError, ToolArgumentsError, UserError
from threadline.tools.base import FunctionTool, default_tool_error_function
from threadline.tools.function_tool import ToolInvoker, function_tool


@dataclasses.dataclass
class AppState:
    user: str


class Item(BaseModel):
    name: str
    qty: int = 1


@function_tool
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Get the weather for a city.

    Args:
        city: The city to look up.
        unit: Temperature unit.
    """
    return f"{city}:{unit}"


@function_tool(
    name_override="lookup",
    description_override="Find things.",
    failure_error_function=None,
    strict_mode=True,
)
async def search_things(ctx: RunContextWrapper[AppState], query: str) -> list[str]:
    """Ignored because of the override."""
    return [ctx.context.user, query]


def make_ctx(context: Any = None, name: str = "t", arguments: str = "") -> ToolContext[Any]:
    return ToolContext(
        context=context, tool_name=name, tool_call_id="call_1", tool_arguments=arguments
    )


def test_bare_decorator_builds_a_function_tool() -> None:
    assert isinstance(get_weather, FunctionTool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the weather for a city."
    assert get_weather.strict_json_schema is True
    assert get_weather.failure_error_function is default_tool_error_function
    assert get_weather.params_json_schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city to look up."},
            "unit": {
                "type": "string",
                "enum": ["c", "f"],
                "description": 'Temperature unit. Default: "c".',
            },
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    }


def test_overrides_and_context_parameter_left_out_of_schema() -> None:
    assert search_things.name == "lookup"
    assert search_things.description == "Find things."
    assert search_things.failure_error_function is None
    assert search_things.params_json_schema["properties"] == {"query": {"type": "string"}}


def test_original_function_is_reachable() -> None:
    invoker = get_weather.on_invoke_tool
    assert isinstance(invoker, ToolInvoker)
    assert invoker.function.__name__ == "get_weather"
    assert invoker.function("Oslo", "f") == "Oslo:f"
    assert invoker.takes_context is False
    assert isinstance(search_things.on_invoke_tool, ToolInvoker)
    assert search_things.on_invoke_tool.takes_context is True


def test_docstring_can_be_ignored_or_styled() -> None:
    def f(x: int) -> None:
        """Summary.

        :param x: The x.
        """

    assert function_tool(f, use_docstring_info=False).description == ""
    props = function_tool(f, use_docstring_info=False).params_json_schema["properties"]
    assert props == {"x": {"type": "integer"}}
    assert function_tool(f, docstring_style="sphinx").params_json_schema["properties"]["x"] == {
        "type": "integer",
        "description": "The x.",
    }
    assert function_tool(f, docstring_style="google").description.startswith("Summary.\n\n:param")


def test_non_strict_mode_keeps_optional_parameters_optional() -> None:
    def f(a: int, b: int = 2) -> None: ...

    tool = function_tool(f, strict_mode=False)
    assert tool.strict_json_schema is False
    assert tool.params_json_schema["required"] == ["a"]


async def test_sync_tool_invocation_runs_off_the_event_loop_thread() -> None:
    seen: list[int] = []

    @function_tool
    def where(n: int) -> int:
        seen.append(threading.get_ident())
        return n * 2

    result = await where.on_invoke_tool(make_ctx(), '{"n": 21}')
    assert result == 42
    assert seen and seen[0] != threading.get_ident()


async def test_sync_tool_does_not_block_the_loop() -> None:
    release = threading.Event()

    @function_tool
    def blocking() -> str:
        assert release.wait(timeout=10)
        return "done"

    task = asyncio.ensure_future(blocking.on_invoke_tool(make_ctx(), ""))
    await asyncio.sleep(0)
    # The loop is free while the tool waits in its thread: this coroutine can run and unblock it.
    release.set()
    assert await task == "done"


async def test_async_tool_runs_on_the_loop_with_context() -> None:
    loop_thread = threading.get_ident()
    calls: list[Any] = []

    @function_tool
    async def remember(ctx: ToolContext[AppState], note: str) -> str:
        calls.append((ctx, threading.get_ident()))
        return f"{ctx.context.user}:{ctx.tool_call_id}:{note}"

    ctx = make_ctx(AppState("ana"), arguments='{"note": "hi"}')
    assert await remember.on_invoke_tool(ctx, '{"note": "hi"}') == "ana:call_1:hi"
    assert calls == [(ctx, loop_thread)]
    assert await search_things.on_invoke_tool(make_ctx(AppState("bo")), '{"query": "q"}') == [
        "bo",
        "q",
    ]


async def test_sync_tool_receives_context_and_typed_values() -> None:
    @function_tool
    def order(ctx: RunContextWrapper[AppState], items: list[Item], rush: bool = False) -> str:
        assert all(isinstance(item, Item) for item in items)
        return f"{ctx.context.user}:{sum(i.qty for i in items)}:{rush}"

    ctx = make_ctx(AppState("cy"))
    out = await order.on_invoke_tool(ctx, '{"items": [{"name": "a", "qty": 2}, {"name": "b"}]}')
    assert out == "cy:3:False"


async def test_empty_arguments_mean_no_arguments() -> None:
    @function_tool
    def ping() -> str:
        return "pong"

    assert await ping.on_invoke_tool(make_ctx(), "") == "pong"
    assert await ping.on_invoke_tool(make_ctx(), "  ") == "pong"
    assert await ping.on_invoke_tool(make_ctx(), "{}") == "pong"


async def test_defaults_fill_missing_arguments() -> None:
    assert await get_weather.on_invoke_tool(make_ctx(), '{"city": "Rome"}') == "Rome:c"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ('{"city": ', "the arguments are not valid JSON (Expecting value at line 1 column 10)"),
        ("[1, 2]", "the arguments must be a JSON object, got an array"),
        ('"Paris"', "the arguments must be a JSON object, got a string"),
        ("{}", "city: missing required argument"),
        ('{"city": 3}', "city: Input should be a valid string (got 3)"),
        ('{"city": "x", "unit": "k"}', "unit: Input should be 'c' or 'f' (got \"k\")"),
        ('{"city": "x", "units": "c"}', "units: unexpected argument"),
    ],
)
async def test_bad_arguments_raise_tool_arguments_error(arguments: str, fragment: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        await get_weather.on_invoke_tool(make_ctx(), arguments)
    error = info.value
    assert isinstance(error, ModelBehaviorError)
    assert error.tool_name == "get_weather"
    assert fragment in error.message
    text = str(error)
    assert text.startswith("tool 'get_weather' was called with invalid arguments: ")
    assert fragment in text
    assert "\n" not in text


async def test_nested_validation_errors_name_the_path() -> None:
    @function_tool
    def order(items: list[Item]) -> None: ...

    with pytest.raises(ToolArgumentsError) as info:
        await order.on_invoke_tool(make_ctx(), '{"items": [{"name": "a"}, {"qty": "many"}]}')
    assert info.value.message == (
        "items[1].name: missing required field; "
        'items[1].qty: Input should be a valid integer, unable to parse string as an integer (got "many")'
    )


async def test_many_errors_are_summarised() -> None:
    @function_tool
    def wide(a: int, b: int, c: int, d: int, e: int, f: int, g: int) -> None: ...

    with pytest.raises(ToolArgumentsError) as info:
        await wide.on_invoke_tool(make_ctx(), "{}")
    assert info.value.message.endswith("e: missing required argument; and 2 more")


async def test_long_bad_values_are_truncated() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        await get_weather.on_invoke_tool(make_ctx(), json.dumps({"city": ["x" * 500]}))
    assert len(info.value.message) < 200
    assert "…" in info.value.message


async def test_exceptions_from_the_function_propagate_unchanged() -> None:
    class Boom(Exception):
        pass

    @function_tool
    def sync_fail() -> None:
        raise Boom("sync")

    @function_tool
    async def async_fail() -> None:
        raise Boom("async")

    with pytest.raises(Boom, match="sync"):
        await sync_fail.on_invoke_tool(make_ctx(), "")
    with pytest.raises(Boom, match="async"):
        await async_fail.on_invoke_tool(make_ctx(), "")


async def test_awkward_parameter_names_and_positional_only() -> None:
    @function_tool
    def odd(json: str, model_config: int, _hidden: bool, /, schema: str = "s") -> str:
        return f"{json}|{model_config}|{_hidden}|{schema}"

    assert set(odd.params_json_schema["properties"]) == {
        "json",
        "model_config",
        "_hidden",
        "schema",
    }
    out = await odd.on_invoke_tool(
        make_ctx(), '{"json": "j", "model_config": 1, "_hidden": true, "schema": "t"}'
    )
    assert out == "j|1|True|t"


async def test_keyword_only_parameters_and_context() -> None:
    @function_tool
    def kw(ctx: RunContextWrapper[Any], *, a: int) -> int:
        return a + (ctx.context or 0)

    assert await kw.on_invoke_tool(make_ctx(10), '{"a": 1}') == 11


async def test_types_defined_in_the_calling_function_resolve() -> None:
    class Local(BaseModel):
        v: int

    @function_tool
    def use_local(x: Local) -> int:
        return x.v

    @function_tool(strict_mode=False)
    def use_local_too(x: Local) -> int:
        return x.v + 1

    assert use_local.params_json_schema["$defs"]["Local"]["required"] == ["v"]
    assert await use_local.on_invoke_tool(make_ctx(), '{"x": {"v": 4}}') == 4
    assert await use_local_too.on_invoke_tool(make_ctx(), '{"x": {"v": 4}}') == 5


async def test_bound_methods_work() -> None:
    class Greeter:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        def greet(self, name: str) -> str:
            """Greet someone."""
            return f"{self.greeting} {name}"

    tool = function_tool(Greeter("hi").greet)
    assert tool.name == "greet"
    assert list(tool.params_json_schema["properties"]) == ["name"]
    assert await tool.on_invoke_tool(make_ctx(), '{"name": "al"}') == "hi al"


def test_missing_type_hint_is_a_user_error() -> None:
    def f(city, unit: str) -> None:  # type: ignore[no-untyped-def]
        ...

    with pytest.raises(UserError, match=r"function tool 'f': parameter 'city' has no type hint"):
        function_tool(f)


@pytest.mark.parametrize("which", ["args", "kwargs"])
def test_var_args_are_a_user_error(which: str) -> None:
    def with_args(a: int, *args: int) -> None: ...

    def with_kwargs(a: int, **kwargs: int) -> None: ...

    func, shown = (with_args, "*args") if which == "args" else (with_kwargs, "**kwargs")
    with pytest.raises(UserError) as info:
        function_tool(func)
    assert f"function tool {func.__name__!r}: parameter {shown} is not supported" in str(info.value)


def test_context_must_come_first() -> None:
    def f(query: str, ctx: RunContextWrapper[Any]) -> None: ...

    with pytest.raises(UserError, match="the context parameter 'ctx' must be the first"):
        function_tool(f)


def test_unresolvable_hint_is_a_user_error() -> None:
    def f(x: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(UserError, match="function tool 'f': cannot resolve its type hints"):
        function_tool(f)


def test_type_pydantic_cannot_describe_is_a_user_error() -> None:
    class Opaque:
        pass

    def f(ok: int, thing: Opaque) -> None: ...

    with pytest.raises(UserError, match="function tool 'f': parameter 'thing' has a type"):
        function_tool(f)


@pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="pydantic accepts typing.TypedDict on 3.12+"
)
def test_typing_typeddict_on_old_python_is_a_user_error() -> None:
    class Plain(typing.TypedDict):
        a: int

    def f(p: Plain) -> None: ...

    with pytest.raises(UserError, match="parameter 'p' has a type pydantic cannot describe"):
        function_tool(f)


def test_invalid_tool_names_are_rejected() -> None:
    with pytest.raises(UserError, match=r"tool name '<lambda>' .* is not valid"):
        function_tool(lambda: None)
    with pytest.raises(UserError, match="tool name 'has space'"):
        function_tool(name_override="has space")(get_weather.on_invoke_tool.function)  # type: ignore[attr-defined]


def test_non_callable_is_a_user_error() -> None:
    with pytest.raises(UserError, match="needs a function, got int"):
        function_tool(3)  # type: ignore[call-overload]


def test_importing_the_module_does_not_import_openai_or_pydantic() -> None:
    code = (
        "import sys, threadline.tools.function_tool; "
        "print(sorted(m for m in ('openai', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


async def test_unsubscripted_context_annotation_is_recognised() -> None:
    @function_tool
    def who(context: ToolContext, n: int) -> str:  # type: ignore[type-arg]
        return f"{context.tool_name}:{n}"

    assert list(who.params_json_schema["properties"]) == ["n"]
    assert await who.on_invoke_tool(make_ctx(name="who"), '{"n": 1}') == "who:1"
