"""Debug logs of model calls (``threadline.models``): what was sent where, what came back."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from threadline.models.base import ModelResponse

__all__ = ["log_request", "log_response", "logger"]

logger = logging.getLogger("threadline.models")


def log_request(url: str, kwargs: Mapping[str, Any], history_key: str) -> None:
    """One line per request: endpoint, model, how many items/messages and tools, streaming."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    history = kwargs.get(history_key)
    count = len(history) if isinstance(history, list | tuple) else 0
    logger.debug(
        "threadline: POST %s model=%s %s=%d tools=%d stream=%s",
        url,
        kwargs.get("model"),
        history_key,
        count,
        len(kwargs.get("tools") or ()),
        bool(kwargs.get("stream")),
    )


def log_response(response: ModelResponse) -> None:
    """One line per answer: the kinds of items it holds (tool calls named) and the usage."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    kinds = [
        f"function_call {item.get('name')}"
        if item.get("type") == "function_call"
        else str(item.get("type", "message"))
        for item in response.output
    ]
    usage = response.usage
    logger.debug(
        "threadline: answer: %s (tokens in %d, out %d)",
        ", ".join(kinds) or "nothing",
        usage.input_tokens,
        usage.output_tokens,
    )
