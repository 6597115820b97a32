"""Models written against the OpenAI Agents SDK's ``Model`` interface, used as they are.

An SDK-style model's ``get_response`` takes positional arguments — ``(system_instructions,
input, model_settings, tools, output_schema, handoffs, tracing, *, previous_response_id,
conversation_id, prompt)`` — and returns an object with ``output`` (Responses output items,
pydantic models or dicts), ``usage`` and ``response_id``; its ``stream_response`` yields
Responses stream events. :func:`adapt_model` recognises such a model (by that signature, or as a
subclass of ``agents.models.interface.Model``) and wraps it in :class:`SDKModelAdapter`, which
speaks threadline's :class:`~threadline.models.base.Model` protocol; the runner does this for
every model it is given, so a custom model ports unchanged.

What the wrapped model is handed: ``input`` as a list of Responses items; ``model_settings``
as the SDK's ``ModelSettings`` when the SDK is imported in the process, else threadline's
:class:`~threadline.models.settings.ModelSettings` (the same field names for the settings both
have); ``tools`` and ``handoffs`` as objects with the SDK's attribute names (``name``,
``description``, ``params_json_schema``, ``strict_json_schema``; ``tool_name``,
``tool_description``, ``input_json_schema``, ``strict_json_schema``); ``output_schema`` with
the SDK's methods (``name()``, ``json_schema()``, ``is_strict_json_schema()``,
``is_plain_text()``); ``tracing`` as :attr:`ModelTracing.DISABLED` (threadline records the
model span itself); ``prompt`` as ``None``.
"""

from __future__ import annotations

import enum
import functools
import inspect
import sys
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from threadline.errors import ModelBehaviorError
from threadline.items import Item
from threadline.models._read import Malformed
from threadline.models._responses_read import ResponsesStream, _output_item
from threadline.models.base import (
    Model,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    OutputSchema,
    ResponseCompleted,
    ToolSpec,
)
from threadline.models.settings import ModelSettings
from threadline.usage import Usage

__all__ = ["ModelTracing", "SDKModelAdapter", "adapt_model", "is_sdk_style_model"]

_SDK_FIRST = "system_instructions"


class ModelTracing(enum.Enum):
    """The tracing flag an SDK-style model receives (the SDK's enum, same values)."""

    DISABLED = 0
    ENABLED = 1
    ENABLED_WITHOUT_DATA = 2

    def is_disabled(self) -> bool:
        """Whether tracing is off."""
        return self is ModelTracing.DISABLED

    def include_data(self) -> bool:
        """Whether traced spans may hold inputs and outputs."""
        return self is ModelTracing.ENABLED


def is_sdk_style_model(model: object) -> bool:
    """Whether ``model`` speaks the SDK's interface rather than threadline's.

    True for a subclass of ``agents.models.interface.Model`` (when the SDK is imported), and
    for any object whose ``get_response`` names ``system_instructions`` first or takes the
    SDK's seven positional arguments.
    """
    if isinstance(model, SDKModelAdapter):
        return False
    interface = sys.modules.get("agents.models.interface")
    sdk_model = getattr(interface, "Model", None)
    if isinstance(sdk_model, type) and isinstance(model, sdk_model):
        return True
    if "get_response" in getattr(model, "__dict__", {}):  # set on the instance: look each time
        return _sdk_signature(getattr(model, "get_response", None))
    return _sdk_style_class(cast(Hashable, type(model)))


@functools.lru_cache(maxsize=256)
def _sdk_style_class(cls: Hashable) -> bool:
    """Whether instances of ``cls`` have an SDK-style ``get_response``, decided once per class
    (the runner asks on every model call)."""
    raw = inspect.getattr_static(cls, "get_response", None)
    method = getattr(cls, "get_response", None)
    # a plain function on the class still takes ``self``; static and class methods do not
    return _sdk_signature(method, skip_self=inspect.isfunction(raw))


def _sdk_signature(method: object, *, skip_self: bool = False) -> bool:
    """Whether ``method`` takes the SDK's positional arguments."""
    if not callable(method):
        return False
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if skip_self:
        positional = positional[1:]
    return bool(positional) and (positional[0].name == _SDK_FIRST or len(positional) >= 7)


def adapt_model(model: Any) -> Model:
    """``model`` wrapped in an :class:`SDKModelAdapter` when it is SDK-style, else unchanged."""
    return SDKModelAdapter(model) if is_sdk_style_model(model) else cast(Model, model)


@dataclass(frozen=True)
class _ToolView:
    """A function tool under the SDK's attribute names."""

    name: str
    description: str
    params_json_schema: dict[str, Any]
    strict_json_schema: bool


@dataclass(frozen=True)
class _HandoffView:
    """A handoff under the SDK's attribute names."""

    tool_name: str
    tool_description: str
    input_json_schema: dict[str, Any]
    strict_json_schema: bool


class _OutputSchemaView:
    """An output schema with the SDK's ``AgentOutputSchemaBase`` methods."""

    def __init__(self, schema: OutputSchema) -> None:
        self._schema = schema

    def is_plain_text(self) -> bool:
        """Always false: plain text has no schema."""
        return False

    def name(self) -> str:
        """The schema's name."""
        return self._schema.name

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema the answer must follow."""
        return self._schema.json_schema

    def is_strict_json_schema(self) -> bool:
        """Whether the schema is strict."""
        return self._schema.strict


def _sdk_settings(settings: ModelSettings) -> Any:
    """The SDK's ``ModelSettings`` for ``settings`` when the SDK is imported, else ``settings``."""
    module = sys.modules.get("agents.model_settings")
    sdk_class = getattr(module, "ModelSettings", None)
    if sdk_class is None:
        return settings
    fields = getattr(sdk_class, "__dataclass_fields__", {})
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name in settings.__dataclass_fields__:
        value = getattr(settings, name)
        if value is None:
            continue
        if name in fields:
            values[name] = value
        else:
            extra[name] = value  # stop, seed: not SDK settings; passed on as extra_args
    if extra and "extra_args" in fields:
        values["extra_args"] = extra
    return sdk_class(**values)


def _split(tools: Sequence[ToolSpec]) -> tuple[list[Any], list[Any]]:
    functions: list[Any] = []
    handoffs: list[Any] = []
    for spec in tools:
        if spec.handoff:
            handoffs.append(_HandoffView(spec.name, spec.description, spec.parameters, spec.strict))
        else:
            functions.append(_ToolView(spec.name, spec.description, spec.parameters, spec.strict))
    return functions, handoffs


def _usage(value: object) -> Usage:
    def count(name: str) -> int:
        number = getattr(value, name, None)
        if number is None and isinstance(value, Mapping):
            number = value.get(name)
        return number if isinstance(number, int) and not isinstance(number, bool) else 0

    requests = count("requests") or 1
    input_tokens, output_tokens = count("input_tokens"), count("output_tokens")
    total = count("total_tokens") or input_tokens + output_tokens
    return Usage(
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total,
    )


class SDKModelAdapter:
    """Threadline's :class:`~threadline.models.base.Model` over an SDK-style model.

    ``model`` is the wrapped object; ``model.model`` (its name, when it has one) names it in
    traces and errors.
    """

    def __init__(self, model: Any) -> None:
        self.wrapped = model
        self.model = str(getattr(model, "model", None) or type(model).__name__)
        # a custom model that keeps responses on the server says so (auto_previous_response_id)
        self.supports_previous_response_id = bool(
            getattr(model, "supports_previous_response_id", False)
        )

    def __repr__(self) -> str:
        return f"SDKModelAdapter({self.wrapped!r})"

    def _arguments(self, request: ModelRequest) -> tuple[tuple[Any, ...], dict[str, Any]]:
        tools, handoffs = _split(request.tools)
        schema = request.output_schema
        args = (
            request.instructions,
            [dict(item) for item in request.input],
            _sdk_settings(request.settings),
            tools,
            None if schema is None else _OutputSchemaView(schema),
            handoffs,
            _tracing_flag(),
        )
        kwargs = {
            "previous_response_id": request.previous_response_id,
            "conversation_id": request.conversation_id,
            "prompt": None,
        }
        return args, kwargs

    def _malformed(self, what: str) -> ModelBehaviorError:
        return ModelBehaviorError(
            f"model {self.model!r} ({type(self.wrapped).__name__}) returned {what}; an SDK-style "
            "model must return a ModelResponse with output items in the Responses format"
        )

    def _read(self, answer: object) -> ModelResponse:
        output = getattr(answer, "output", None)
        if not isinstance(output, list):
            raise self._malformed(f"{type(answer).__name__} without an 'output' list")
        items: list[Item] = []
        try:
            for index, item in enumerate(output):
                items.append(_output_item(item, index))
        except Malformed as exc:
            raise self._malformed(f"an unusable answer ({exc})") from exc
        response_id = getattr(answer, "response_id", None)
        return ModelResponse(
            output=items,
            usage=_usage(getattr(answer, "usage", None)),
            response_id=response_id if isinstance(response_id, str) else None,
            raw=answer,
        )

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        """Call the wrapped model's ``get_response`` and read its answer."""
        args, kwargs = self._arguments(request)
        answer = self.wrapped.get_response(*args, **kwargs)
        if inspect.isawaitable(answer):
            answer = await answer
        return self._read(answer)

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream the wrapped model's Responses events: text deltas, then the response."""
        args, kwargs = self._arguments(request)
        events = self.wrapped.stream_response(*args, **kwargs)
        if inspect.isawaitable(events):
            events = await events
        state = ResponsesStream(self.model, f"the model {type(self.wrapped).__name__}")
        try:
            async for event in events:
                delta = state.add(event)
                if delta is not None:
                    yield delta
        except Malformed as exc:
            raise self._malformed(f"an unusable stream event ({exc})") from exc
        if state.final is None:
            raise self._malformed("a stream that ended without a response.completed event")
        yield ResponseCompleted(response=state.final)


def _tracing_flag() -> Any:
    """``DISABLED`` as the SDK's own enum when it is imported (its models compare to it)."""
    interface = sys.modules.get("agents.models.interface")
    sdk_enum = getattr(interface, "ModelTracing", None)
    return ModelTracing.DISABLED if sdk_enum is None else sdk_enum.DISABLED
