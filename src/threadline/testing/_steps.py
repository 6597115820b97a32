"""The steps a :class:`~threadline.testing.server.ScriptedServer` script is made of.

A step says how the server answers one request: :func:`reply` and :func:`tool_calls` answer
like a healthy endpoint, :func:`error` fails with an HTTP status, and :func:`cut_off` and
:func:`raw` misbehave on purpose (a stream that stops mid-answer, a body that is not what the
API promises), so that tests can prove a client never takes a broken answer for a complete one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from threadline.errors import UserError
from threadline.usage import Usage

__all__ = [
    "RecordedRequest",
    "Responder",
    "ScriptedCompletion",
    "ScriptedCutOff",
    "ScriptedError",
    "ScriptedRaw",
    "ServerStep",
    "cut_off",
    "error",
    "raw",
    "reply",
    "tool_calls",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received: its path, JSON body and headers (lower-case names)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class ScriptedCompletion:
    """A successful answer: optional text and function calls ``(name, arguments_json)``.

    ``usage`` is ``(input_tokens, output_tokens)``; ``None`` counts words instead.
    """

    text: str | None
    calls: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    usage: tuple[int, int] | None = None


@dataclass(frozen=True)
class ScriptedError:
    """An HTTP error answer with an OpenAI-style JSON error body."""

    status: int
    message: str
    retry_after: float | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class ScriptedCutOff:
    """``completion``'s answer, stopped short: see :func:`cut_off`."""

    completion: ScriptedCompletion
    after: int
    chunked: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class ScriptedRaw:
    """An HTTP answer of exactly ``body`` with ``status`` and ``content_type``: see :func:`raw`."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0


ServerStep = ScriptedCompletion | ScriptedError | ScriptedCutOff | ScriptedRaw
Responder = Callable[[RecordedRequest], ServerStep]
STEP_TYPES = (ScriptedCompletion, ScriptedError, ScriptedCutOff, ScriptedRaw)


def reply(
    text: str, *, delay: float = 0.0, usage: Usage | Mapping[str, int] | None = None
) -> ScriptedCompletion:
    """Answer with the assistant text ``text``, after ``delay`` seconds.

    ``usage`` overrides the reported token counts: a :class:`~threadline.usage.Usage` or a
    mapping with ``input_tokens`` and ``output_tokens``.
    """
    if not isinstance(text, str):
        raise UserError(f"reply() text must be a string, got {type(text).__name__}")
    return ScriptedCompletion(text=text, delay=float(delay), usage=_usage_pair(usage))


def tool_calls(
    *calls: tuple[str, Mapping[str, Any] | str], text: str | None = None, delay: float = 0.0
) -> ScriptedCompletion:
    """Answer with one or more function calls, each ``(name, arguments)``, in one response.

    ``arguments`` given as a dict is sent as JSON; given as a string it is sent verbatim, so
    malformed arguments can be scripted. ``text`` adds assistant text before the calls.
    """
    if not calls:
        raise UserError("tool_calls() needs at least one (name, arguments) pair")
    encoded = []
    for index, call in enumerate(calls):
        if not (isinstance(call, tuple) and len(call) == 2 and isinstance(call[0], str)):
            raise UserError(f"tool_calls() call {index} must be a (name, arguments) tuple")
        name, arguments = call
        encoded.append((name, arguments if isinstance(arguments, str) else json.dumps(arguments)))
    return ScriptedCompletion(text=text, calls=tuple(encoded), delay=float(delay))


def error(
    status: int,
    message: str = "the scripted server was told to fail this request",
    *,
    retry_after: float | None = None,
) -> ScriptedError:
    """Answer with HTTP ``status`` and an OpenAI-style error body carrying ``message``.

    ``retry_after`` (seconds) sets the ``retry-after`` and ``retry-after-ms`` headers the openai
    client honours; ``0`` is sent as one millisecond, because the client treats a zero delay as
    no advice and falls back to its own, slower backoff.
    """
    if not 400 <= status <= 599:
        raise UserError(f"error() status must be an HTTP error code (400-599), got {status}")
    return ScriptedError(status=status, message=message, retry_after=retry_after)


def cut_off(
    step: ScriptedCompletion, *, after: int, chunked: bool = False, delay: float = 0.0
) -> ScriptedCutOff:
    """Answer like ``step`` but close the connection early, as a crashed server or proxy does.

    A streamed answer sends its first ``after`` server-sent events (Python slice semantics:
    ``-1`` drops only the last) and closes. For chat completions the events are the chunks,
    the ``finish_reason`` chunk, the usage chunk (when asked for) and ``[DONE]``; for the
    Responses API they end with ``response.completed``. A non-streamed answer sends the first
    ``after`` bytes of its JSON body. The body is normally delimited by the closing connection,
    so the client sees a clean end; ``chunked=True`` sends it chunked and stops without the last
    chunk, so the client sees a broken transfer.
    """
    if not isinstance(step, ScriptedCompletion):
        raise UserError("cut_off() needs a step made by reply() or tool_calls()")
    if isinstance(after, bool) or not isinstance(after, int):
        raise UserError(f"cut_off() after must be an int, got {type(after).__name__}")
    return ScriptedCutOff(completion=step, after=after, chunked=chunked, delay=float(delay))


def raw(
    body: bytes | str,
    *,
    status: int = 200,
    content_type: str = "application/json",
    delay: float = 0.0,
) -> ScriptedRaw:
    """Answer with exactly ``body`` (a ``str`` is sent as UTF-8), whatever was asked for.

    Use it for garbage, a truncated JSON document or hand-written server-sent events
    (``content_type="text/event-stream"``); the body is sent with its ``Content-Length``.
    """
    if not 100 <= status <= 599:
        raise UserError(f"raw() status must be an HTTP status code, got {status}")
    data = body.encode() if isinstance(body, str) else bytes(body)
    return ScriptedRaw(body=data, status=status, content_type=content_type, delay=float(delay))


def _usage_pair(usage: Usage | Mapping[str, int] | None) -> tuple[int, int] | None:
    if usage is None:
        return None
    if isinstance(usage, Usage):
        return (usage.input_tokens, usage.output_tokens)
    try:
        return (int(usage["input_tokens"]), int(usage["output_tokens"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(
            "reply() usage must be a Usage or a mapping with 'input_tokens' and 'output_tokens'"
        ) from exc
