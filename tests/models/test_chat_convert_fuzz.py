"""Fuzzing items → chat messages: valid histories convert, anything else is a UserError.

``items_to_messages`` takes whatever a session or a caller holds. Valid items (built by the
strategies below) must convert into well-formed chat messages; damaged items and arbitrary JSON
must either convert or raise :class:`~threadline.errors.UserError` naming the item — never a
``KeyError``, ``TypeError`` or ``AttributeError``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.errors import UserError
from threadline.items import validate_items
from threadline.models._chat_convert import items_to_messages, output_items

from ._strategies import FUZZ, JSON, mutated

TEXT = st.text(max_size=12)
ROLES = {"system", "user", "assistant", "tool"}

text_part = st.builds(
    lambda kind, text: {"type": kind, "text": text},
    st.sampled_from(["input_text", "output_text", "text"]),
    TEXT,
)
input_part = (
    text_part
    | st.builds(
        lambda url, detail: {"type": "input_image", "image_url": url, **detail},
        st.sampled_from(["https://example.com/a.png", "data:image/png;base64,AAAA"]),
        st.sampled_from([{}, {"detail": "low"}, {"detail": "auto"}]),
    )
    | st.builds(
        lambda data: {"type": "input_file", "file_data": data, "filename": "a.pdf"},
        st.just("data:application/pdf;base64,AAAA"),
    )
)
input_message = st.builds(
    lambda role, content, typed: {"role": role, "content": content, **typed},
    st.sampled_from(["user", "system", "developer"]),
    TEXT | st.lists(input_part, max_size=3),
    st.sampled_from([{}, {"type": "message"}]),
)
assistant_message = st.builds(
    lambda content: {"type": "message", "role": "assistant", "content": content},
    TEXT
    | st.lists(
        text_part.map(lambda p: dict(p, type="output_text"))
        | TEXT.map(lambda t: {"type": "refusal", "refusal": t}),
        max_size=3,
    ),
)
call_ids = st.sampled_from(["c1", "c2", "call_x"])
function_call = st.builds(
    lambda call_id, name, arguments: {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    },
    call_ids,
    st.sampled_from(["f", "get_weather"]),
    st.sampled_from(["{}", '{"city": "Oslo"}', "{broken"]),
)
function_output = st.builds(
    lambda call_id, output: {"type": "function_call_output", "call_id": call_id, "output": output},
    call_ids,
    TEXT | st.lists(text_part, max_size=2),
)
reasoning = st.just({"type": "reasoning", "id": "rs_1", "summary": []})
valid_item = input_message | assistant_message | function_call | function_output | reasoning


def _check_messages(messages: list[dict[str, Any]]) -> None:
    json.dumps(messages)  # sendable as a request body
    for message in messages:
        assert message["role"] in ROLES
        if message["role"] == "tool":
            assert isinstance(message["tool_call_id"], str)
        for call in message.get("tool_calls", []):
            assert isinstance(call["id"], str) and isinstance(call["function"]["name"], str)


@FUZZ
@given(items=st.lists(valid_item, max_size=8), instructions=st.none() | TEXT)
def test_valid_items_always_convert(items: list[dict[str, Any]], instructions: str | None) -> None:
    validate_items(items)

    messages = items_to_messages(items, instructions)

    _check_messages(messages)
    calls = [m for m in messages for _ in m.get("tool_calls", [])]
    assert len(calls) == sum(item.get("type") == "function_call" for item in items)
    outputs = [m for m in messages if m["role"] == "tool"]
    assert len(outputs) == sum(item.get("type") == "function_call_output" for item in items)


@FUZZ
@given(items=st.lists(valid_item, min_size=1, max_size=5), data=st.data())
def test_damaged_items_convert_or_are_a_user_error(
    items: list[dict[str, Any]], data: st.DataObject
) -> None:
    damaged = mutated(data, items)
    try:
        messages = items_to_messages(damaged, None)
    except UserError as exc:
        assert str(exc).startswith("item") and "\n" not in str(exc)
    else:
        _check_messages(messages)


@FUZZ
@given(items=st.lists(JSON, max_size=4))
def test_arbitrary_json_converts_or_is_a_user_error(items: list[Any]) -> None:
    try:
        messages = items_to_messages(items, None)
    except UserError as exc:
        assert str(exc).startswith("item")
    else:
        _check_messages(messages)


@FUZZ
@given(
    text=st.none() | TEXT,
    refusal=st.none() | TEXT,
    calls=st.lists(st.tuples(st.sampled_from(["", "c1"]), st.just("f"), TEXT), max_size=3),
)
def test_output_items_are_valid_and_convert_back(
    text: str | None, refusal: str | None, calls: list[tuple[str, str, str]]
) -> None:
    items = output_items(text, refusal, calls)

    validate_items(items)
    assert all(item["call_id"] for item in items if item["type"] == "function_call")
    _check_messages(items_to_messages(items, None))


@pytest.mark.parametrize("items", [None, 5, "hi", {"role": "user", "content": "hi"}])
def test_items_that_are_not_a_list_are_a_user_error(items: Any) -> None:
    """The case the damage fuzz found: the whole history replaced by one value."""
    with pytest.raises(UserError, match="items must be a list of dicts"):
        items_to_messages(items, None)
