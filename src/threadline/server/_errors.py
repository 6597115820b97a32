"""OpenAI's error envelope, and the status code and type of every failure the server reports.

Every error response is ``{"error": {"message", "type", "param", "code"}}`` with the status
OpenAI uses for the same case: 400 ``invalid_request_error`` for a bad request (OpenAI has no
422), 401 for a missing or wrong key, 404 ``not_found_error`` for an unknown id or route, 405
for a wrong method, 409 for a busy or diverged conversation, 413 for a body too large, 429 and
5xx for the upstream model's failures. Messages never hold a stack trace, and
:func:`scrub` removes every secret the server knows (API keys, the upstream key) from them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from starlette.responses import JSONResponse

from ..errors import (
    ContextWindowExceededError,
    GuardrailTripwireTriggered,
    InvalidItemError,
    LeaseLostError,
    MaxTurnsExceeded,
    ModelAuthenticationError,
    ModelBehaviorError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelTimeoutError,
    SessionBusyError,
    SessionError,
    StoreUnavailableError,
    ThreadlineError,
    UserError,
)

__all__ = [
    "ERROR_SCHEMA",
    "ApiError",
    "bad_request",
    "error_body",
    "error_response",
    "from_exception",
    "not_found",
    "scrub",
]

logger = logging.getLogger("threadline.server")

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An error answered with OpenAI's envelope: HTTP ``status``, ``message``, ``type``,
    ``param`` and ``code`` (``type`` defaults to OpenAI's for the status)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or _TYPES.get(status, "server_error")
        self.headers = headers or {}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 404 ``not_found_error`` (also what another tenant's ids get: never a 403)."""
    return ApiError(404, message, param=param, code=code)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
"""The JSON Schema of :func:`error_body` (OpenAI's error envelope): the one error response of
every route in the OpenAPI document, serve's and the inspector's extensions alike."""


def error_body(error: ApiError) -> dict[str, Any]:
    """The JSON body of ``error``."""
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }


def error_response(error: ApiError, secrets: Iterable[str] = ()) -> JSONResponse:
    """``error`` as a JSON response, its message scrubbed of ``secrets``."""
    error.message = scrub(error.message, secrets)
    return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret of ``secrets`` (longer than 3 characters) replaced."""
    for secret in secrets:
        if secret and len(secret) > 3 and secret in text:
            text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def from_exception(exc: BaseException, secrets: Iterable[str] = ()) -> ApiError:
    """The :class:`ApiError` an exception raised while serving a request becomes.

    Threadline's errors keep their one-line message (without the Python-side fix hints of a
    busy session); anything else is a 500 whose message names only the exception's type, and
    its traceback goes to the ``threadline.server`` log.
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, SessionBusyError):
        return ApiError(
            409,
            "another request is writing to this conversation; retry when it has finished, or "
            "send the header 'X-Threadline-Lease-Wait: SECONDS' to wait for it",
            code="conversation_busy",
        )
    if isinstance(exc, LeaseLostError):
        return ApiError(
            409,
            "this request lost the conversation's writer lease to another request; nothing "
            "more of it was stored: retry the request",
            code="conversation_busy",
        )
    if isinstance(exc, ContextWindowExceededError):
        return ApiError(
            400,
            "the conversation and input do not fit the model's context window: compact the "
            "conversation (POST /v1/threadline/conversations/{id}/compact) or send less",
            code="context_length_exceeded",
        )
    if isinstance(exc, ModelError):
        # the upstream's own message may name its URL or echo its key: the log has it, the
        # client gets the kind of failure only
        logger.warning(
            "threadline: the upstream model failed: %s", scrub(_first_line(exc), secrets)
        )
        status = getattr(exc, "status_code", None)
        said = f" (HTTP {status})" if status else ""
        if isinstance(exc, ModelRateLimitError):
            return ApiError(429, f"the upstream model is rate limited{said}; retry later")
        if isinstance(exc, ModelTimeoutError):
            return ApiError(504, "the upstream model timed out", code="timeout")
        if isinstance(exc, ModelConnectionError):
            return ApiError(502, "the upstream model cannot be reached", code="upstream_error")
        if isinstance(exc, ModelAuthenticationError):
            return ApiError(
                502, f"the upstream model refused the server's key{said}", code="upstream_error"
            )
        return ApiError(502, f"the upstream model failed{said}", code="upstream_error")
    if isinstance(exc, GuardrailTripwireTriggered):
        return ApiError(400, _first_line(exc), code="guardrail_triggered")
    if isinstance(exc, MaxTurnsExceeded):
        return ApiError(500, _first_line(exc), code="max_turns_exceeded")
    if isinstance(exc, ModelBehaviorError):
        return ApiError(502, f"the upstream model misbehaved: {_first_line(exc)}")
    if isinstance(exc, InvalidItemError):
        return ApiError(400, _first_line(exc), param="input")
    if isinstance(exc, StoreUnavailableError):
        return ApiError(503, f"the session store is unavailable: {_first_line(exc)}")
    if isinstance(exc, UserError):
        return ApiError(400, _first_line(exc))
    if isinstance(exc, (SessionError, ThreadlineError)):
        logger.error("threadline: request failed: %s", scrub(_first_line(exc), secrets))
        return ApiError(500, _first_line(exc))
    logger.error("threadline: unexpected error while serving a request", exc_info=exc)
    return ApiError(500, f"the server failed ({type(exc).__name__}); see the server log")
