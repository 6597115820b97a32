"""The parameters schema @function_tool builds for each family of types, strict and not."""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any, Literal, Optional, Union

import pytest
from pydantic import BaseModel, Field
from typing_extensions import NotRequired, TypedDict

from threadline.errors import UserError
from threadline.tools.base import FunctionTool
from threadline.tools.function_tool import function_tool


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: int
    label: NotRequired[str]


class Address(BaseModel):
    """A postal address."""

    street: str
    zip: str | None = None


@dataclasses.dataclass
class Window:
    start: int
    end: int = 10


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Loose(BaseModel, extra="allow"):
    name: str


def schema(func: Any, strict: bool = True) -> dict[str, Any]:
    tool: FunctionTool = function_tool(func, strict_mode=strict)
    return tool.params_json_schema


def obj(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }


def test_scalars() -> None:
    def f(s: str, i: int, x: float, b: bool) -> None: ...

    expected = obj(
        {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
        },
        ["s", "i", "x", "b"],
    )
    assert schema(f) == expected
    assert schema(f, strict=False) == expected


def test_optional_and_defaults() -> None:
    def f(a: Optional[int] = None, b: str | None = "x", c: int = 3) -> None: ...  # noqa: UP045

    nullable_int = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    nullable_str = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert schema(f) == obj(
        {
            "a": nullable_int,
            "b": {**nullable_str, "description": 'Default: "x".'},
            "c": {"type": "integer", "description": "Default: 3."},
        },
        ["a", "b", "c"],
    )
    assert schema(f, strict=False) == {  # pydantic leaves out an empty "required"
        "type": "object",
        "properties": {
            "a": {**nullable_int, "default": None},
            "b": {**nullable_str, "default": "x"},
            "c": {"type": "integer", "default": 3},
        },
        "additionalProperties": False,
    }


def test_literal_and_union() -> None:
    def f(unit: Literal["c", "f"], v: Union[int, str]) -> None: ...  # noqa: UP007

    assert schema(f) == obj(
        {
            "unit": {"enum": ["c", "f"], "type": "string"},
            "v": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
        ["unit", "v"],
    )


def test_enum_uses_defs_and_inlines_when_described() -> None:
    def f(color: Color, shade: Color = Color.BLUE) -> None:
        """Paint.

        Args:
            shade: Which shade.
        """

    color_def = {"enum": ["red", "blue"], "type": "string"}
    assert schema(f) == obj(
        {
            "color": {"$ref": "#/$defs/Color"},
            "shade": {**color_def, "description": 'Which shade. Default: "blue".'},
        },
        ["color", "shade"],
        **{"$defs": {"Color": color_def}},
    )
    assert schema(f, strict=False)["properties"]["shade"] == {
        "$ref": "#/$defs/Color",
        "default": "blue",
        "description": "Which shade.",
    }


def test_list_and_dict() -> None:
    def f(xs: list[int], m: dict[str, int]) -> None: ...

    assert schema(f, strict=False) == obj(
        {
            "xs": {"type": "array", "items": {"type": "integer"}},
            "m": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        ["xs", "m"],
    )

    def g(xs: list[str]) -> None: ...

    assert schema(g) == obj({"xs": {"type": "array", "items": {"type": "string"}}}, ["xs"])


def test_dict_cannot_be_strict() -> None:
    def f(m: dict[str, int]) -> None: ...

    with pytest.raises(UserError, match=r"function tool 'f': parameter 'm' cannot be used") as info:
        function_tool(f)
    assert "strict_mode=False" in str(info.value)


def test_typed_dict_model_and_dataclass() -> None:
    def f(p: Point, a: Address, w: Window) -> None: ...

    defs = {
        "Point": obj({"x": {"type": "integer"}, "label": {"type": "string"}}, ["x", "label"]),
        "Address": obj(
            {
                "street": {"type": "string"},
                "zip": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            ["street", "zip"],
            description="A postal address.",
        ),
        "Window": obj(
            {
                "start": {"type": "integer"},
                "end": {"type": "integer", "description": "Default: 10."},
            },
            ["start", "end"],
        ),
    }
    assert schema(f) == obj(
        {
            "p": {"$ref": "#/$defs/Point"},
            "a": {"$ref": "#/$defs/Address"},
            "w": {"$ref": "#/$defs/Window"},
        },
        ["p", "a", "w"],
        **{"$defs": defs},
    )
    loose = schema(f, strict=False)["$defs"]
    assert loose["Point"]["required"] == ["x"]
    assert loose["Address"]["required"] == ["street"]
    assert loose["Window"]["properties"]["end"] == {"type": "integer", "default": 10}


def test_recursive_model() -> None:
    def f(tree: Node) -> None: ...

    assert schema(f) == obj(
        {"tree": {"$ref": "#/$defs/Node"}},
        ["tree"],
        **{
            "$defs": {
                "Node": obj(
                    {
                        "name": {"type": "string"},
                        "children": {
                            "type": "array",
                            "items": {"$ref": "#/$defs/Node"},
                            "description": "Default: [].",
                        },
                    },
                    ["name", "children"],
                )
            }
        },
    )


def test_model_with_extra_allow_cannot_be_strict() -> None:
    def f(item: Loose) -> None: ...

    with pytest.raises(UserError, match=r"the schema at #/\$defs/Loose cannot be used"):
        function_tool(f)
    assert schema(f, strict=False)["$defs"]["Loose"]["additionalProperties"] is True


def test_any_cannot_be_strict() -> None:
    def f(value: Any) -> None: ...

    with pytest.raises(UserError, match=r"parameter 'value'.*accepts any value"):
        function_tool(f)
    assert schema(f, strict=False) == {
        "type": "object",
        "properties": {"value": {}},
        "required": ["value"],
        "additionalProperties": False,
    }


def test_annotated_field_constraints_and_description() -> None:
    def f(n: Annotated[int, Field(ge=1, description="How many.")] = 2) -> None:
        """Count.

        Args:
            n: Docstring text loses to the Field description.
        """

    assert schema(f)["properties"]["n"] == {
        "type": "integer",
        "minimum": 1,
        "description": "How many. Default: 2.",
    }


def test_field_as_default() -> None:
    def f(n: int = Field(5, le=9, description="Upper.")) -> None: ...

    assert schema(f, strict=False)["properties"]["n"] == {
        "type": "integer",
        "maximum": 9,
        "default": 5,
        "description": "Upper.",
    }


def test_context_only_tool_has_empty_object_schema() -> None:
    def f() -> None: ...

    assert schema(f) == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }
