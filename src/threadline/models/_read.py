"""Read the fields of a provider's answer without trusting their types.

The ``openai`` client builds its response objects without validating them: a field can be
missing, ``None`` or of any JSON type, and a nested object that was not a JSON object stays a
plain value. The converters read every field they use through these helpers, which either
return a value of the promised type or raise :class:`Malformed` describing the problem; the
model turns that into one :class:`~threadline.errors.ModelError` naming the URL.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypeGuard

__all__ = [
    "Malformed",
    "content_type",
    "describe",
    "field",
    "int_field",
    "is_model",
    "is_object",
    "list_field",
    "need_str",
    "object_field",
    "one_line",
    "str_field",
]


class Malformed(Exception):
    """An answer does not have the shape its API promises; the message says where and how."""


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, whitespace collapsed, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(value: object) -> str:
    """A short description of an unexpected value: its JSON type and a preview."""
    kinds = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    kind = "nothing" if value is None else kinds.get(type(value), f"a {type(value).__name__}")
    if isinstance(value, (list, tuple)):
        kind = "a list"
    preview = repr(value)
    preview = preview if len(preview) <= 60 else preview[:57] + "..."
    return kind if value is None else f"{kind} ({one_line(preview)})"


def is_model(value: object) -> TypeGuard[Any]:
    """Whether ``value`` is a pydantic model (the openai client's objects). pydantic is not
    imported for this: when it has not been imported, nothing can be one of its models."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def is_object(value: object) -> bool:
    """Whether ``value`` is a JSON object: a mapping, or an object the client built from one."""
    return isinstance(value, Mapping) or is_model(value)


def field(obj: object, name: str) -> object:
    """``obj[name]`` or ``obj.name``; ``None`` when absent or when ``obj`` is not an object."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    if is_model(obj):
        return getattr(obj, name, None)
    return None


def str_field(obj: object, name: str, where: str) -> str | None:
    """An optional string field: ``None`` when absent."""
    value = field(obj, name)
    if value is None or isinstance(value, str):
        return value
    raise Malformed(f"{where} needs a string {name!r}, got {describe(value)}")


def need_str(obj: object, name: str, where: str, *, nonempty: bool = False) -> str:
    """A string field that must be present (and not ``""`` when ``nonempty``)."""
    value = field(obj, name)
    if not isinstance(value, str) or (nonempty and not value):
        kind = "a non-empty string" if nonempty else "a string"
        raise Malformed(f"{where} needs {kind} {name!r}, got {describe(value)}")
    return value


def int_field(obj: object, name: str, where: str) -> int:
    """A whole-number field; ``0`` when absent."""
    value = field(obj, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{where} needs a whole number {name!r}, got {describe(value)}")
    return value


def list_field(obj: object, name: str, where: str, *, required: bool = False) -> list[Any]:
    """A list field; ``[]`` when absent unless ``required``."""
    value = field(obj, name)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where} needs a list {name!r}, got {describe(value)}")
    return value


def object_field(obj: object, name: str, where: str, *, required: bool = False) -> object:
    """An object field; ``None`` when absent unless ``required``."""
    value = field(obj, name)
    if value is None and not required:
        return None
    if not is_object(value):
        raise Malformed(f"{where} needs an object {name!r}, got {describe(value)}")
    return value


def content_type(stream: object) -> str | None:
    """The ``Content-Type`` an ``openai`` stream's HTTP response declared, when it is known."""
    headers = getattr(getattr(stream, "response", None), "headers", None)
    value = headers.get("content-type") if headers is not None else None
    return value if isinstance(value, str) else None
