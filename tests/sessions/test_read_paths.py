"""Every read path decodes the same rows the same way, whatever the rows hold.

Rows are written behind the store's back (corrupt, valid, or fragments that are valid JSON
only once joined), then every read path must give the items a row-by-row ``json.loads``
gives, or a ``CorruptItemError`` at a corrupt row of the range it read: never made-up items,
never a valid row swallowed.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.errors import CorruptItemError
from threadline.sessions import SQLiteStore

from ..backends import BACKENDS, Backend, postgres_execute

FUZZ = settings(
    max_examples=int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

# Pieces that are not one JSON object alone but may be valid JSON when joined to neighbours.
FRAGMENTS = [
    '{"a":"',
    '"}',
    "{},{}",
    '{"role":"user","content":"x"},{"role":"user","content":"y"}',
    '{"a":[{}',
    "{}]}",
    '{"a":[[1',
    "2]]}",
    "{",
    "}",
    "[",
    "]",
    ",",
    '"',
    "",
    "not json",
    "1",
    "null",
    "[{}]",
    ' {"padded": true} ',
    '{"a":NaN}',
    '{"dup":1,"dup":2}',
    '{"x":"\\u0010"},"\\u0010",{"y":1}',
    '"},{"',
    "[" * 3000 + "]" * 3000,
]
VALID = [
    '{"role":"user","content":"hi"}',
    '{"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok"}]}',
    '{"k":"v,\\"}{"}',
]
ROWS = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(VALID), st.text(max_size=8)),
    min_size=1,
    max_size=8,
)
PLAIN = [b for b in BACKENDS if b.corrupt_item is not None]
_counter = itertools.count()


def _reference(rows: list[str]) -> list[Any]:
    """Each row on its own: the item, or ``None`` when it is not one JSON object."""
    decoded: list[Any] = []
    for row in rows:
        try:
            value = json.loads(row)
        except (ValueError, RecursionError):
            value = None
        decoded.append(value if isinstance(value, dict) else None)
    return decoded


async def _set_rows(store: Any, session_id: str, rows: list[str]) -> None:
    """Store ``rows`` as the session's item payloads, bypassing every check."""
    await store.session(session_id).add_items([{"role": "user", "content": "."}] * len(rows))
    if isinstance(store, SQLiteStore):
        codec = store.codec

        def write(conn: Any) -> None:
            for seq, row in enumerate(rows):
                data = row if codec.plain_json else codec.seal(session_id, row)
                conn.execute(
                    "UPDATE threadline_items SET data = ? WHERE seq = ? AND sid = "
                    "(SELECT sid FROM threadline_sessions WHERE session_id = ?)",
                    (data, seq, session_id),
                )

        await store._engine.write(write)
    elif hasattr(store._backend, "pools"):  # PostgreSQL
        for seq, row in enumerate(rows):
            data = row if store.codec.plain_json else store.codec.seal(session_id, row)
            await postgres_execute(
                store,
                "UPDATE threadline_items SET data = $1 WHERE skey = $2 AND seq = $3",
                data.encode("utf-8") if isinstance(data, str) else data,
                hashlib.sha256(session_id.encode("utf-8")).digest(),
                seq,
            )
    else:
        stored = store._backend.db.sessions[session_id].rows
        for seq, row in enumerate(rows):
            data = row if store.codec.plain_json else store.codec.seal(session_id, row)
            stored[seq] = stored[seq]._replace(data=data)


async def _outcome(read: Any) -> tuple[str, Any]:
    try:
        return "items", await read
    except CorruptItemError as exc:
        return "corrupt", exc.position


def _check(outcome: tuple[str, Any], expected: list[Any], start: int) -> None:
    bad = [start + i for i, item in enumerate(expected) if item is None]
    if bad:
        assert outcome[0] == "corrupt", f"made-up items {outcome[1]!r} from corrupt rows {bad}"
        assert outcome[1] in bad
    else:
        assert outcome == ("items", expected)


async def _every_read_path(backend: Backend, tmp_path: Path, rows: list[str]) -> None:
    folder = tmp_path / f"example-{next(_counter)}"
    folder.mkdir()
    store = backend.factory(folder)()
    try:
        await _set_rows(store, "s", rows)
        expected = _reference(rows)
        session = store.session("s")
        _check(await _outcome(session.get_items()), expected, 0)
        _check(await _outcome(session.get_window()), expected, 0)
        for limit in range(1, len(rows) + 1):
            start = len(rows) - limit
            _check(await _outcome(session.get_items(limit=limit)), expected[start:], start)
        _check(await _outcome(session.get_items(limit=len(rows) + 5)), expected, 0)
    finally:
        await store.aclose()


@pytest.mark.parametrize("backend", [b.param for b in PLAIN])
@FUZZ
@given(rows=ROWS)
def test_every_read_path_agrees_on_any_rows(
    backend: Backend, tmp_path: Path, rows: list[str]
) -> None:
    asyncio.run(_every_read_path(backend, tmp_path, rows))


@pytest.mark.parametrize("backend", [b.param for b in PLAIN])
def test_rows_valid_only_when_joined_are_not_made_into_items(
    backend: Backend, tmp_path: Path
) -> None:
    # Joined with commas these are three objects; on their own, none of the three is one.
    # A backend may join oldest first or newest first: both orders are tried.
    made_up = ['{"role":"user","content":"a"},{"role":"user","content":"b"}', '{"x":"', '"}']
    # ... and a valid row between two fragments is neither swallowed nor hidden.
    swallowed = ['{"a":"', VALID[0], '"}', "{},{}"]
    for rows in (made_up, swallowed):
        asyncio.run(_every_read_path(backend, tmp_path, rows))
        asyncio.run(_every_read_path(backend, tmp_path, rows[::-1]))
