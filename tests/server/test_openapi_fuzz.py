"""schemathesis fuzzes the OpenAPI schema the server publishes.

The app runs under uvicorn (in this process) over a temporary SQLite file, its upstream a scripted
server that answers anything. Every response must be no 5xx, have a documented status code,
content type and headers, and match the schema documented for it.

* Stateless: each operation gets a bounded, derandomized number of generated requests
  (``THREADLINE_FUZZ_EXAMPLES``, default 10), valid and invalid. About half of the requests that
  name a conversation, item, response or model name one that exists (see :func:`aim`), so the
  routes are exercised past their 404.
* Stateful: short sequences that follow the document's links (create a conversation, then read,
  page, change, fork and delete it with the id the server returned), bounded by
  ``THREADLINE_FUZZ_SEQUENCES`` (default 8).
"""

from __future__ import annotations

import copy
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

from tests.server.clients_harness import MODEL, Served, published_openapi, serve_scripted

EXAMPLES = int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "10"))
SEQUENCES = int(os.environ.get("THREADLINE_FUZZ_SEQUENCES", "8"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``threadline serve`` over a temporary SQLite file; its upstream answers anything."""
    with serve_scripted(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


class Known:
    """Things that exist on the server, for the fuzzer to aim at.

    ``ids`` holds a conversation with items and a response stored in it; a destructive call
    (a ``DELETE``) gets fresh ones of its own, so the others keep finding theirs.
    """

    def __init__(self, served: Served) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key="fuzz", base_url=served.base_url, max_retries=0)
        self.ids = self.fresh()

    def fresh(self) -> dict[str, str]:
        """A new conversation with an item and a stored response: the ids by parameter name."""
        conversation = self.client.conversations.create(
            metadata={"fuzz": "yes"},
            items=[{"type": "message", "role": "user", "content": "seed for the fuzzer"}],
        )
        response = self.client.responses.create(
            model=MODEL, input="a turn to fuzz around", conversation=conversation.id
        )
        items = self.client.conversations.items.list(conversation.id, order="asc")
        return {
            "conversation_id": conversation.id,
            "item_id": items.data[0].id,
            "response_id": response.id,
            "model": MODEL,
        }


@pytest.fixture(scope="module")
def known(served: Served) -> Iterator[Known]:
    made = Known(served)
    yield made
    made.client.close()


# Loaded when the module is collected (schemathesis makes one test per operation from it);
# the requests go to the served app, which must publish the same document.


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """The inspector's import takes a JSON lines body: a generated string is sent as is (any
    other value as one JSON line), so the fuzzer reaches the route's own checks."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8")


DOCUMENT = published_openapi()
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))  # it adds inferred links

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


def _half(*values: object) -> bool:
    """A choice made by the generated values themselves (the same in every derandomized run)."""
    return sum(len(str(value)) for value in values) % 2 == 0


def aim(case: Any, known: Known) -> None:
    """Point about half of the cases at things that exist: path ids, and ``model``,
    ``conversation`` and ``previous_response_id`` in a JSON body, so that the routes are
    exercised past their 404 (hypothesis can still shrink a failing case)."""
    parameters = case.path_parameters
    if parameters and _half(*parameters.values()):
        ids = known.fresh() if case.method.upper() == "DELETE" else known.ids
        for name in parameters:
            if name in ids:
                parameters[name] = ids[name]
    body = case.body
    if isinstance(body, dict) and _half(*body.keys(), *map(type, body.values())):
        if isinstance(body.get("model"), str):
            body["model"] = MODEL
        if isinstance(body.get("conversation"), str):
            body["conversation"] = known.ids["conversation_id"]
        if isinstance(body.get("previous_response_id"), str):
            body["previous_response_id"] = known.ids["response_id"]


# schemathesis refuses to collect a test for a document without operations; then only
# test_the_document_lists_the_routes fails, saying what is missing.
if DOCUMENT.get("paths"):

    @schema.parametrize()
    @settings(SETTINGS, max_examples=EXAMPLES)
    def test_published_schema_holds(case: Any, served: Served, known: Known) -> None:
        aim(case, known)
        case.call_and_validate(base_url=served.url, checks=CHECKS, timeout=30)

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        """Sequences of calls along the document's links, checked like the stateless ones."""

        base_url = ""

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": self.base_url, "timeout": 30}

        def validate_response(
            self,
            response: Any,
            case: Any,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    def test_linked_sequences_hold(served: Served) -> None:
        Workflow.base_url = served.url
        Workflow.run(settings=settings(SETTINGS, max_examples=SEQUENCES, stateful_step_count=6))
