"""Store-level conformance tests of listing sessions by metadata (``"records"``)."""

from __future__ import annotations

from typing import Any

import pytest

from ...errors import UserError
from ...items import user_message
from ._harness import ConformanceHarness, asyncio_test

__all__ = ["ListingTests"]


class ListingTests(ConformanceHarness):
    """``store.list_sessions(metadata=..., with_metadata=...)``."""

    async def _seed(self, store: Any) -> list[str]:
        """Seven sessions, oldest write first; the even ones belong to user u1."""
        ids = []
        for number in range(7):
            session = store.session(f"list-meta-{number}")
            await session.add_items([user_message(f"hello {number}")])
            user = "u1" if number % 2 == 0 else "u2"
            await session.set_metadata({"user": user, "n": number, "title": f"T{number}"})
            ids.append(session.session_id)
        return ids

    @asyncio_test
    async def test_filter_by_metadata(self, store: Any) -> None:
        if "records" not in store.capabilities:
            pytest.skip("the store does not offer 'records'")
        ids = await self._seed(store)
        newest_first = list(reversed(ids))
        page = await store.list_sessions(metadata={"user": "u1"})
        assert [i.session_id for i in page] == [s for s in newest_first if int(s[-1]) % 2 == 0]
        assert page.next_cursor is None
        assert [i.title for i in page] == ["T6", "T4", "T2", "T0"]
        assert page[0].metadata == {"user": "u1", "n": 6, "title": "T6"}
        assert [i.session_id for i in await store.list_sessions(metadata={"n": 3})] == [ids[3]]
        assert list(await store.list_sessions(metadata={"user": "nobody"})) == []
        assert list(await store.list_sessions(metadata={"missing": None})) == []
        both = await store.list_sessions(metadata={"user": "u2", "n": 5})
        assert [i.session_id for i in both] == [ids[5]]

    @asyncio_test
    async def test_filter_pages_with_exact_cursors(self, store: Any) -> None:
        if "records" not in store.capabilities:
            pytest.skip("the store does not offer 'records'")
        ids = await self._seed(store)
        for limit in (1, 2, 3):
            seen: list[str] = []
            after = None
            for _ in range(10):
                page = await store.list_sessions(limit, after, metadata={"user": "u1"})
                assert len(page) <= limit
                seen += [i.session_id for i in page]
                if page.next_cursor is None:
                    break
                after = page.next_cursor
            assert seen == [ids[6], ids[4], ids[2], ids[0]], limit

    @asyncio_test
    async def test_values_match_exactly(self, store: Any) -> None:
        if "records" not in store.capabilities:
            pytest.skip("the store does not offer 'records'")
        for name, value in [("int", 1), ("float", 1.0), ("bool", True), ("list", [1, {"a": 2}])]:
            await store.session(f"exact-{name}").set_metadata({"v": value})
        for name, value in [("int", 1), ("float", 1.0), ("bool", True), ("list", [1, {"a": 2}])]:
            page = await store.list_sessions(metadata={"v": value})
            assert [i.session_id for i in page] == [f"exact-{name}"]

    @asyncio_test
    async def test_with_metadata_lists_every_session(self, store: Any) -> None:
        if "records" not in store.capabilities:
            pytest.skip("the store does not offer 'records'")
        await store.session("plain").add_items([user_message("no metadata")])
        await store.session("tagged").set_metadata({"title": "Tagged"})
        page = await store.list_sessions(with_metadata=True)
        by_id = {i.session_id: i for i in page}
        assert by_id["plain"].metadata == {} and by_id["plain"].title is None
        assert by_id["tagged"].metadata == {"title": "Tagged"}
        assert by_id["tagged"].title == "Tagged"
        bare = await store.list_sessions()
        assert all(i.metadata is None and i.title is None for i in bare)

    @pytest.mark.parametrize("bad", [["user"], {1: "x"}, {"x": {1, 2}}])
    @asyncio_test
    async def test_bad_filter_is_a_user_error(self, store: Any, bad: Any) -> None:
        with pytest.raises(UserError, match="metadata="):
            await store.list_sessions(metadata=bad)
