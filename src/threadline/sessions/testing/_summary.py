"""Conformance tests of compaction summaries as stored (sessions of a threadline store).

A backend's ``window_since`` (its fast path, or the generic default) must agree with the
generic default on every start and budget, and the session handle over it must put a holding
summary first and drop one whose covered range a write cut into.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from ...items import Item, assistant_message, function_call, function_call_output, user_message
from .._handle import StoreSession
from .._summary import SUMMARY_RECORD, Summary, is_summary_item, item_digest, read_summary
from ..backend import StoreBackend, tail_window_of
from ..codec import estimate_tokens
from ._harness import ConformanceHarness, SessionFactory, asyncio_test

__all__ = ["SummaryTests", "long_history"]


def long_history(seed: int, turns: int) -> list[Item]:
    """``turns`` turns of random sizes, some with tool calls."""
    rng = random.Random(seed)
    items: list[Item] = []
    for turn in range(turns):
        items.append(user_message(f"q{turn} " + "x" * rng.randint(0, 300)))
        for step in range(rng.randint(0, 2)):
            call_id = f"c{turn}-{step}"
            items.append(function_call(call_id, "f", "{}"))
            items.append(function_call_output(call_id, "o" * rng.randint(0, 200)))
        items.append(assistant_message(f"a{turn} " + "y" * rng.randint(0, 300)))
    return items


def _turn_start(items: list[Item], at_least: int) -> int:
    return next(i for i in range(at_least, len(items)) if items[i].get("role") == "user")


class SummaryTests(ConformanceHarness):
    """``window_since`` and the summary-first window (stores' sessions with records)."""

    async def _store_session(self, make_session: SessionFactory, session_id: str) -> Any:
        session = await self.new(make_session, session_id)
        if not isinstance(session, StoreSession):
            pytest.skip("summaries are kept by the sessions of a threadline store")
        self.require(session, "records")
        return session

    async def _summarised(
        self, make_session: SessionFactory, session_id: str, seed: int = 7
    ) -> tuple[Any, list[Item], Summary]:
        session = await self._store_session(make_session, session_id)
        items = long_history(seed, 10)
        await session.add_items(items)
        end = _turn_start(items, len(items) // 2)
        summary = Summary(
            text="The user asked ten questions.",
            end=end,
            anchor=item_digest(items[end - 1]),
            covered_tokens=sum(estimate_tokens(item) for item in items[:end]),
            created_at=1.0,
        )
        await session.put_records({SUMMARY_RECORD: summary.to_record()})
        return session, items, summary

    @asyncio_test
    async def test_window_since_agrees_with_the_generic_default(
        self, make_session: SessionFactory
    ) -> None:
        session = await self._store_session(make_session, "summary-window-since")
        items = long_history(3, 12)
        await session.add_items(items)
        backend = session.store._backend
        sid = session.session_id
        rng = random.Random(3)
        starts = [0, 1, len(items) - 1, len(items), len(items) + 3]
        starts += [rng.randrange(len(items)) for _ in range(5)]
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
                fast = await backend.window_since(sid, start, max_items, max_tokens)
                generic = await StoreBackend.window_since(
                    backend, sid, start, max_items, max_tokens
                )
                assert fast == generic, (start, max_items, max_tokens)
                assert fast == tail_window_of(items, start, max_items, max_tokens)
        whole = await backend.window_since(sid, 4, None, None)
        assert (whole.count, whole.anchor, whole.items) == (len(items), items[3], items[4:])
        assert whole.tail_tokens == sum(estimate_tokens(item) for item in items[4:])
        missing = await backend.window_since(sid + "-none", 2, None, None)
        assert (missing.count, missing.anchor, missing.items, missing.tail_tokens) == (
            0,
            None,
            [],
            0,
        )

    @asyncio_test
    async def test_the_window_is_the_summary_then_the_turns_after_it(
        self, make_session: SessionFactory
    ) -> None:
        session, items, summary = await self._summarised(make_session, "summary-window")
        backend = session.store._backend
        assert await read_summary(session) == summary
        assert await session.get_window() == [summary.item, *items[summary.end :]]
        assert await session.get_items() == items  # every raw item stays
        for budget in (summary.tokens, summary.tokens + 150, 600, 5000):
            window = await session.get_window(max_tokens=budget)
            assert window[0] == summary.item
            assert sum(estimate_tokens(item) for item in window) <= budget
            rest = await backend.window_since(
                session.session_id, summary.end, None, budget - summary.tokens
            )
            assert window[1:] == rest.items
        for most in (None, 3):  # the backend's one-read path agrees with the generic one

            def start_for(payload: Any, most: int | None = most) -> Any:
                return (summary.end, most, None)

            fast = await backend.window_after_record(
                session.session_id, SUMMARY_RECORD, most, None, start_for
            )
            generic = await StoreBackend.window_after_record(
                backend, session.session_id, SUMMARY_RECORD, most, None, start_for
            )
            assert fast == generic and fast[0] is not None
        three = await session.get_window(max_items=3)
        assert three[0] == summary.item and len(three) <= 3
        # a budget the summary does not fit: the plain window, without the summary
        small = await session.get_window(max_tokens=summary.tokens - 1)
        assert small == await backend.window(session.session_id, None, summary.tokens - 1)

    @asyncio_test
    async def test_clear_and_replace_drop_the_summary(self, make_session: SessionFactory) -> None:
        session, items, _ = await self._summarised(make_session, "summary-clear")
        await session.clear_session()
        await session.add_items(items)  # the same items again: no stale summary
        assert await session.get_record(SUMMARY_RECORD) is None
        other, items, _ = await self._summarised(make_session, "summary-replace")
        await other.replace_items(items)
        assert await other.get_record(SUMMARY_RECORD) is None
        assert await other.get_window() == items

    @asyncio_test
    async def test_a_pop_into_the_covered_range_drops_the_summary(
        self, make_session: SessionFactory
    ) -> None:
        session, items, summary = await self._summarised(make_session, "summary-pop")
        count = len(items)
        while count > summary.end:  # undo the turns after the covered range: it stays
            count -= len(await session.pop_turn())
            assert await read_summary(session) == summary
        await session.pop_turn()
        assert await session.get_record(SUMMARY_RECORD) is None
        other, items, summary = await self._summarised(make_session, "summary-pop-item")
        for _ in range(len(items) - summary.end):
            await other.pop_item()
        assert await read_summary(other) == summary
        await other.pop_item()
        assert await other.get_record(SUMMARY_RECORD) is None

    @asyncio_test
    async def test_a_summary_whose_range_changed_is_never_used(
        self, make_session: SessionFactory
    ) -> None:
        session = await self._store_session(make_session, "summary-stale")
        items = long_history(5, 4)
        await session.add_items(items)
        past = Summary("s", len(items) + 2, "0" * 64, 10, created_at=1.0)
        await session.put_records({SUMMARY_RECORD: past.to_record()})
        assert await session.get_window() == items
        wrong = Summary("s", _turn_start(items, 1), "0" * 64, 10, created_at=1.0)
        await session.put_records({SUMMARY_RECORD: wrong.to_record()})
        assert not any(is_summary_item(i) for i in await session.get_window(max_tokens=500))

    @asyncio_test
    async def test_fork_does_not_copy_the_summary(self, make_session: SessionFactory) -> None:
        session, items, _ = await self._summarised(make_session, "summary-fork")
        self.require(session, "fork")
        fork = await session.fork("summary-fork-copy")
        assert await fork.get_record(SUMMARY_RECORD) is None
        assert await fork.get_window() == items
