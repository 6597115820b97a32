"""Fuzzing what a store accepts: on every backend an input round-trips exactly or is refused.

Arbitrary JSON-ish values (huge, deep, odd numbers, Unicode edge cases, keys that are not
strings), malformed items and hostile session ids go through ``add_items``. Each either reads
back exactly as written (types, values and key order) on every read path, or raises
``UserError`` and leaves the store as it was. Anything else (a raw ``RecursionError``,
``UnicodeEncodeError``, ``ValueError``) fails. ``THREADLINE_FUZZ_EXAMPLES=2000`` digs deeper.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.errors import SessionError, UserError
from threadline.items import MAX_DEPTH

from ..backends import BACKEND_PARAMS, BACKENDS, Backend

FUZZ = settings(
    max_examples=int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

ODD_TEXT = [
    "",
    "\x00",
    "nul \x00 inside",
    "\ud800",
    "lone \udfff low",
    "\ud83d\ude00",  # a surrogate pair written as two code points: not one character
    "🙂",
    "\u200b\ufeff\u202e",
    "e\u0301",
    "\U0010ffff",
    "\\u0000",
    '"quoted", {braces} [brackets]',
    "line\nbreak\r\ttab",
    "x" * 70_000,
]
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(ODD_TEXT))
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, True, False]),
    st.sampled_from([4299, 4300, 5000]).map(lambda digits: 10**digits),  # huge: Python's limit
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 5e-324, 1.7976931348623157e308, 1e16, 0.1]),
)
KEYS = st.one_of(
    TEXT, st.sampled_from(["1", "role", "type", ""]), st.sampled_from([1, None, True, 2.5])
)


def nested(levels: int, core: Any = "core") -> Any:
    value = core
    for _ in range(levels):
        value = [value] if levels % 2 else {"k": value}
    return value


DEEP = st.sampled_from([MAX_DEPTH - 3, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 1000, 20_000]).map(
    nested
)
VALUES = st.recursive(
    st.one_of(st.none(), NUMBERS, TEXT),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
ANY_VALUE = st.one_of(VALUES, DEEP)
ITEMS = st.one_of(
    st.builds(lambda content: {"role": "user", "content": content}, st.one_of(TEXT, ANY_VALUE)),
    st.builds(
        lambda extra, value: {"type": "message", "role": "assistant", "content": [], extra: value},
        KEYS,
        ANY_VALUE,
    ),
    st.builds(
        lambda call_id, output: {
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
        },
        TEXT,
        st.one_of(TEXT, st.lists(VALUES, max_size=3)),
    ),
    st.builds(
        lambda name, args: {
            "type": "function_call",
            "call_id": "c",
            "name": name,
            "arguments": args,
        },
        TEXT,
        st.one_of(TEXT, NUMBERS),
    ),
    st.dictionaries(KEYS, ANY_VALUE, max_size=4),  # mostly malformed
    ANY_VALUE,  # not even a dict
)
SESSION_IDS = st.one_of(TEXT, st.sampled_from(["'; DROP TABLE x; --", "%", "_", "a" * 5000]))
KEPT = {"role": "user", "content": "kept"}
_counter = itertools.count()


def exactly_equal(a: Any, b: Any) -> bool:
    """Equal in value, type and key order (``True`` is not ``1``, ``1.0`` is not ``1``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(exactly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(exactly_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


async def _listed(store: Any) -> list[tuple[str, int]]:
    page = await store.list_sessions()
    return sorted((info.session_id, info.item_count) for info in page)


async def _round_trip_or_refusal(
    backend: Backend, tmp_path: Path, session_id: Any, batch: Any
) -> None:
    folder = tmp_path / f"example-{next(_counter)}"
    folder.mkdir()
    store = backend.factory(folder)()
    try:
        await store.session("other").add_items([KEPT])
        before = await _listed(store)
        try:
            session = store.session(session_id)
            await session.add_items(batch)
        except UserError:
            assert await _listed(store) == before
            assert await store.session("other").get_items() == [KEPT]
            return
        assert isinstance(batch, list)
        reads = [
            await session.get_items(),
            await session.get_items(limit=len(batch) + 1),
            await session.get_window(),
            await session.get_window(max_items=len(batch)),
        ]
        if batch:
            reads.append(await session.get_items(limit=len(batch)))
        for got in reads:
            assert exactly_equal(got, batch), (got, batch)
        assert dict(await _listed(store)).get(session_id, 0) == len(batch)
        if batch:
            assert exactly_equal(await session.pop_item(), batch[-1])
    finally:
        await store.aclose()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@FUZZ
@given(batch=st.lists(ITEMS, max_size=3))
def test_any_batch_round_trips_or_is_refused(
    backend: Backend, tmp_path: Path, batch: list[Any]
) -> None:
    asyncio.run(_round_trip_or_refusal(backend, tmp_path, "fuzz", batch))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@FUZZ
@given(session_id=st.one_of(SESSION_IDS, st.none(), st.integers()))
def test_any_session_id_round_trips_or_is_refused(
    backend: Backend, tmp_path: Path, session_id: Any
) -> None:
    asyncio.run(_round_trip_or_refusal(backend, tmp_path, session_id, [KEPT]))


@pytest.mark.parametrize("backend", [b.param for b in BACKENDS if b.name.startswith("sqlite-file")])
async def test_a_database_under_a_regular_file_is_a_session_error(
    backend: Backend, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    store = backend.factory(not_a_folder)()
    try:
        with pytest.raises(SessionError, match="a-file"):
            await store.session("s").add_items([KEPT])
    finally:
        await store.aclose()


def test_a_refusal_previews_the_item_in_its_own_key_order() -> None:
    from threadline.items import validate_items

    with pytest.raises(UserError) as caught:
        validate_items([{"role": "user", "content": "x", "n": {1: 10**5000}}])
    message = str(caught.value)
    assert "item 0 has a key that is not a string (int 1)" in message
    assert "{'role': 'user', 'content': 'x', 'n': {1: <an int of about 5000 digits>}}" in message
