"""Store-level conformance tests of retention: per-session TTLs and ``store.prune``."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from ...errors import UserError
from ...items import user_message
from ._harness import ConformanceHarness, asyncio_test

__all__ = ["RetentionTests"]

DAY = 86_400.0


class RetentionTests(ConformanceHarness):
    """``session.set_ttl`` / ``get_ttl`` and ``store.prune(idle_for=..., dry_run=...)``."""

    @asyncio_test
    async def test_prune_by_idle_time(self, store: Any) -> None:
        for session_id in ("old-1", "old-2"):
            await store.session(session_id).add_items([user_message("hi"), user_message("x")])
        assert (await store.prune(idle_for=timedelta(days=30))).sessions == []
        await asyncio.sleep(0.5)
        await store.session("fresh").add_items([user_message("new")])
        fresh = await store.session_info("fresh")
        now = fresh.updated_at.timestamp() + 0.1  # old ones idle >= 0.6 s, fresh 0.1 s
        dry = await store.prune(idle_for=0.3, dry_run=True, now=now)
        assert sorted(dry.sessions) == ["old-1", "old-2"] and dry.items == 4 and dry.dry_run
        assert await store.session_info("old-1") is not None  # a dry run removes nothing
        removed = await store.prune(idle_for=timedelta(seconds=0.3), now=now)
        assert sorted(removed.sessions) == ["old-1", "old-2"]
        assert removed.items == 4 and not removed.dry_run
        assert [i.session_id for i in await store.list_sessions()] == ["fresh"]
        removed = await store.prune(idle_for=30 * DAY, now=now + 31 * DAY)
        assert removed.sessions == ["fresh"]
        assert list(await store.list_sessions()) == []

    @asyncio_test
    async def test_per_session_ttls_win(self, store: Any) -> None:
        if "records" not in store.capabilities:
            pytest.skip("the store does not offer 'records'")
        short, long, plain = (store.session(s) for s in ("ttl-short", "ttl-long", "ttl-none"))
        for session in (short, long, plain):
            await session.add_items([user_message("hi")])
        await short.set_ttl(timedelta(hours=1))
        await long.set_ttl(timedelta(days=365))
        assert await short.get_ttl() == timedelta(hours=1)
        assert await plain.get_ttl() is None
        now = time.time()
        result = await store.prune(now=now + 2 * 3600)  # no idle_for: only TTLs expire
        assert result.sessions == ["ttl-short"]
        result = await store.prune(idle_for=timedelta(days=30), now=now + 40 * DAY)
        assert result.sessions == ["ttl-none"]  # ttl-long keeps its year
        await long.set_ttl(None)
        assert await long.get_ttl() is None
        result = await store.prune(idle_for=timedelta(days=30), now=now + 40 * DAY)
        assert result.sessions == ["ttl-long"]

    @asyncio_test
    async def test_pruning_removes_records_with_the_session(self, store: Any) -> None:
        if "records" not in store.capabilities:
            pytest.skip("the store does not offer 'records'")
        session = store.session("pruned-records")
        await session.add_items([user_message("hi")])
        await session.put_records({"summary/1": {"covers": [0, 1], "text": "hi"}})
        await session.set_metadata({"title": "gone"})
        result = await store.prune(idle_for=1, now=time.time() + 60)
        assert result.sessions == ["pruned-records"]
        assert await session.list_records() == {}
        assert await session.get_items() == []

    @asyncio_test
    async def test_a_session_in_use_is_not_pruned(self, store: Any) -> None:
        session = store.session("busy-prune")
        await session.add_items([user_message("hi")])
        entered, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with session.lease():
                entered.set()
                await release.wait()

        task = asyncio.ensure_future(holder())
        await entered.wait()
        try:
            result = await store.prune(idle_for=1, now=time.time() + 60)
        finally:
            release.set()
            await task
        assert result.sessions == [] and result.busy == ["busy-prune"]
        assert await session.get_items() == [user_message("hi")]

    @pytest.mark.parametrize("bad", [0, -5, float("nan"), "30d", timedelta(0)])
    @asyncio_test
    async def test_bad_durations_are_refused(self, store: Any, bad: Any) -> None:
        with pytest.raises(UserError, match="idle_for"):
            await store.prune(idle_for=bad)
        if "records" in store.capabilities:
            with pytest.raises(UserError, match="ttl"):
                await store.session("bad-ttl").set_ttl(bad)
