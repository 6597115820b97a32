"""JSON schemas for tools: built from parameters with pydantic, made strict for OpenAI.

:func:`arguments_model` turns a function's parameters into a pydantic model and its JSON schema.

:func:`ensure_strict_json_schema` rewrites a JSON schema (as pydantic produces it) into the
subset that strict function calling and strict structured outputs accept:

* every object has ``"additionalProperties": false`` and lists *all* of its properties in
  ``"required"``. Optional values are expressed by a type that admits ``null``, never by leaving
  a key out;
* ``default`` is removed, because in strict mode the model always sends every key. A non-null
  default is moved into the property's description (``"Default: 3."``) so the model knows which
  value to send when it has no better idea; the Python default still applies whenever a key is
  missing, for example with non-strict models;
* ``$ref`` with sibling keywords is replaced by the referenced definition merged with those
  siblings, a one-element ``allOf`` is merged into its parent, ``oneOf`` becomes ``anyOf`` and
  the OpenAPI ``discriminator`` keyword is dropped, as are ``unevaluatedProperties``,
  ``propertyNames`` and ``min/maxProperties`` on closed objects; ``$defs`` that are no longer
  referenced are removed. Other keywords (``minimum``, ``pattern``, ``prefixItems``...) are kept
  as they are.

Schemas that cannot be made strict raise :class:`~threadline.errors.UserError`: objects with
open-ended keys (``dict[str, X]``, ``extra="allow"`` models, ``patternProperties``) and values
that accept anything (``Any``).
"""

from __future__ import annotations

import copy
import inspect
import json
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

from threadline.errors import UserError

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "FieldSpec",
    "StrictSchemaError",
    "arguments_model",
    "ensure_strict_json_schema",
    "strip_titles",
]

FieldSpec = tuple[Any, Any, "str | None"]
"""A tool parameter as (annotation, default or ``inspect.Parameter.empty``, description)."""

_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_SINGLES = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "additionalItems",
)
# Keywords that make a schema accept something specific; a schema with none of them accepts any
# JSON value, which strict mode cannot express.
_CONSTRAINING = {
    "type",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "enum",
    "const",
    "not",
    "properties",
    "items",
    "prefixItems",
}


class StrictSchemaError(UserError):
    """A schema cannot be made strict; ``path`` locates the offending subschema."""

    def __init__(self, path: tuple[str, ...], reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"cannot make the JSON schema strict at {pointer(path)}: {reason}; change the type "
            "or turn strict mode off"
        )


def pointer(path: tuple[str, ...]) -> str:
    """A JSON-pointer style fragment for ``path`` (``#/properties/city``)."""
    return "#/" + "/".join(path) if path else "#"


def ensure_strict_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a strict copy of ``schema`` (the input is not modified).

    See the module docstring for the rules. The root is not required to be an object; callers
    that need one (OpenAI does) wrap other types themselves. Raises
    :class:`~threadline.errors.UserError` (:class:`StrictSchemaError`) naming the location of
    the first part that cannot be made strict.
    """
    if not isinstance(schema, dict):
        raise UserError(f"a JSON schema must be a dict, got {type(schema).__name__}")
    root = copy.deepcopy(schema)
    result: dict[str, Any] = _prune_defs(_Strictifier(root).visit(root, ()))
    return result


def strip_titles(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``schema`` without ``title`` keywords (a property named "title" stays).

    pydantic titles every model and field; the model gains nothing from them but tokens.
    """

    def visit(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = {key: value for key, value in node.items() if key != "title"}
        for key, sub in _subschemas(out):
            _replace(out, key, visit(sub))
        return out

    result: dict[str, Any] = visit(copy.deepcopy(schema))
    return result


def _subschemas(node: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield ``(relative path, subschema)`` for every schema directly nested in ``node``."""
    for key in _SCHEMA_MAPS:
        mapping = node.get(key)
        if isinstance(mapping, dict):
            for name, sub in mapping.items():
                yield (key, name), sub
    for key in _SCHEMA_LISTS:
        items = node.get(key)
        if isinstance(items, list):
            for index, sub in enumerate(items):
                yield (key, str(index)), sub
    for key in _SCHEMA_SINGLES:
        sub = node.get(key)
        if isinstance(sub, list):  # draft-4 tuple form of "items"
            for index, item in enumerate(sub):
                yield (key, str(index)), item
        elif isinstance(sub, dict):
            yield (key,), sub


def _replace(node: dict[str, Any], rel: tuple[str, ...], value: Any) -> None:
    if len(rel) == 1:
        node[rel[0]] = value
    elif isinstance(node[rel[0]], list):
        node[rel[0]][int(rel[1])] = value
    else:
        node[rel[0]][rel[1]] = value


class _Strictifier:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def visit(self, node: Any, path: tuple[str, ...]) -> Any:
        if node is True:
            raise StrictSchemaError(path, "it accepts any value")
        if not isinstance(node, dict):
            return node
        node = self._flatten(node, path)
        self._move_default(node)
        if "oneOf" in node:
            node["anyOf"] = node.get("anyOf", []) + node.pop("oneOf")
        node.pop("discriminator", None)
        types = node.get("type")
        if (
            types == "object"
            or "properties" in node
            or (isinstance(types, list) and "object" in types)
        ):
            self._close_object(node, path)
        if not _CONSTRAINING & node.keys():
            raise StrictSchemaError(path, "it accepts any value (a parameter or field typed Any?)")
        for rel, sub in list(_subschemas(node)):
            _replace(node, rel, self.visit(sub, path + rel))
        return node

    def _flatten(self, node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        """Inline ``$ref`` that has siblings and merge a one-element ``allOf``, repeatedly."""
        for _ in range(64):  # a chain of references longer than this is a cycle
            ref = node.get("$ref")
            if isinstance(ref, str) and len(node) > 1:
                siblings = {key: value for key, value in node.items() if key != "$ref"}
                node = {**copy.deepcopy(self._resolve(ref, path)), **siblings}
                continue
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
                rest = {key: value for key, value in node.items() if key != "allOf"}
                node = {**all_of[0], **rest}
                continue
            return node
        raise StrictSchemaError(path, "its $ref chain does not end")

    def _resolve(self, ref: str, path: tuple[str, ...]) -> dict[str, Any]:
        if not ref.startswith("#/"):
            raise StrictSchemaError(path, f"the reference {ref!r} is not local to the schema")
        target: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise StrictSchemaError(path, f"the reference {ref!r} does not resolve")
            target = target[part]
        if not isinstance(target, dict):
            raise StrictSchemaError(path, f"the reference {ref!r} is not a schema object")
        return target

    @staticmethod
    def _move_default(node: dict[str, Any]) -> None:
        if "default" not in node:
            return
        default = node.pop("default")
        if default is None:
            return  # a nullable type already tells the model it may send null
        note = f"Default: {json.dumps(default, ensure_ascii=False, default=str)}."
        description = str(node.get("description") or "").rstrip()
        if description and not description.endswith((".", "!", "?")):
            description += "."
        node["description"] = f"{description} {note}" if description else note

    @staticmethod
    def _close_object(node: dict[str, Any], path: tuple[str, ...]) -> None:
        extra = node.get("additionalProperties", False)
        if extra is not False or "patternProperties" in node:
            raise StrictSchemaError(
                path,
                "the object accepts arbitrary keys (a dict[str, ...] or a model with "
                "extra='allow'); use a TypedDict, dataclass or pydantic model with fixed fields",
            )
        for keyword in (
            "unevaluatedProperties",
            "propertyNames",
            "minProperties",
            "maxProperties",
        ):
            node.pop(keyword, None)
        node["additionalProperties"] = False
        properties = node.get("properties")
        if isinstance(properties, dict):
            node["required"] = list(properties)


def _prune_defs(schema: Any) -> Any:
    """Drop ``$defs``/``definitions`` entries that nothing references any more."""
    if not isinstance(schema, dict):
        return schema
    tables = [key for key in ("$defs", "definitions") if isinstance(schema.get(key), dict)]
    if not tables:
        return schema
    body = {key: value for key, value in schema.items() if key not in tables}
    reached: set[str] = set()
    pending = _refs(body)
    while pending:
        ref = pending.pop()
        if ref in reached:
            continue
        reached.add(ref)
        for table in tables:
            prefix = f"#/{table}/"
            name = ref[len(prefix) :] if ref.startswith(prefix) else None
            if name is not None and name in schema[table]:
                pending |= _refs(schema[table][name])
    for table in tables:
        kept = {name: sub for name, sub in schema[table].items() if f"#/{table}/{name}" in reached}
        if kept:
            schema[table] = kept
        else:
            del schema[table]
    return schema


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def arguments_model(
    func_name: str, fields: dict[str, FieldSpec]
) -> tuple[type[BaseModel], dict[str, Any]]:
    """A pydantic model with one field per parameter of ``func_name``, and its JSON schema.

    Fields are named ``p0, p1...`` and aliased to the parameter names, so that any parameter
    name works, even one that clashes with a ``BaseModel`` attribute or starts with ``_``.
    """
    from pydantic import ConfigDict, Field, PydanticUserError, create_model
    from pydantic.fields import FieldInfo
    from pydantic_core import PydanticUndefined

    definitions: dict[str, Any] = {}
    for index, (param_name, (annotation, default, description)) in enumerate(fields.items()):
        if isinstance(default, FieldInfo):  # def f(x: int = Field(3, ge=0))
            annotation = Annotated[annotation, default]
            default = PydanticUndefined
        elif default is inspect.Parameter.empty:
            default = PydanticUndefined
        if description and not _has_own_description(annotation):
            field = Field(default, alias=param_name, description=description)
        else:  # passing description=None would erase one given in Annotated[..., Field()]
            field = Field(default, alias=param_name)
        definitions[f"p{index}"] = (annotation, field)
    try:
        model: type[BaseModel] = create_model(
            f"{func_name}_arguments", __config__=ConfigDict(extra="forbid"), **definitions
        )
        schema = model.model_json_schema()
    except (PydanticUserError, TypeError) as exc:
        culprit = _unsupported_parameter(fields)
        where = f"parameter {culprit!r}" if culprit else "a parameter"
        reason = str(exc).splitlines()[0]
        raise UserError(
            f"function tool {func_name!r}: {where} has a type pydantic cannot describe as JSON "
            f"schema ({reason}); use JSON-friendly types (str, int, list, TypedDict, models...)"
        ) from exc
    return model, schema


def _has_own_description(annotation: Any) -> bool:
    from pydantic.fields import FieldInfo

    if typing.get_origin(annotation) is not Annotated:
        return False
    return any(isinstance(meta, FieldInfo) and meta.description for meta in annotation.__metadata__)


def _unsupported_parameter(fields: dict[str, FieldSpec]) -> str | None:
    """Name the first parameter whose type alone cannot be made into a JSON schema."""
    from pydantic import TypeAdapter

    for name, (annotation, _default, _description) in fields.items():
        try:
            TypeAdapter(annotation).json_schema()
        except Exception:
            return name
    return None
