"""Turn exceptions of the ``openai`` client into threadline's :class:`~threadline.errors.ModelError`.

Every call a model makes through the client runs inside :func:`openai_errors`, so the user sees
one line that says what failed, where, and what to do, with the original exception chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from threadline.errors import (
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelTimeoutError,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAIError

__all__ = ["model_error", "openai_errors"]


@contextmanager
def openai_errors(client: AsyncOpenAI) -> Iterator[None]:
    """Re-raise any ``openai`` exception raised inside the block as a threadline error."""
    import openai

    try:
        yield
    except openai.OpenAIError as exc:
        raise model_error(exc, client) from exc


def model_error(exc: OpenAIError, client: AsyncOpenAI) -> ModelError:
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
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        outcome = "failed" if status >= 500 else "rejected the request"
        return ModelError(
            f"the model endpoint {url} {outcome} (HTTP {status}: {detail}); {_status_hint(status)}",
            status_code=exc.status_code,
            url=url,
        )
    return ModelError(f"the model endpoint {url} failed: {detail}", url=url)


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
