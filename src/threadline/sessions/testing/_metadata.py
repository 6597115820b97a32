"""Conformance tests of metadata, titles and fork lineage (on the ``"records"`` capability)."""

from __future__ import annotations

from datetime import datetime

import pytest

from ...errors import UserError
from ...items import assistant_message, function_call, function_call_output, user_message
from .._metadata import METADATA_SIZE_LIMIT, TITLE_LENGTH
from ._harness import ConformanceHarness, SessionFactory, asyncio_test

__all__ = ["LineageTests", "MetadataTests", "UsageTests"]


def _turns(count: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = [{"role": "system", "content": "be brief"}]
    for turn in range(count):
        items += [user_message(f"question {turn}"), assistant_message(f"answer {turn}")]
    return items


class MetadataTests(ConformanceHarness):
    """``get_metadata`` / ``set_metadata`` / ``update_metadata`` / ``title``."""

    @asyncio_test
    async def test_metadata_round_trip_and_replace(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "meta-basic")
        self.require(session, "records")
        assert await session.get_metadata() == {}
        await session.set_metadata({"title": "Trip to SF", "user": "u1", "tags": ["a", 1]})
        assert await session.get_metadata() == {
            "title": "Trip to SF",
            "user": "u1",
            "tags": ["a", 1],
        }
        await session.set_metadata({"user": "u2"})  # replace semantics
        assert await session.get_metadata() == {"user": "u2"}
        merged = await session.update_metadata({"lang": "fr", "user": None})
        assert merged == {"lang": "fr"} == await session.get_metadata()
        await session.set_metadata({})
        assert await session.get_metadata() == {}
        assert await session.get_items() == []

    @pytest.mark.parametrize(
        "bad, problem",
        [
            ([1, 2], "dict"),
            ("text", "dict"),
            ({1: "x"}, "not a string"),
            ({"title": 5}, "title"),
            ({"x": {1, 2}}, "not JSON"),
            ({"x": float("nan")}, "not JSON"),
            ({"x": "y" * METADATA_SIZE_LIMIT}, "16384"),
        ],
    )
    @asyncio_test
    async def test_bad_metadata_is_refused(
        self, make_session: SessionFactory, bad: object, problem: str
    ) -> None:
        session = await self.new(make_session, "meta-bad")
        self.require(session, "records")
        await session.set_metadata({"kept": True})
        with pytest.raises(UserError, match=problem):
            await session.set_metadata(bad)
        assert await session.get_metadata() == {"kept": True}

    @asyncio_test
    async def test_metadata_at_the_limit_is_accepted(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "meta-limit")
        self.require(session, "records")
        value = {"x": "y" * (METADATA_SIZE_LIMIT - len('{"x":""}'))}
        await session.set_metadata(value)
        assert await session.get_metadata() == value

    @asyncio_test
    async def test_title_defaults_to_the_first_user_message(
        self, make_session: SessionFactory
    ) -> None:
        session = await self.new(make_session, "meta-title")
        self.require(session, "records")
        assert await session.title() is None
        await session.add_items(
            [
                {"role": "system", "content": "be brief"},
                user_message("  Plan a\n trip   to SF  "),
                assistant_message("Sure."),
                user_message("second question"),
            ]
        )
        assert await session.title() == "Plan a trip to SF"
        await session.set_metadata({"title": "Chosen"})
        assert await session.title() == "Chosen"
        assert await session.get_items(limit=1) == [user_message("second question")]

    @asyncio_test
    async def test_long_titles_are_cut_at_a_word(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "meta-long-title")
        self.require(session, "records")
        words = " ".join(f"word{n}" for n in range(60))
        await session.add_items([user_message(words)])
        title = await session.title()
        assert title is not None and title.endswith("…") and len(title) <= TITLE_LENGTH
        assert words.startswith(title[:-1]) and words[len(title) - 1] == " "


class UsageTests(ConformanceHarness):
    """``session.usage()`` over the records the runner writes with each step."""

    @asyncio_test
    async def test_usage_reads_the_run_records(self, make_session: SessionFactory) -> None:
        from ...usage import Usage
        from .._usage import UsageLedger

        session = await self.new(make_session, "usage-records")
        self.require(session, "records")
        assert (await session.usage()).turns == 0
        total = None
        for run, (requests, sent, got) in enumerate([(1, 100, 7), (3, 900, 40)], 1):
            ledger = UsageLedger(total, Usage())
            ledger.sample(sent * 2, sent)
            records = ledger.records(Usage(requests, sent, got, sent + got))
            await session.add_items([user_message(f"run {run}")], records=records)
            total = await session.get_record("usage")
        usage = await session.usage()
        assert (usage.turns, usage.requests, usage.input_tokens, usage.output_tokens) == (
            2,
            4,
            1000,
            47,
        )
        assert [(t.turn, t.requests, t.input_tokens) for t in usage.per_turn] == [
            (1, 1, 100),
            (2, 3, 900),
        ]
        assert usage.calibration == pytest.approx(2.0)
        assert (await session.usage(per_turn=False)).per_turn == []


class LineageTests(ConformanceHarness):
    """``fork(at_turn=...)`` and the ``origin`` record of a fork."""

    @asyncio_test
    async def test_fork_at_a_turn(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "fork-turns")
        self.require(session, "fork")
        history = _turns(3)  # system, then 3 turns of two items
        await session.add_items(history)
        for turn, expected in [(0, 1), (1, 3), (2, 5), (3, 7), (9, 7), (-1, 5), (-3, 1)]:
            forked = await session.fork(f"fork-turns-{turn}", at_turn=turn)
            assert await forked.get_items() == history[:expected], turn
            if "records" in self._offered(session):
                origin = await forked.origin()
                assert origin is not None
                assert origin["parent"] == "fork-turns"
                assert origin["forked_at"] == expected
                assert origin["at_turn"] == turn
                datetime.fromisoformat(origin["time"])
        with pytest.raises(UserError, match="before the first turn"):
            await session.fork("fork-turns-bad", at_turn=-4)
        with pytest.raises(UserError, match="not both"):
            await session.fork("fork-turns-both", at=1, at_turn=1)
        with pytest.raises(UserError, match="at_turn"):
            await session.fork("fork-turns-type", at_turn="1")
        assert await session.get_items() == history

    @asyncio_test
    async def test_fork_at_an_item_records_its_origin(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "fork-origin")
        self.require(session, "fork")
        self.require(session, "records")
        history = [
            user_message("weather?"),
            function_call("c1", "weather", "{}"),
            function_call_output("c1", "sunny"),
            assistant_message("Sunny."),
        ]
        await session.add_items(history)
        assert await session.origin() is None
        whole = await session.fork("fork-origin-all")
        assert (await whole.origin())["forked_at"] == 4
        part = await session.fork("fork-origin-3", at=3)
        assert await part.get_items() == history[:3]
        origin = await part.origin()
        assert origin["parent"] == "fork-origin" and origin["forked_at"] == 3
        assert origin["at_turn"] is None
        # A fork of a fork names its own parent.
        again = await part.fork("fork-origin-3b", at_turn=1)
        assert (await again.origin())["parent"] == "fork-origin-3"

    def _offered(self, session: object) -> frozenset[str]:
        from ..base import capabilities_of

        return self.capabilities if self.capabilities is not None else capabilities_of(session)
