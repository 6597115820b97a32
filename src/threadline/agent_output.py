"""Structured final output: the JSON schema sent to the model and validation of its answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import ModelBehaviorError, UserError
from .models.base import OutputSchema

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = ["AgentOutputSchema"]

_WRAPPER_KEY = "response"


@dataclass
class AgentOutputSchema:
    """The output type of an agent, as a strict JSON schema and a validator.

    Types whose schema is not a JSON object (``int``, ``list[str]``…) are wrapped as
    ``{"response": <value>}`` because structured outputs need an object at the root; the
    wrapper is removed again when validating.
    """

    output_type: Any
    strict: bool = True

    @cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        from pydantic import TypeAdapter

        return TypeAdapter(self.output_type)

    @cached_property
    def _wrapped(self) -> bool:
        schema = self._adapter.json_schema()
        return schema.get("type") != "object"

    @cached_property
    def output_schema(self) -> OutputSchema:
        """The schema to send to the model."""
        from .tools._schema import ensure_strict_json_schema

        try:
            schema = self._adapter.json_schema()
        except Exception as exc:
            raise UserError(
                f"output_type {self.output_type!r} has no JSON schema ({exc}); use a pydantic "
                "model, a dataclass, a TypedDict or a plain JSON type"
            ) from exc
        if self._wrapped:
            defs = schema.pop("$defs", None)
            schema = {
                "type": "object",
                "properties": {_WRAPPER_KEY: schema},
                "required": [_WRAPPER_KEY],
                "additionalProperties": False,
            }
            if defs:
                schema["$defs"] = defs  # references are "#/$defs/...": keep them at the root
        if self.strict:
            schema = ensure_strict_json_schema(schema)
        name = getattr(self.output_type, "__name__", "final_output")
        return OutputSchema(name=str(name), json_schema=schema, strict=self.strict)

    def validate_json(self, text: str) -> Any:
        """Parse and validate the model's final answer, or raise :class:`ModelBehaviorError`."""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelBehaviorError(
                f"the model's final output is not valid JSON for {self.output_schema.name}: {exc}"
            ) from exc
        if self._wrapped:
            if not isinstance(value, dict) or _WRAPPER_KEY not in value:
                raise ModelBehaviorError(
                    f"the model's final output lacks the {_WRAPPER_KEY!r} key: {text[:80]!r}"
                )
            value = value[_WRAPPER_KEY]
        from pydantic import ValidationError

        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            raise ModelBehaviorError(
                f"the model's final output does not match {self.output_schema.name}: "
                f"{exc.errors()[0].get('msg', exc)} at {exc.errors()[0].get('loc', ())}"
            ) from exc
