"""The OpenAPI document the app publishes at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def openapi_document(*, memory: bool, auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes served."""
    return {"openapi": "3.1.0", "info": {"title": "threadline serve", "version": "1"}, "paths": {}}
