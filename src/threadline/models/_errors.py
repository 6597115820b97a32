"""Turn exceptions of the ``openai`` client into threadline's :class:`~threadline.errors.ModelError`.

Every call a model makes through the client, and every conversion of what it answered, runs
inside :func:`openai_errors`, so the user sees one line that says what failed, where, and what
to do, with the original exception chained: an HTTP or network failure, a body that is not
JSON, an answer missing a field the API promises (:class:`~threadline.models._read.Malformed`),
or a stream that ended before its end (:func:`ended_early`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from threadline.errors import (
    ContextWindowExceededError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from threadline.models._read import Malformed, one_line

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAIError

__all__ = [
    "OVERFLOW_FIX",
    "ended_early",
    "endpoint_url",
    "is_context_overflow",
    "malformed_answer",
    "model_error",
    "openai_errors",
]

# Causes of an ``APIConnectionError`` that mean the endpoint was reached and then the
# connection broke (httpx and httpx2 spell them alike); any other cause is a failure to connect.
_BROKEN_TRANSFERS = frozenset({"RemoteProtocolError", "ReadError", "WriteError"})

# How endpoints say a request does not fit the context window: OpenAI's error code, llama.cpp's
# error type, and the messages of OpenAI, vLLM, llama.cpp, Ollama, Gemini and other compatible
# servers.
_OVERFLOW_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
_OVERFLOW_TEXT = re.compile(
    r"maximum context length|context[ _]length[ _]exceeded|exceeds? the (available )?context"
    r"|context (size|window) (exceeded|is too small)|exceeds? (the )?(maximum )?context"
    r"|prompt is too long|input length exceeds|too many tokens"
    r"|input token count \(\d+\) exceeds the maximum number of tokens",
    re.IGNORECASE,
)

# Where the messages say how many tokens the prompt had: llama.cpp, OpenAI, vLLM, Anthropic's,
# Gemini's.
_REQUESTED = re.compile(
    r"request \((\d+) tokens\)|resulted in (\d+) tokens|\((\d+) in the messages"
    r"|prompt is too long: (\d+) tokens|input token count \((\d+)\) exceeds"
)

OVERFLOW_FIX = (
    "send less history: --max-history-tokens N in the CLI, or SessionSettings(max_tokens=...) "
    "in code; or give the model's real window as ModelSettings(context_window=...) so that "
    "threadline's default window fits it"
)
"""The fixes a context-overflow error names (docs/models.md explains them)."""


def endpoint_url(client: AsyncOpenAI, path: str) -> str:
    """The URL of ``path`` (such as ``"chat/completions"``) under the client's base URL."""
    return f"{str(client.base_url).rstrip('/')}/{path}"


@contextmanager
def openai_errors(client: AsyncOpenAI, url: str, *, midstream: bool = False) -> Iterator[None]:
    """Re-raise any failure of a call to ``url`` (or of reading its answer) as a threadline error.

    ``midstream`` says the answer had begun to arrive: a broken connection then means the
    answer ended early, not that the endpoint could not be reached.
    """
    import openai

    try:
        yield
    except openai.OpenAIError as exc:
        raise model_error(exc, client, midstream=midstream) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        what = f"the body is not valid JSON text ({type(exc).__name__}: {exc})"
        raise malformed_answer(url, what) from exc
    except Malformed as exc:
        raise malformed_answer(url, str(exc)) from exc


def malformed_answer(url: str, what: str) -> ModelError:
    """The error for an answer from ``url`` that does not have the API's shape."""
    return ModelError(
        f"the model endpoint {url} sent a malformed answer: {one_line(what, 300)}; check that "
        "the base URL points at an OpenAI-compatible API, or retry the request",
        url=url,
    )


def ended_early(url: str, what: str, content_type: str | None) -> ModelError:
    """The error for a stream from ``url`` that stopped before its end; ``what`` says how."""
    hint = ""
    if content_type is not None and not content_type.startswith("text/event-stream"):
        hint = f"; the server answered with Content-Type {content_type!r}, not an event stream"
    return ModelError(
        f"the response stream from {url} ended early: {what}{hint}; retry the request",
        url=url,
    )


def model_error(exc: OpenAIError, client: AsyncOpenAI, *, midstream: bool = False) -> ModelError:
    """The threadline error that describes ``exc`` (raised by a call through ``client``)."""
    import openai

    base_url = str(client.base_url).rstrip("/")
    request = getattr(exc, "request", None)
    url = str(request.url) if request is not None else base_url
    detail = _server_message(exc)
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeoutError(
            f"the model endpoint {url} did not answer within {_timeout_text(client)}; "
            "raise the client's timeout (AsyncOpenAI(timeout=...)) or check the server",
            url=url,
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        if midstream:
            return ModelConnectionError(
                f"the response stream from {url} ended early: the connection broke before the "
                f"answer was complete{reason}; retry the request",
                url=url,
            )
        if cause is not None and type(cause).__name__ in _BROKEN_TRANSFERS:
            return ModelConnectionError(
                f"the connection to the model endpoint {url} broke before the answer was "
                f"complete{reason}; retry the request, or check the server's logs",
                url=url,
            )
        return ModelConnectionError(
            f"could not connect to the model endpoint at {base_url}{reason}; check that the "
            "server is running and that the base URL (OPENAI_BASE_URL or base_url=) is right",
            url=url,
        )
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        auth_status: int = exc.status_code
        problem = "rejected the API key" if auth_status == 401 else "refused access"
        return ModelAuthenticationError(
            f"the model endpoint {url} {problem} (HTTP {auth_status}: {detail}); check the key "
            "in OPENAI_API_KEY or the api_key given to the provider or client",
            status_code=auth_status,
            url=url,
        )
    if isinstance(exc, openai.RateLimitError):
        return ModelRateLimitError(
            f"the model endpoint {url} is rate limiting requests (HTTP 429: {detail}; the "
            f"client gave up after {client.max_retries} retries); wait and try again, or "
            "raise the client's max_retries",
            status_code=429,
            url=url,
        )
    if isinstance(exc, openai.APIStatusError) and is_context_overflow(exc):
        return ContextWindowExceededError(
            f"the model endpoint {url} refused the request: it does not fit the model's context "
            f"window (HTTP {exc.status_code}: {one_line(detail, 300)}); {OVERFLOW_FIX}",
            status_code=exc.status_code,
            url=url,
            requested_tokens=_requested_tokens(exc, detail),
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        outcome = "failed" if status >= 500 else "rejected the request"
        return ModelError(
            f"the model endpoint {url} {outcome} (HTTP {status}: {detail}); {_status_hint(status)}",
            status_code=exc.status_code,
            url=url,
        )
    return ModelError(f"the model endpoint {url} failed: {detail}", url=url)


def is_context_overflow(exc: OpenAIError) -> bool:
    """Whether ``exc`` (an HTTP error) says the request did not fit the context window."""
    status = getattr(exc, "status_code", None)
    if status not in (400, 413, 422, 500):  # llama.cpp and some proxies use other statuses
        return False
    body = getattr(exc, "body", None)
    codes = [getattr(exc, "code", None), getattr(exc, "type", None)]
    if isinstance(body, dict):
        codes += [body.get("code"), body.get("type")]
    if any(isinstance(code, str) and code in _OVERFLOW_CODES for code in codes):
        return True
    return bool(_OVERFLOW_TEXT.search(_server_message(exc)))


def _requested_tokens(exc: OpenAIError, detail: str) -> int | None:
    """The prompt's size in tokens as an overflow error states it, if it does."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        count = body.get("n_prompt_tokens")
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            return count
    found = _REQUESTED.search(detail)
    if found is None:
        return None
    return int(next(group for group in found.groups() if group is not None))


def _status_hint(status: int) -> str:
    if status == 404:
        return "check the model name and the base URL"
    if status >= 500:
        return "try again later or check the server's logs"
    return "check the model name, the model settings and the items sent"


def _server_message(exc: OpenAIError) -> str:
    """The error message the server sent, else the client's own message."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(body, str) and body.strip():
        return body.strip()
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) and message else str(exc) or type(exc).__name__


def _timeout_text(client: AsyncOpenAI) -> str:
    timeout: object = client.timeout
    read = getattr(timeout, "read", None)
    seconds = read if isinstance(read, (int, float)) else timeout
    if isinstance(seconds, (int, float)):
        return f"{seconds:g} s"
    return "the client's timeout"
