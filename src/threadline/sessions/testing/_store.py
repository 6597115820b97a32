"""Store-level conformance tests: listing, deletion, search, stats, life cycle, fenced leases.

They run on stores opened by the suite's ``stores`` fixture, so a test may open a second
store on the same storage (as a second process would) when the backend declares ``"shared"``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ...errors import CorruptItemError, LeaseLostError, SessionBusyError, SessionError, UserError
from ...items import assistant_message, function_call, function_call_output, user_message
from ..backend import Fence, ReadPlan
from ..base import SessionSettings
from ..codec import encode_items
from ..lease import NoSuchSession, fenced_lease
from ._harness import ConformanceHarness, asyncio_test, sample_history

__all__ = ["StoreOpener", "StoreTests"]

StoreOpener = Callable[[], Awaitable[Any]]
"""Opens another store on this test's storage (the suite closes it after the test)."""

LEASE_TTL = 0.4
"""The short lease ttl of the lease tests, in seconds."""


class StoreTests(ConformanceHarness):
    """The store-level tests (see the module docstring)."""

    # ------------------------------------------------------------------ hooks for a backend

    async def corrupt_item(self, store: Any, session_id: str, position: int) -> None:
        """Override: make the stored item at ``position`` undecodable (bypassing the store)."""
        pytest.skip("the test class does not implement corrupt_item()")

    async def make_schema_newer(self, store: Any) -> None:
        """Override: mark the storage as written by a newer schema than this code knows."""
        pytest.skip("the test class does not implement make_schema_newer()")

    def require_store(self, store: Any, capability: str) -> None:
        """Skip the current test unless ``store`` declares ``capability``."""
        if capability not in store.capabilities:
            pytest.skip(f"the store does not offer {capability!r}")

    # ------------------------------------------------------------------ listing

    @asyncio_test
    async def test_list_sessions_newest_first(self, store: Any) -> None:
        assert list(await store.list_sessions()) == []
        for session_id, count in [("one", 1), ("two", 3), ("three", 2)]:
            await store.session(session_id).add_items(sample_history()[:count])
        await store.session("one").add_items([user_message("again")])
        page = await store.list_sessions()
        assert [(i.session_id, i.item_count) for i in page] == [
            ("one", 2),
            ("three", 2),
            ("two", 3),
        ]
        assert not page.has_more and page.next_cursor is None
        first = page[0]
        assert first.created_at.tzinfo is not None
        assert first.updated_at >= first.created_at
        assert abs(first.updated_at.timestamp() - time.time()) < 300

    @asyncio_test
    async def test_list_sessions_pages_by_cursor(self, store: Any) -> None:
        ids = [f"page-{number}" for number in range(7)]
        for session_id in ids:
            await store.session(session_id).add_items([user_message(session_id)])
        seen: list[str] = []
        cursor = None
        sizes = []
        while True:
            page = await store.list_sessions(limit=3, after=cursor)
            sizes.append(len(page))
            seen += [info.session_id for info in page]
            if not page.has_more:
                break
            cursor = page.next_cursor
        assert sizes == [3, 3, 1]
        assert seen == list(reversed(ids))
        assert len(await store.list_sessions(limit=0)) == 0
        assert [i.session_id for i in await store.list_sessions(limit=50)] == seen

    @pytest.mark.parametrize("after", ["not a cursor", "x:y:z", "-"])
    @asyncio_test
    async def test_list_sessions_refuses_a_foreign_cursor(self, store: Any, after: str) -> None:
        await store.session("s").add_items([user_message("x")])
        with pytest.raises(UserError, match="cursor"):
            await store.list_sessions(limit=1, after=after)

    @pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
    @asyncio_test
    async def test_list_sessions_refuses_a_bad_limit(self, store: Any, limit: Any) -> None:
        with pytest.raises(UserError, match="limit"):
            await store.list_sessions(limit=limit)

    @asyncio_test
    async def test_listed_ids_are_exact(self, store: Any) -> None:
        tricky = ["it's", "用户🙂", "  spaced  ", "a/b\\c", "'; DROP TABLE x; --"]
        for session_id in tricky:
            await store.session(session_id).add_items([user_message("x")])
        assert sorted(i.session_id for i in await store.list_sessions()) == sorted(tricky)

    @asyncio_test
    async def test_session_info_of_one_session(self, store: Any) -> None:
        assert await store.session_info("nobody") is None
        await store.session("someone").add_items(sample_history()[:4])
        info = await store.session_info("someone")
        assert (info.session_id, info.item_count) == ("someone", 4)
        assert info == (await store.list_sessions())[0]
        await store.session("someone").clear_session()
        assert (await store.session_info("someone")).item_count == 0
        await store.delete_session("someone")
        assert await store.session_info("someone") is None
        with pytest.raises(UserError, match="session_id"):
            await store.session_info("")

    # ------------------------------------------------------------------ clear, replace, delete

    @asyncio_test
    async def test_clear_keeps_the_session(self, store: Any) -> None:
        session = store.session("kept")
        await session.add_items(sample_history())
        created = (await store.list_sessions())[0].created_at
        await asyncio.sleep(0.01)
        await session.clear_session()
        listed = await store.list_sessions()
        assert [(i.session_id, i.item_count) for i in listed] == [("kept", 0)]
        assert listed[0].created_at == created
        assert listed[0].updated_at > created
        assert await session.get_items() == []
        await session.add_items([user_message("again")])
        assert await session.get_items() == [user_message("again")]
        await store.session("never-written").clear_session()
        assert [i.session_id for i in await store.list_sessions()] == ["kept"]

    @asyncio_test
    async def test_replace_keeps_the_session(self, store: Any) -> None:
        self.require_store(store, "replace")
        session = store.session("replaced")
        await session.add_items(sample_history())
        created = (await store.list_sessions())[0].created_at
        await session.replace_items([user_message("summary")])
        await session.replace_items([])
        listed = await store.list_sessions()
        assert [(i.session_id, i.item_count) for i in listed] == [("replaced", 0)]
        assert listed[0].created_at == created

    @asyncio_test
    async def test_delete_session(self, store: Any) -> None:
        await store.session("doomed").add_items(sample_history())
        await store.session("other").add_items([user_message("stays")])
        assert await store.delete_session("doomed") is True
        assert await store.delete_session("doomed") is False
        assert await store.delete_session("never-was") is False
        assert [i.session_id for i in await store.list_sessions()] == ["other"]
        assert await store.session("doomed").get_items() == []
        assert await store.session("other").get_items() == [user_message("stays")]
        await store.session("doomed").add_items([user_message("reborn")])
        assert await store.session("doomed").get_items() == [user_message("reborn")]
        with pytest.raises(UserError, match="session_id"):
            await store.delete_session("")

    @asyncio_test
    async def test_records_go_with_the_session(self, stores: StoreOpener) -> None:
        store = await stores()
        self.require_store(store, "records")
        session = store.session("records-owner")
        await session.put_records({"meta": {"title": "only records"}})
        listed = await store.session_info("records-owner")
        assert listed is not None and listed.item_count == 0  # records made the session
        if "shared" in store.capabilities:
            other = await stores()
            assert await other.session("records-owner").get_record("meta") == {
                "title": "only records"
            }
        assert await store.delete_session("records-owner") is True
        assert await session.list_records() == {}
        assert await store.session_info("records-owner") is None

    @asyncio_test
    async def test_pairing_summary_counts_unanswered_calls_in_the_whole_session(
        self, store: Any
    ) -> None:
        def pair(n: int) -> list[Any]:
            return [function_call(f"c{n}", "f", "{}"), function_call_output(f"c{n}", "ok")]

        healthy = [user_message("q"), *[item for n in range(30) for item in pair(n)]]
        await store.session("healthy").add_items(healthy)
        # the lone call is the oldest item, far outside any "newest 20" tail
        old_call = [function_call("lost", "f", "{}"), *healthy]
        await store.session("old-call").add_items(old_call)
        reversed_pair = [function_call_output("r1", "early"), function_call("r1", "f", "{}")]
        await store.session("reversed").add_items([user_message("q"), *reversed_pair])
        await store.session("empty").add_items([user_message("q")])
        ids = ["healthy", "old-call", "reversed", "empty", "missing"]
        found = await store.pairing_summary(ids)
        assert sorted(found) == ["empty", "healthy", "old-call", "reversed"]
        assert found["healthy"].paired and found["empty"].paired
        assert (found["old-call"].lone_calls, found["old-call"].lone_outputs) == (1, 0)
        assert (found["reversed"].lone_calls, found["reversed"].lone_outputs) == (1, 1)
        assert found["old-call"].session_id == "old-call"
        if "fork" in store.capabilities:
            fork = await store.session("old-call").fork("old-call-fork")
            await fork.add_items([function_call_output("lost", "late")])  # answered, but late
            assert (await store.pairing_summary(["old-call-fork"]))["old-call-fork"].paired
        assert await store.pairing_summary([]) == {}

    @asyncio_test
    async def test_stats_count_sessions_and_items(self, store: Any) -> None:
        empty = await store.stats()
        assert (empty.sessions, empty.items) == (0, 0)
        await store.session("a").add_items(sample_history())
        await store.session("b").add_items(sample_history()[:3])
        await store.session("c").add_items([user_message("x")])
        await store.session("c").clear_session()
        stats = await store.stats()
        assert (stats.sessions, stats.items) == (3, 13)
        assert isinstance(stats.details, dict)

    # ------------------------------------------------------------------ search

    async def _search_corpus(self, store: Any) -> None:
        await store.session("trip").add_items(
            [
                user_message("What city is the Golden Gate Bridge in?"),
                assistant_message("San Francisco."),
                user_message("Is the bridge painted GOLD?"),
                assistant_message("No: it is International Orange."),
            ]
        )
        await store.session("cafe").add_items(
            [
                user_message("Où est le café?"),
                function_call("call_9", "find_place", '{"query": "golden bakery"}'),
                function_call_output("call_9", "Golden Crust Bakery, 2 blocks away"),
                assistant_message("There is a bakery two blocks away."),
            ]
        )

    @asyncio_test
    async def test_search_finds_every_word_across_sessions(self, store: Any) -> None:
        self.require_store(store, "search")
        await self._search_corpus(store)
        hits = await store.search("golden gate")
        assert [(h.session_id, h.position) for h in hits] == [("trip", 0)]
        hit = hits[0]
        assert hit.item == user_message("What city is the Golden Gate Bridge in?")
        assert "**Golden**" in hit.snippet and "**Gate**" in hit.snippet
        golden = await store.search("golden", limit=10)
        assert sorted((h.session_id, h.position) for h in golden) == [
            ("cafe", 1),
            ("cafe", 2),
            ("trip", 0),
        ]
        assert await store.search("nowhere-to-be-found") == []

    @asyncio_test
    async def test_search_matches_whole_words_ignoring_case_and_accents(self, store: Any) -> None:
        self.require_store(store, "search")
        await self._search_corpus(store)
        assert [(h.session_id, h.position) for h in await store.search("CAFE")] == [("cafe", 0)]
        assert [(h.session_id, h.position) for h in await store.search("café")] == [("cafe", 0)]
        assert [(h.session_id, h.position) for h in await store.search("gold")] == [("trip", 2)]
        assert await store.search("franc") == []

    @asyncio_test
    async def test_search_limit_and_one_session(self, store: Any) -> None:
        self.require_store(store, "search")
        await self._search_corpus(store)
        assert len(await store.search("golden", limit=1)) == 1
        only = await store.search("golden", session_id="cafe", limit=10)
        assert sorted(h.position for h in only) == [1, 2]
        assert {h.session_id for h in only} == {"cafe"}
        assert await store.search("golden", session_id="no-such-session") == []
        with pytest.raises(UserError, match="limit"):
            await store.search("golden", limit=0)

    @pytest.mark.parametrize(
        "query", ['"golden', "golden*", "golden AND", "NEAR(golden)", "-golden", "col:golden"]
    )
    @asyncio_test
    async def test_search_text_is_words_not_syntax(self, store: Any, query: str) -> None:
        self.require_store(store, "search")
        await self._search_corpus(store)
        hits = await store.search(query, limit=10)
        expected = {("cafe", 1), ("cafe", 2), ("trip", 0)}
        if query in ("golden AND", "NEAR(golden)", "col:golden"):
            expected = set()  # every word must match, "and" / "near" / "col" included
        assert {(h.session_id, h.position) for h in hits} == expected

    @pytest.mark.parametrize("query", ["", "   ", "?!", 7])
    @asyncio_test
    async def test_search_without_words_is_a_user_error(self, store: Any, query: Any) -> None:
        self.require_store(store, "search")
        with pytest.raises(UserError):
            await store.search(query)

    @asyncio_test
    async def test_search_forgets_removed_items(self, store: Any) -> None:
        self.require_store(store, "search")
        session = store.session("forget")
        await session.add_items([user_message("alpha one"), user_message("beta two")])
        await session.add_items([user_message("gamma three")])
        await session.pop_item()
        assert await store.search("gamma") == []
        assert len(await store.search("beta")) == 1
        if "pop_turn" in store.capabilities:
            await session.pop_turn()
            assert await store.search("beta") == []
        await session.clear_session()
        assert await store.search("alpha") == []
        await session.add_items([user_message("delta four")])
        if "replace" in store.capabilities:
            await session.replace_items([user_message("epsilon five")])
            assert await store.search("delta") == []
            assert [h.position for h in await store.search("epsilon")] == [0]
        await store.delete_session("forget")
        assert await store.search("epsilon") == []

    @asyncio_test
    async def test_search_sees_forks(self, store: Any) -> None:
        self.require_store(store, "search")
        self.require_store(store, "fork")
        session = store.session("origin")
        await session.add_items([user_message("shared words"), user_message("later words")])
        await session.fork("branch", at=1)
        hits = await store.search("shared", limit=10)
        assert sorted((h.session_id, h.position) for h in hits) == [("branch", 0), ("origin", 0)]
        assert [(h.session_id, h.position) for h in await store.search("later")] == [("origin", 1)]

    # ------------------------------------------------------------------ life cycle, bad data

    @asyncio_test
    async def test_closed_store_raises(self, stores: StoreOpener) -> None:
        store = await stores()
        session = store.session("s")
        await session.add_items([user_message("x")])
        await store.aclose()
        await store.aclose()  # closing twice is fine
        with pytest.raises(SessionError, match="closed"):
            await session.get_items()
        with pytest.raises(SessionError, match="closed"):
            await session.add_items([user_message("y")])
        with pytest.raises(SessionError, match="closed"):
            await store.list_sessions()
        with pytest.raises(SessionError, match="closed"):
            store.session("t")

    @asyncio_test
    async def test_corrupt_item_is_reported_not_skipped(self, store: Any) -> None:
        session = store.session("victim")
        history = sample_history()
        await session.add_items(history)
        await self.corrupt_item(store, "victim", 2)
        reads = [session.get_items(), session.get_items(limit=9)]
        if "window" in store.capabilities:
            reads.append(session.get_window(max_items=9))
        for read in reads:
            with pytest.raises(CorruptItemError) as caught:
                await read
            assert caught.value.session_id == "victim"
            assert caught.value.position == 2
        assert await session.get_items(limit=7) == history[3:]

    @asyncio_test
    async def test_newer_schema_is_refused(self, stores: StoreOpener) -> None:
        first = await stores()
        await first.setup()
        await self.make_schema_newer(first)
        second = await stores()
        with pytest.raises(SessionError, match=r"newer|upgrade"):
            await second.setup()
        with pytest.raises(SessionError, match=r"newer|upgrade"):
            await second.session("s").add_items([user_message("x")])

    # ------------------------------------------------------------------ the fenced lease

    def _leased(self, store: Any, session_id: str) -> Any:
        return store.session(session_id, session_settings=SessionSettings(lease_ttl=LEASE_TTL))

    @asyncio_test
    async def test_epochs_increase_with_every_holder(self, store: Any) -> None:
        self.require_store(store, "lease")
        session = self._leased(store, "epochs")
        epochs = []
        for _ in range(3):
            async with session.lease() as lease:
                epochs.append(lease.epoch)
        assert epochs == sorted(set(epochs)) and len(epochs) == 3

    @asyncio_test
    async def test_lease_excludes_other_stores(self, stores: StoreOpener) -> None:
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        mine, theirs = self._leased(first, "shared"), self._leased(second, "shared")
        async with mine.lease():
            with pytest.raises(SessionBusyError) as caught:
                async with theirs.lease(wait=False):
                    pass
            assert caught.value.expires_in is not None
            await asyncio.sleep(LEASE_TTL * 1.5)  # renewals keep a live holder's lease
            with pytest.raises(SessionBusyError):
                async with theirs.lease(timeout=0.05):
                    pass
            await mine.add_items([user_message("still mine")])
        async with theirs.lease(timeout=5):
            await theirs.add_items([user_message("now theirs")])
        assert await mine.get_items() == [user_message("still mine"), user_message("now theirs")]

    @asyncio_test
    async def test_lease_holders_reports_a_holder_in_another_store(
        self, stores: StoreOpener
    ) -> None:
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        mine = self._leased(first, "held-elsewhere")
        await second.session("free-one").add_items([user_message("no lease")])
        ids = ["held-elsewhere", "free-one", "never-made"]
        async with mine.lease() as lease:
            holders = await second.lease_holders(ids)
            assert list(holders) == ["held-elsewhere"]
            found = holders["held-elsewhere"]
            assert found.session_id == "held-elsewhere" and found.epoch == lease.epoch
            assert found.owner and found.holder and " (" not in found.holder
            assert 0 < found.expires_in() <= LEASE_TTL + 1
            again = await second.session("held-elsewhere").lease_holder()
            assert again is not None and (again.owner, again.epoch) == (found.owner, found.epoch)
            assert await second.session("free-one").lease_holder() is None
        assert await second.lease_holders(ids) == {}  # released
        assert await first.lease_holders([]) == {}

    @asyncio_test
    async def test_a_lease_taken_only_on_an_existing_session_reads_its_count(
        self, store: Any
    ) -> None:
        self.require_store(store, "lease")
        backend = store._backend
        with pytest.raises(NoSuchSession):
            async with fenced_lease(backend, store, "never-made", ttl=LEASE_TTL, existing=True):
                pass
        assert await store.lease_holders(["never-made"]) == {}
        assert await store.session_info("never-made") is None
        session = self._leased(store, "made")
        await session.add_items([user_message("one"), user_message("two")])
        async with fenced_lease(backend, store, "made", ttl=LEASE_TTL, existing=True) as held:
            assert held.info is not None and held.info.item_count == 2
            assert (await store.lease_holders(["made"]))["made"].epoch == held.epoch
            await session.add_items([user_message("three")])  # carries this lease's fence
            with pytest.raises(SessionBusyError):
                async with session.lease(wait=False):
                    pass
        assert [item["content"] for item in await session.get_items()] == ["one", "two", "three"]
        async with session.lease(wait=False):  # released
            pass

    @asyncio_test
    async def test_a_last_write_can_end_its_lease_in_the_same_write(self, store: Any) -> None:
        self.require_store(store, "lease")
        backend = store._backend
        session = self._leased(store, "ending")
        session._last_write_ends_lease = True  # as the server's request handles do
        await session.add_items([user_message("one")])
        records = {"note": "two"} if "records" in store.capabilities else None
        async with session.lease() as held:
            await session._add_run_items([user_message("two")], records=records, last=True)
            assert await store.lease_holders(["ending"]) == {}
            async with session.lease(wait=False) as other:  # free at once, in this process too
                assert other.epoch > held.epoch
                late = encode_items([user_message("late")], store.codec, "ending")
                with pytest.raises(LeaseLostError):  # the old fence: refused, nothing released
                    await backend.append_and_release("ending", late, held.fence)
                assert (await store.lease_holders(["ending"]))["ending"].epoch == other.epoch
            await session.add_items([user_message("three")])  # after it: unfenced
        assert [item["content"] for item in await session.get_items()] == ["one", "two", "three"]
        if records:
            assert await session.get_record("note") == "two"
        async with session.lease(wait=False):
            await session._add_run_items([user_message("four")], records=None, last=False)
            assert len(await store.lease_holders(["ending"])) == 1  # not the last: still held

    @asyncio_test
    async def test_a_lease_taken_with_a_start_read_reads_under_it(self, store: Any) -> None:
        self.require_store(store, "lease")
        self.require_store(store, "records")
        backend = store._backend
        session = self._leased(store, "started")
        await session.add_items([user_message(f"m{n}") for n in range(4)])
        await session.put_records({"usage": {"turns": 2}})

        def budget(found: Any) -> tuple[int | None, int | None]:
            return 3, None

        expected = await session._window_and_records(("usage",), budget)
        async with session._lease_and_start(False, None, LEASE_TTL, ("usage",), budget) as (
            held,
            start,
        ):
            assert start == expected
            assert (await store.lease_holders(["started"]))["started"].epoch == held.epoch
            plan = ReadPlan(["usage"], "threadline.summary", budget, lambda *_: None)
            other = await backend.lease_acquire_and_read(
                "started", "someone else", LEASE_TTL, False, plan
            )
            assert other is not None
            grant, _, read = other
            assert not grant.acquired and read is None  # busy: nothing read, nothing taken
            await session.add_items([user_message("under")])  # fenced by it
        assert await store.lease_holders(["started"]) == {}
        assert await backend.lease_acquire_and_read("never", "x", LEASE_TTL, True, plan) is None
        assert await store.lease_holders(["never"]) == {}
        found = await backend.lease_acquire_and_read("started", "me", LEASE_TTL, True, plan)
        assert found is not None
        grant, info, read = found
        assert grant.acquired and info is not None and info.item_count == 5
        assert read is not None and read[3] == 5 and read[0] == {"usage": read[0]["usage"]}
        await backend.lease_release("started", Fence("me", grant.epoch))
        assert await store.lease_holders(["started"]) == {}

    @asyncio_test
    async def test_lease_holders_forgets_an_expired_lease(self, store: Any) -> None:
        self.require_store(store, "lease")
        session = self._leased(store, "expiring")
        async with session.lease() as held:
            assert (await store.lease_holders(["expiring"]))["expiring"].epoch == held.epoch
            held.suspend_renewal()  # as a holder that died would
            deadline = time.monotonic() + LEASE_TTL + 5
            while await session.lease_holder() is not None:
                assert time.monotonic() < deadline, "an expired lease is still reported"
                await asyncio.sleep(0.05)
        with pytest.raises(UserError, match="session_id"):
            await store.lease_holders([""])

    @asyncio_test
    async def test_waiter_in_another_store_gets_the_lease_on_release(
        self, stores: StoreOpener
    ) -> None:
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        mine, theirs = self._leased(first, "handover"), self._leased(second, "handover")
        order: list[str] = []

        async def wait_for_it() -> None:
            async with theirs.lease(timeout=5):
                order.append("theirs")

        async with mine.lease():
            waiter = asyncio.ensure_future(wait_for_it())
            await asyncio.sleep(0.1)
            order.append("mine")
        await waiter
        assert order == ["mine", "theirs"]

    @asyncio_test
    async def test_dead_holder_is_taken_over(self, stores: StoreOpener) -> None:
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        dead, alive = self._leased(first, "takeover"), self._leased(second, "takeover")
        async with dead.lease() as stalled:
            stalled.suspend_renewal()  # as a holder that died would
            started = time.monotonic()
            async with alive.lease(timeout=10) as taken:
                waited = time.monotonic() - started
                assert taken.epoch > stalled.epoch
            assert LEASE_TTL * 0.5 < waited < LEASE_TTL + 5

    @asyncio_test
    async def test_stalled_holder_is_fenced_off(self, stores: StoreOpener) -> None:
        """Pause the holder past its ttl, let another take over and write, then resume it."""
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        stale, fresh = self._leased(first, "fenced"), self._leased(second, "fenced")
        await stale.add_items([user_message("before")])
        async with stale.lease() as paused:
            await stale.add_items([user_message("stale turn starts")])
            paused.suspend_renewal()
            async with fresh.lease(timeout=10):
                await fresh.add_items([user_message("fresh turn"), assistant_message("fresh")])
            paused.resume_renewal()
            with pytest.raises(LeaseLostError, match="lost its writer lease"):
                await stale.add_items([assistant_message("stale step")])
            writes: list[Callable[[], Awaitable[Any]]] = [
                stale.pop_item,
                stale.clear_session,
            ]
            if "pop_turn" in first.capabilities:
                writes.append(stale.pop_turn)
            if "replace" in first.capabilities:
                writes.append(lambda: stale.replace_items([user_message("overwrite")]))
            if "records" in first.capabilities:
                writes.append(lambda: stale.put_records({"meta": "stale"}))
                writes.append(
                    lambda: stale.add_items([assistant_message("x")], records={"meta": "stale"})
                )
            for write in writes:
                with pytest.raises(LeaseLostError):
                    await write()
        expected = [
            user_message("before"),
            user_message("stale turn starts"),
            user_message("fresh turn"),
            assistant_message("fresh"),
        ]
        assert await fresh.get_items() == expected
        async with fresh.lease(wait=False):  # the stale holder's exit released nothing of ours
            pass

    @asyncio_test
    async def test_stale_release_leaves_the_new_holder_alone(self, stores: StoreOpener) -> None:
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        stale, fresh = self._leased(first, "release"), self._leased(second, "release")
        async with stale.lease() as paused:
            paused.suspend_renewal()
            entered = asyncio.Event()
            finish = asyncio.Event()

            async def hold() -> None:
                async with fresh.lease(timeout=10):
                    entered.set()
                    await finish.wait()
                    await fresh.add_items([user_message("fresh holder writes")])

            holder = asyncio.ensure_future(hold())
            await asyncio.wait_for(entered.wait(), 10)
        # The stale lease's exit ran while the fresh holder still holds the session.
        with pytest.raises(SessionBusyError):
            async with stale.lease(wait=False):
                pass
        finish.set()
        await holder
        assert await stale.get_items() == [user_message("fresh holder writes")]

    @asyncio_test
    async def test_writes_without_a_lease_are_not_fenced(self, stores: StoreOpener) -> None:
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        holder, outsider = self._leased(first, "open"), second.session("open")
        async with holder.lease():
            await outsider.add_items([user_message("outside any lease")])
            await holder.add_items([user_message("holder")])
        assert [item["content"] for item in await outsider.get_items()] == [
            "outside any lease",
            "holder",
        ]

    @asyncio_test
    async def test_lease_ttl_comes_from_the_argument(self, stores: StoreOpener) -> None:
        first, second = await stores(), await stores()
        self.require_store(first, "shared")
        long_lived = first.session("ttl", session_settings=SessionSettings(lease_ttl=60))
        other = second.session("ttl")
        async with long_lived.lease(ttl=LEASE_TTL) as lease:
            assert lease.ttl == LEASE_TTL
            lease.suspend_renewal()
            async with other.lease(timeout=10):
                pass
        with pytest.raises(UserError, match="ttl"):
            async with other.lease(ttl=0):
                pass
