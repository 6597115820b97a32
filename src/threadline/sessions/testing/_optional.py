"""Conformance tests of the optional capabilities: windows, pop_turn, replace, fork, lease.

Each test skips itself when the backend does not offer the capability it checks.
"""

from __future__ import annotations

import asyncio

import pytest

from ...errors import SessionBusyError, UserError
from ...items import assistant_message, function_call, function_call_output, user_message
from ..lease import writer_lease
from ._harness import ConformanceHarness, SessionFactory, asyncio_test, sample_history
from ._metadata import LineageTests, MetadataTests, UsageTests
from ._records import RecordTests
from ._reference import check_window, reference_pop_turn, reference_window
from ._summary import SummaryTests

__all__ = ["OptionalCapabilityTests"]


class OptionalCapabilityTests(
    RecordTests, SummaryTests, MetadataTests, UsageTests, LineageTests, ConformanceHarness
):
    """The tests of every optional capability (see :data:`~threadline.sessions.CAPABILITIES`)."""

    # ------------------------------------------------------------------ get_window

    @asyncio_test
    async def test_window_without_budget_is_everything(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "window-all")
        self.require(session, "window")
        assert await session.get_window() == []
        await session.add_items(sample_history())
        assert await session.get_window() == sample_history()

    @pytest.mark.parametrize("max_items", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    @asyncio_test
    async def test_window_by_items(self, make_session: SessionFactory, max_items: int) -> None:
        session = await self.new(make_session, "window-items")
        self.require(session, "window")
        history = sample_history()
        await session.add_items(history)
        window = await session.get_window(max_items=max_items)
        assert window == reference_window(history, max_items=max_items)
        check_window(history, window, max_items=max_items)

    @asyncio_test
    async def test_window_cuts_at_turns_and_keeps_pairs(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "window-rules")
        self.require(session, "window")
        history = sample_history()
        await session.add_items(history)
        assert await session.get_window(max_items=4) == history[-4:]  # starts at the user turn
        assert await session.get_window(max_items=6) == history[-4:]  # turn 2 does not fit whole
        assert await session.get_window(max_items=8) == history[2:]
        tool_turn = [
            user_message("compare"),
            function_call("a", "f", "{}"),
            function_call("b", "f", "{}"),
            function_call_output("a", "1"),
            function_call_output("b", "2"),
            assistant_message("done"),
        ]
        tools = await self.new(make_session, "window-tools")
        await tools.add_items(tool_turn)
        assert await tools.get_window(max_items=3) == tool_turn[-1:]  # outputs need their calls
        assert await tools.get_window(max_items=5) == tool_turn[-5:]
        assert await tools.get_window(max_items=6) == tool_turn

    @pytest.mark.parametrize("max_tokens", [0, 5, 20, 40, 60, 90, 120, 1000])
    @asyncio_test
    async def test_window_by_tokens(self, make_session: SessionFactory, max_tokens: int) -> None:
        session = await self.new(make_session, "window-tokens")
        self.require(session, "window")
        history = sample_history()
        await session.add_items(history)
        window = await session.get_window(max_tokens=max_tokens)
        assert window == reference_window(history, max_tokens=max_tokens)
        check_window(history, window, max_tokens=max_tokens)
        both = await session.get_window(max_items=3, max_tokens=max_tokens)
        assert both == reference_window(history, max_items=3, max_tokens=max_tokens)

    @pytest.mark.parametrize("field", ["max_items", "max_tokens"])
    @asyncio_test
    async def test_negative_window_budget_is_a_user_error(
        self, make_session: SessionFactory, field: str
    ) -> None:
        session = await self.new(make_session, "window-negative")
        self.require(session, "window")
        with pytest.raises(UserError, match=field):
            await session.get_window(**{field: -1})

    # ------------------------------------------------------------------ pop_turn

    @asyncio_test
    async def test_pop_turn_undoes_the_last_turn(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "pop-turn")
        self.require(session, "pop_turn")
        assert await session.pop_turn() == []
        history = sample_history()
        await session.add_items(history)
        model = list(history)
        for _ in range(4):
            assert await session.pop_turn() == reference_pop_turn(model)
            assert await session.get_items() == model
        assert model == []

    @asyncio_test
    async def test_pop_turn_without_user_message_removes_nothing(
        self, make_session: SessionFactory
    ) -> None:
        session = await self.new(make_session, "pop-turn-none")
        self.require(session, "pop_turn")
        items = [{"role": "system", "content": "rules"}, assistant_message("hello")]
        await session.add_items(items)
        assert await session.pop_turn() == []
        assert await session.get_items() == items

    # ------------------------------------------------------------------ replace_items

    @asyncio_test
    async def test_replace_items(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "replace")
        self.require(session, "replace")
        await session.add_items(sample_history())
        summary = [user_message("summary of before"), assistant_message("ok")]
        await session.replace_items(summary)
        assert await session.get_items() == summary
        await session.add_items([user_message("next")])
        assert await session.get_items() == [*summary, user_message("next")]
        with pytest.raises(UserError, match="item 1"):
            await session.replace_items([user_message("x"), {"bogus": float("nan")}])
        assert await session.get_items() == [*summary, user_message("next")]
        await session.replace_items([])
        assert await session.get_items() == []

    # ------------------------------------------------------------------ fork

    @pytest.mark.parametrize("at", [None, 0, 1, 3, 10, 99])
    @asyncio_test
    async def test_fork_copies_a_prefix(self, make_session: SessionFactory, at: int | None) -> None:
        session = await self.new(make_session, "fork-source")
        self.require(session, "fork")
        history = sample_history()
        await session.add_items(history)
        child = await session.fork("fork-child", at=at)
        assert type(child) is type(session)
        assert child.session_id == "fork-child"
        assert await child.get_items() == (history if at is None else history[:at])
        await child.add_items([user_message("only in the fork")])
        await session.pop_item()
        assert await session.get_items() == history[:-1]
        assert (await child.get_items())[-1] == user_message("only in the fork")

    @asyncio_test
    async def test_fork_never_cuts_a_call_from_its_output(
        self, make_session: SessionFactory
    ) -> None:
        session = await self.new(make_session, "fork-pair")
        self.require(session, "fork")
        history = sample_history()  # item 3 is a function call, item 4 its output
        await session.add_items(history)
        with pytest.raises(UserError, match=r"at 4\b.*item 3 is a function call.*item 4"):
            await session.fork("fork-pair-child", at=4)
        child = await self.new(make_session, "fork-pair-child")
        assert await child.get_items() == []
        for at in (3, 5):
            fork = await session.fork(f"fork-pair-{at}", at=at)
            assert await fork.get_items() == history[:at]

    @asyncio_test
    async def test_fork_rejects_bad_arguments(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "fork-bad")
        self.require(session, "fork")
        await session.add_items(sample_history())
        with pytest.raises(UserError):
            await session.fork("fork-bad")
        with pytest.raises(UserError, match="at"):
            await session.fork("fork-other", at=-1)
        with pytest.raises(UserError, match="session_id"):
            await session.fork("")

    # ------------------------------------------------------------------ lease

    @asyncio_test
    async def test_second_lease_waits_for_the_first(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "lease-wait")
        self.require(session, "lease")
        events: list[str] = []
        held, finish = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async with session.lease():
                events.append("first in")
                held.set()
                await finish.wait()
                events.append("first out")

        async def second() -> None:
            await held.wait()
            async with session.lease():
                events.append("second in")

        tasks = [asyncio.ensure_future(first()), asyncio.ensure_future(second())]
        await held.wait()
        await asyncio.sleep(0.05)
        assert events == ["first in"]
        finish.set()
        await asyncio.gather(*tasks)
        assert events == ["first in", "first out", "second in"]

    @asyncio_test
    async def test_busy_lease_without_waiting(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "lease-busy")
        self.require(session, "lease")
        async with session.lease():
            with pytest.raises(SessionBusyError):
                async with session.lease(wait=False):
                    pass
            with pytest.raises(SessionBusyError):
                async with session.lease(timeout=0.05):
                    pass
            with pytest.raises(SessionBusyError):
                async with writer_lease(session, wait=False):
                    pass
        async with session.lease(wait=False):
            pass

    @asyncio_test
    async def test_cancelled_waiter_does_not_keep_the_lease(
        self, make_session: SessionFactory
    ) -> None:
        session = await self.new(make_session, "lease-cancel")
        self.require(session, "lease")

        async def wait_for_it() -> None:
            async with session.lease():
                pass

        async with session.lease():
            waiter = asyncio.ensure_future(wait_for_it())
            await asyncio.sleep(0.02)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        async with session.lease(wait=False):
            pass

    @asyncio_test
    async def test_tasks_started_inside_a_lease_write_under_it_until_it_ends(
        self, make_session: SessionFactory
    ) -> None:
        session = await self.new(make_session, "lease-children")
        self.require(session, "lease")
        later = asyncio.Event()

        async def child() -> None:
            await session.add_items([user_message("inside")])  # under the parent's lease
            await later.wait()
            await session.add_items([user_message("after")])  # the lease has ended: unfenced

        async with session.lease():
            task = asyncio.ensure_future(child())
            await asyncio.sleep(0.05)
        later.set()
        await task
        assert [item["content"] for item in await session.get_items()] == ["inside", "after"]
