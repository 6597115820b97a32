"""An in-process model that answers from a script: for tests, examples and benchmarks.

Each call consumes one step. A step is a string (an assistant message), a list of output
items, a :class:`~threadline.models.base.ModelResponse`, an exception to raise, or a function
of the :class:`~threadline.models.base.ModelRequest` returning one of those. When the script is
empty the ``responder`` (if any) is asked; otherwise the call fails loudly.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from ..items import Item, assistant_message, function_call, message_text
from ..models.base import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    ResponseCompleted,
    TextDelta,
)
from ..usage import Usage

__all__ = ["ScriptStep", "ScriptedModel", "call"]

ScriptStep = str | list[Item] | ModelResponse | BaseException | Callable[[ModelRequest], Any]


def call(
    name: str, arguments: dict[str, Any] | str | None = None, *, call_id: str | None = None
) -> Item:
    """A ``function_call`` output item; dict arguments are JSON-encoded, strings sent as-is."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return function_call(call_id or f"call_{uuid.uuid4().hex[:12]}", name, args)


def _item_tokens(item: Item) -> int:
    """A cheap usage estimate (about four characters a token): no serialising, so scripted
    runs on long histories stay fast enough to benchmark."""
    text = message_text(item) or str(item.get("arguments") or item.get("output") or "")
    return 4 + len(text) // 4


class ScriptedModel:
    """A :class:`~threadline.models.base.Model` driven by a queue of steps.

    ``requests`` records every :class:`ModelRequest` received, so tests can assert what the
    model was sent (history, instructions, tools).
    """

    def __init__(
        self,
        steps: Iterable[ScriptStep] = (),
        *,
        responder: Callable[[ModelRequest], Any] | None = None,
        model: str = "scripted",
    ) -> None:
        self.model = model
        self.steps: deque[ScriptStep] = deque(steps)
        self.responder = responder
        self.requests: list[ModelRequest] = []

    def add(self, *steps: ScriptStep) -> None:
        """Queue more steps."""
        self.steps.extend(steps)

    def _next(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if self.steps:
            step: Any = self.steps.popleft()
        elif self.responder is not None:
            step = self.responder
        else:
            raise AssertionError(
                f"ScriptedModel ran out of steps at request {len(self.requests)}; add more steps"
            )
        if callable(step) and not isinstance(step, BaseException):
            step = step(request)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, ModelResponse):
            return step
        output = (
            [assistant_message(step, item_id=f"msg_{uuid.uuid4().hex[:12]}")]
            if isinstance(step, str)
            else list(step)
        )
        sent = sum(_item_tokens(i) for i in request.input)
        produced = sum(_item_tokens(i) for i in output)
        return ModelResponse(
            output=output,
            usage=Usage(
                requests=1, input_tokens=sent, output_tokens=produced, total_tokens=sent + produced
            ),
            response_id=f"resp_{uuid.uuid4().hex[:12]}",
        )

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        """The next scripted response."""
        return self._next(request)

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """The next scripted response, its text streamed word by word."""
        response = self._next(request)
        for item in response.output:
            if item.get("type") == "message":
                for part in item.get("content", []):
                    text = part.get("text", "") if isinstance(part, dict) else ""
                    for piece in re.findall(r"\S+\s*|\s+", text):
                        yield TextDelta(delta=piece, item_id=item.get("id"))
        yield ResponseCompleted(response=response)
