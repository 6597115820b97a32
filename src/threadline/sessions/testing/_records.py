"""Conformance tests of session records (the optional ``"records"`` capability)."""

from __future__ import annotations

import pytest

from ...errors import UserError
from ...items import assistant_message, function_call_output, user_message
from ..codec import RECORD_KEY_LIMIT, RECORD_SIZE_LIMIT
from ._harness import ConformanceHarness, SessionFactory, asyncio_test

__all__ = ["RecordTests"]


class RecordTests(ConformanceHarness):
    """Records: small named JSON documents kept with a session, beside its items."""

    @asyncio_test
    async def test_records_round_trip(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "records-basic")
        self.require(session, "records")
        assert await session.get_record("meta") is None
        assert await session.list_records() == {}
        value = {"title": "Trip to SF ✈", "tags": ["a", 1, 2.5, True, None], "nested": {"x": []}}
        await session.put_records({"meta": value, "usage/0001": {"in": 10}})
        assert await session.get_record("meta") == value
        assert await session.get_record("usage/0001") == {"in": 10}
        await session.put_records({"meta": "replaced"})
        assert await session.get_record("meta") == "replaced"
        assert await session.get_items() == []  # records are not items

    @asyncio_test
    async def test_list_records_by_prefix_in_key_order(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "records-prefix")
        self.require(session, "records")
        keys = ["usage/0010", "usage/0002", "usagex", "usage/", "meta", "usage/0001", "ü/1"]
        await session.put_records({key: key.upper() for key in keys})
        listed = await session.list_records("usage/")
        assert list(listed) == ["usage/", "usage/0001", "usage/0002", "usage/0010"]
        assert listed["usage/0002"] == "USAGE/0002"
        assert list(await session.list_records()) == sorted(keys)
        assert list(await session.list_records("ü")) == ["ü/1"]
        assert await session.list_records("nothing") == {}

    @asyncio_test
    async def test_none_deletes_a_record(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "records-delete")
        self.require(session, "records")
        await session.put_records({"a": 1, "b": 2})
        await session.put_records({"a": None, "c": 3})
        assert await session.list_records() == {"b": 2, "c": 3}
        await session.put_records({"missing": None})  # deleting nothing is fine
        assert await session.list_records() == {"b": 2, "c": 3}

    @asyncio_test
    async def test_records_survive_item_changes(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "records-kept")
        self.require(session, "records")
        await session.add_items([user_message("hi"), assistant_message("hello")])
        await session.put_records({"meta": {"title": "hi"}})
        await session.pop_item()
        if "pop_turn" in self._offered(session):
            await session.pop_turn()
        if "replace" in self._offered(session):
            await session.replace_items([user_message("again")])
        await session.clear_session()
        assert await session.get_record("meta") == {"title": "hi"}

    @asyncio_test
    async def test_items_and_records_land_together(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "records-atomic")
        self.require(session, "records")
        await session.add_items([user_message("q")], records={"turn/1": {"state": "asked"}})
        assert await session.get_items() == [user_message("q")]
        assert await session.get_record("turn/1") == {"state": "asked"}
        # A bad item writes neither the items nor the records.
        with pytest.raises(UserError):
            await session.add_items(
                [assistant_message("a"), function_call_output("nobody", "x"), {"bad": {1, 2}}],
                records={"turn/2": {"state": "answered"}},
            )
        # A bad record writes neither either.
        with pytest.raises(UserError):
            await session.add_items([assistant_message("a")], records={"turn/2": {1, 2}})
        assert await session.get_items() == [user_message("q")]
        assert await session.get_record("turn/2") is None
        await session.add_items([], records={"turn/2": "only a record"})
        assert await session.get_record("turn/2") == "only a record"
        assert await session.get_items() == [user_message("q")]

    @pytest.mark.parametrize("key", ["", "x" * (RECORD_KEY_LIMIT + 1), "tab\there", 7, None])
    @asyncio_test
    async def test_bad_record_keys_are_refused(
        self, make_session: SessionFactory, key: object
    ) -> None:
        session = await self.new(make_session, "records-keys")
        self.require(session, "records")
        with pytest.raises(UserError, match="record key"):
            await session.put_records({key: 1})
        if isinstance(key, str):
            with pytest.raises(UserError, match="record key"):
                await session.get_record(key)
        assert await session.list_records() == {}

    @pytest.mark.parametrize(
        "value", [float("nan"), {1, 2}, b"bytes", object(), "x" * (RECORD_SIZE_LIMIT + 1)]
    )
    @asyncio_test
    async def test_bad_record_values_are_refused(
        self, make_session: SessionFactory, value: object
    ) -> None:
        session = await self.new(make_session, "records-values")
        self.require(session, "records")
        with pytest.raises(UserError, match="record 'v'"):
            await session.put_records({"ok": 1, "v": value})
        assert await session.list_records() == {}  # all or nothing

    @asyncio_test
    async def test_records_belong_to_their_session(self, make_session: SessionFactory) -> None:
        first = await self.new(make_session, "records-one")
        self.require(first, "records")
        second = await self.new(make_session, "records-two")
        await first.put_records({"meta": 1})
        assert await second.get_record("meta") is None
        if "fork" in self._offered(first):
            await first.add_items([user_message("hi")])
            forked = await first.fork("records-forked")
            assert await forked.get_items() == [user_message("hi")]
            # A fork copies no records; it gets its own "origin" record.
            assert list(await forked.list_records()) == ["origin"]

    def _offered(self, session: object) -> frozenset[str]:
        from ..base import capabilities_of

        return self.capabilities if self.capabilities is not None else capabilities_of(session)
