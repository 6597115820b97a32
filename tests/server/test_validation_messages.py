"""A refused request body names the field and says what was expected, in a few words.

The request schemas validate every body (``server/_openapi.py``). Inside ``anyOf`` alternatives
(``metadata`` is an object or null, ``input`` a string or an array) the message must come from
the alternative the value's type matches, and must not echo a large value back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from threadline.testing.server import ScriptedServer

from .conftest import Served

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "17 metadata keys",
        {"metadata": {str(i): "v" for i in range(17)}},
        "metadata",
        "Invalid value for 'metadata': expected an object with at most 16 properties, got 17.",
    ),
    (
        "a metadata key too long",
        {"metadata": {"k" * 65: "v"}},
        "metadata",
        "Invalid value for 'metadata': key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'… too long: "
        "expected at most 64 characters, got 65.",
    ),
    (
        "a metadata value that is not a string",
        {"metadata": {"a": 1}},
        "metadata.a",
        "Invalid value for 'metadata.a': expected a string, got an integer.",
    ),
    (
        "an empty input",
        {"input": []},
        "input",
        "Invalid value for 'input': array too short: expected at least 1 item, got 0.",
    ),
    (
        "a number as input",
        {"input": 5},
        "input",
        "Invalid value for 'input': expected a string or an array, got an integer.",
    ),
    (
        "a temperature as text",
        {"temperature": "hot"},
        "temperature",
        "Invalid value for 'temperature': expected a number or null, got a string.",
    ),
    (
        "tools as a string",
        {"tools": "get_weather"},
        "tools",
        "Invalid value for 'tools': expected an array, got a string.",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_refused_field_is_named_with_what_was_expected(
    serve: Callable[..., Served],
    upstream: ScriptedServer,
    fields: dict[str, Any],
    param: str,
    message: str,
) -> None:
    client = serve().client()
    body = {"model": "assistant", "input": "hi", **fields}
    with pytest.raises(openai.BadRequestError) as refused:
        client.post("/responses", cast_to=object, body=body)
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["message"] == message
    assert error["param"] == param
    assert upstream.requests == []


def test_a_large_value_is_not_echoed_back(serve: Callable[..., Served]) -> None:
    client = serve().client()
    huge = {str(i): "x" * 500 for i in range(40)}
    with pytest.raises(openai.BadRequestError) as refused:
        client.conversations.create(metadata=huge)
    assert len(refused.value.message) < 300
    assert "x" * 50 not in refused.value.message
