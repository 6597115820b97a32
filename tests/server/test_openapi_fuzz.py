"""schemathesis fuzzes every operation of the OpenAPI schema the server publishes.

The app runs under uvicorn (in this process) over a temporary SQLite file, its upstream a scripted
server that answers anything. Each operation gets a bounded, derandomized number of generated
requests (``THREADLINE_FUZZ_EXAMPLES``, default 12), valid and invalid; every response must be
no 5xx, have a documented status code and content type, and match the schema for it.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.clients_harness import Served, published_openapi, serve_scripted

EXAMPLES = int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "12"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``threadline serve`` over a temporary SQLite file; its upstream answers anything."""
    with serve_scripted(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


# Loaded when the module is collected (schemathesis makes one test per operation from it);
# the requests go to the served subprocess, which must publish the same document.
DOCUMENT = published_openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)

# The routes issue 12 names: each must be in the published document (the fuzzing below covers
# only what the document lists).
ROUTES = {
    "/v1/conversations": {"post"},
    "/v1/conversations/{conversation_id}": {"get", "post", "delete"},
    "/v1/conversations/{conversation_id}/items": {"get", "post"},
    "/v1/conversations/{conversation_id}/items/{item_id}": {"get", "delete"},
    "/v1/responses": {"post"},
    "/v1/responses/{response_id}": {"get", "delete"},
    "/v1/responses/{response_id}/input_items": {"get"},
    "/v1/chat/completions": {"post"},
    "/v1/models": {"get"},
}


def _normal(path: str) -> str:
    """``path`` with every ``{parameter}`` named by position, so names need not match."""
    import re

    names = iter(("conversation_id", "item_id") if "conversations" in path else ("response_id",))
    return re.sub(r"\{[^}]+\}", lambda _: "{" + next(names) + "}", path)


def test_the_document_lists_the_routes() -> None:
    paths = DOCUMENT.get("paths") or {}
    published = {
        _normal(path): {m for m in ops if m != "parameters"} for path, ops in paths.items()
    }
    missing = {
        f"{method.upper()} {path}"
        for path, methods in ROUTES.items()
        for method in methods - published.get(path, set())
    }
    assert not missing, f"GET /openapi.json does not document: {', '.join(sorted(missing))}"


def test_the_running_server_publishes_that_schema(served: Served) -> None:
    with urllib.request.urlopen(f"{served.url}/openapi.json", timeout=10) as answer:
        assert answer.headers.get_content_type() == "application/json"
        assert json.load(answer) == DOCUMENT


# schemathesis refuses to collect a test for a document without operations; then only
# test_the_document_lists_the_routes fails, saying what is missing.
if DOCUMENT.get("paths"):

    @schema.parametrize()
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def test_published_schema_holds(case: Any, served: Served) -> None:
        case.call_and_validate(base_url=served.url, checks=CHECKS, timeout=30)
