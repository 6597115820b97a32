"""Summaries as stored, on every backend: ``window_since`` (one read from a position) agrees
with its generic default, and ``get_window`` puts a holding summary first."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from threadline.items import assistant_message, function_call, function_call_output, user_message
from threadline.sessions import SUMMARY_RECORD, Summary, estimate_tokens, read_summary
from threadline.sessions._summary import is_summary_item, item_digest, summary_item
from threadline.sessions.backend import StoreBackend, tail_window_of

from ..backends import BACKEND_PARAMS, Backend


@pytest.fixture(params=BACKEND_PARAMS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    backend: Backend = request.param
    opened = backend.factory(tmp_path)()
    yield opened
    await opened.aclose()


def history(seed: int, turns: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for turn in range(turns):
        items.append(user_message(f"q{turn} " + "x" * rng.randint(0, 300)))
        for step in range(rng.randint(0, 2)):
            call_id = f"c{turn}-{step}"
            items.append(function_call(call_id, "f", "{}"))
            items.append(function_call_output(call_id, "o" * rng.randint(0, 200)))
        items.append(assistant_message(f"a{turn} " + "y" * rng.randint(0, 300)))
    return items


@pytest.mark.parametrize("seed", range(4))
async def test_window_since_agrees_with_the_generic_default(store: Any, seed: int) -> None:
    items = history(seed, 12)
    session = store.session("s")
    await session.add_items(items)
    backend = store._backend
    rng = random.Random(seed)
    starts = [0, 1, len(items) - 1, len(items), len(items) + 3]
    starts += [rng.randrange(len(items)) for _ in range(6)]
    budgets: list[tuple[int | None, int | None]] = [
        (None, None),
        (0, None),
        (None, 0),
        (3, None),
        (None, 200),
        (5, 400),
        (None, 10**6),
    ]
    for start in starts:
        for max_items, max_tokens in budgets:
            fast = await backend.window_since("s", start, max_items, max_tokens)
            generic = await StoreBackend.window_since(backend, "s", start, max_items, max_tokens)
            assert fast == generic, (start, max_items, max_tokens)
            assert fast == tail_window_of(items, start, max_items, max_tokens)
    whole = await backend.window_since("s", 4, None, None)
    assert whole.count == len(items) and whole.anchor == items[3]
    assert whole.items == items[4:]
    assert whole.tail_tokens == sum(estimate_tokens(item) for item in items[4:])
    missing = await backend.window_since("nobody", 2, None, None)
    assert (missing.count, missing.anchor, missing.items, missing.tail_tokens) == (0, None, [], 0)


async def stored_summary(session: Any, items: list[dict[str, Any]], end: int) -> Summary:
    summary = Summary(
        text="The user asked twelve questions.",
        end=end,
        anchor=item_digest(items[end - 1]),
        covered_tokens=sum(estimate_tokens(item) for item in items[:end]),
        created_at=1.0,
    )
    await session.put_records({SUMMARY_RECORD: summary.to_record()})
    return summary


async def test_the_window_is_the_summary_then_the_newest_turns_after_it(store: Any) -> None:
    items = history(7, 12)
    session = store.session("s")
    await session.add_items(items)
    end = next(i for i in range(len(items) // 2, len(items)) if items[i].get("role") == "user")
    summary = await stored_summary(session, items, end)
    assert await read_summary(session) == summary
    assert await session.get_window() == [summary_item(summary.text), *items[end:]]
    assert await session.get_items() == items  # every raw item, oldest first
    for budget in (summary.tokens, summary.tokens + 150, 600, 5000):
        window = await session.get_window(max_tokens=budget)
        assert window[0] == summary.item
        assert sum(estimate_tokens(item) for item in window) <= budget
        plain = await store._backend.window_since("s", end, None, budget - summary.tokens)
        assert window[1:] == plain.items
    three = await session.get_window(max_items=3)
    assert three[0] == summary.item and len(three) <= 3
    assert three[1:] == (await store._backend.window_since("s", end, 2, None)).items
    assert await session.get_window(max_tokens=summary.tokens - 1) == await store._backend.window(
        "s", None, summary.tokens - 1
    )


async def test_a_summary_past_the_history_is_never_used(store: Any) -> None:
    items = history(3, 4)
    session = store.session("s")
    await session.add_items(items)
    await session.put_records(
        {SUMMARY_RECORD: Summary("s", len(items) + 2, "0" * 64, 10, created_at=1.0).to_record()}
    )
    assert await session.get_window() == items
    assert not any(is_summary_item(item) for item in await session.get_window(max_tokens=500))


async def test_fork_does_not_copy_the_summary(store: Any) -> None:
    items = history(5, 6)
    session = store.session("s")
    await session.add_items(items)
    end = max(i for i, item in enumerate(items) if item.get("role") == "user")
    await stored_summary(session, items, end)
    fork = await session.fork("copy")
    assert await fork.get_record(SUMMARY_RECORD) is None
    assert await fork.get_window() == items
