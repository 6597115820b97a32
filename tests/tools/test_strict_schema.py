"""ensure_strict_json_schema: the rules OpenAI strict mode needs, on hand-written schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from threadline.errors import UserError
from threadline.tools._schema import StrictSchemaError, ensure_strict_json_schema, strip_titles


def test_objects_are_closed_and_every_property_required() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "object", "properties": {"c": {"type": "integer"}}, "required": []},
        },
        "required": ["a"],
    }
    original = copy.deepcopy(schema)
    assert ensure_strict_json_schema(schema) == {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {
                "type": "object",
                "properties": {"c": {"type": "integer"}},
                "required": ["c"],
                "additionalProperties": False,
            },
        },
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    assert schema == original  # the input is left alone


def test_defaults_are_removed_and_named_in_the_description() -> None:
    schema = {
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "default": 10, "description": "How many"},
            "sort": {"type": "string", "default": "asc"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
    }
    strict = ensure_strict_json_schema(schema)
    assert strict["properties"] == {
        "limit": {"type": "integer", "description": "How many. Default: 10."},
        "sort": {"type": "string", "description": 'Default: "asc".'},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    }
    assert strict["required"] == ["limit", "sort", "note"]


def test_ref_with_siblings_is_inlined_and_unused_defs_pruned() -> None:
    schema = {
        "type": "object",
        "properties": {
            "color": {"$ref": "#/$defs/Color", "description": "Paint colour", "default": "red"},
        },
        "$defs": {"Color": {"type": "string", "enum": ["red", "blue"], "description": "A hue"}},
    }
    assert ensure_strict_json_schema(schema) == {
        "type": "object",
        "properties": {
            "color": {
                "type": "string",
                "enum": ["red", "blue"],
                "description": 'Paint colour. Default: "red".',
            }
        },
        "required": ["color"],
        "additionalProperties": False,
    }


def test_plain_refs_and_their_defs_are_kept_and_made_strict() -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/Item"}},
            },
            "Unused": {"type": "string"},
        },
    }
    strict = ensure_strict_json_schema(schema)
    assert strict["properties"]["items"] == {"type": "array", "items": {"$ref": "#/$defs/Item"}}
    assert strict["$defs"] == {
        "Item": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/Item"}},
            "required": ["name", "child"],
            "additionalProperties": False,
        }
    }


def test_single_all_of_is_merged_one_of_becomes_any_of() -> None:
    schema = {
        "type": "object",
        "properties": {
            "wrapped": {"allOf": [{"type": "integer"}], "description": "n"},
            "pet": {
                "oneOf": [
                    {"type": "object", "properties": {"kind": {"const": "cat"}}},
                    {"type": "object", "properties": {"kind": {"const": "dog"}}},
                ],
                "discriminator": {"propertyName": "kind"},
            },
        },
    }
    strict = ensure_strict_json_schema(schema)
    assert strict["properties"]["wrapped"] == {"type": "integer", "description": "n"}
    pet = strict["properties"]["pet"]
    assert set(pet) == {"anyOf"}
    assert pet["anyOf"][1] == {
        "type": "object",
        "properties": {"kind": {"const": "dog"}},
        "required": ["kind"],
        "additionalProperties": False,
    }


def test_nullable_object_type_list_is_closed() -> None:
    schema = {"type": ["object", "null"], "properties": {"x": {"type": "number"}}}
    strict = ensure_strict_json_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["required"] == ["x"]


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        (
            {
                "type": "object",
                "properties": {"d": {"type": "object", "additionalProperties": True}},
            },
            "#/properties/d",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "d": {"type": "object", "additionalProperties": {"type": "integer"}}
                },
            },
            "#/properties/d",
        ),
        (
            {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
            "#",
        ),
        ({"type": "object", "properties": {"anything": {}}}, "#/properties/anything"),
        (
            {"type": "object", "properties": {"xs": {"type": "array", "items": {"title": "X"}}}},
            "#/properties/xs/items",
        ),
        (
            {"type": "object", "properties": {"r": {"$ref": "#/$defs/Nope", "description": "x"}}},
            "#/properties/r",
        ),
        (
            {"type": "object", "properties": {"r": {"$ref": "http://x/y", "description": "x"}}},
            "#/properties/r",
        ),
    ],
)
def test_schemas_that_cannot_be_strict_raise_user_error(schema: dict[str, Any], where: str) -> None:
    with pytest.raises(UserError, match="cannot make the JSON schema strict") as info:
        ensure_strict_json_schema(schema)
    assert isinstance(info.value, StrictSchemaError)
    assert f"at {where}:" in str(info.value)
    assert "\n" not in str(info.value)


def test_non_dict_schema_is_rejected() -> None:
    with pytest.raises(UserError, match="must be a dict"):
        ensure_strict_json_schema([])  # type: ignore[arg-type]


def test_strip_titles_keeps_a_property_named_title() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {"title": {"title": "Title", "type": "string"}},
        "$defs": {"M": {"title": "M", "type": "object", "properties": {}}},
    }
    assert strip_titles(schema) == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "$defs": {"M": {"type": "object", "properties": {}}},
    }
    assert schema["title"] == "Args"
