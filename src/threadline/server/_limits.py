"""Request limits: body size, items per request, string length, JSON depth; the JSON body reader.

A body over :attr:`Limits.max_body_bytes` is a 413 before it is read in full (the declared
``Content-Length`` is checked first, then the bytes actually received); anything else out of
bounds is a 400 naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..errors import UserError
from ._errors import ApiError, bad_request

__all__ = ["Limits", "check_strings", "read_json"]


@dataclass(frozen=True)
class Limits:
    """What one request may carry.

    ``max_body_bytes``: the largest request body (413 beyond it). ``max_items``: input items
    (or chat messages) in one request. ``max_string``: the longest string anywhere in a body,
    in characters. ``max_depth``: how deeply a body's JSON may nest. ``max_lease_wait``: the
    longest a request may ask to wait for a busy conversation, in seconds.
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_items: int = 1000
    max_string: int = 1_000_000
    max_depth: int = 64
    max_lease_wait: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_items", "max_string", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"Limits.{name} must be an integer >= 1, got {value!r}")
        wait = self.max_lease_wait
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not wait >= 0:
            raise UserError(f"Limits.max_lease_wait must be a number >= 0, got {wait!r}")


async def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The request's body as a JSON object, within ``limits``; an empty body is ``{}``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise _too_large(limits)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise _too_large(limits)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_float=_number)
    except (ValueError, RecursionError):
        raise bad_request(
            "We could not parse the JSON body of your request. The body must be a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    check_strings(body, limits)
    return body


def _number(text: str) -> int | float:
    """A JSON number with a fraction or exponent: an ``int`` when it is integral (``1.0`` is
    the integer 1, as JSON Schema counts it), else a ``float``."""
    value = float(text)
    if value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def _too_large(limits: Limits) -> ApiError:
    return ApiError(
        413,
        f"the request body is larger than this server accepts ({limits.max_body_bytes} bytes)",
        code="request_too_large",
    )


def check_strings(value: Any, limits: Limits) -> None:
    """400 when a string in ``value`` is longer than ``limits.max_string`` or the JSON nests
    deeper than ``limits.max_depth``."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, str):
            if len(node) > limits.max_string:
                raise bad_request(
                    f"a string in the request is {len(node)} characters long, more than the "
                    f"{limits.max_string} this server accepts",
                    param=where or None,
                )
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > limits.max_depth:
            raise bad_request(
                f"the request's JSON nests deeper than {limits.max_depth} levels",
                param=where or None,
            )
        if isinstance(node, dict):
            for key, child in node.items():
                if len(key) > limits.max_string:
                    raise bad_request("a key in the request is too long")
                stack.append((child, depth + 1, f"{where}.{key}" if where else key))
        else:
            for index, child in enumerate(node):
                stack.append((child, depth + 1, f"{where}[{index}]"))
