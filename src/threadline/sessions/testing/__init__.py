"""The conformance suites: every backend, ours or yours, passes the same tests.

**A store** (anything :func:`~threadline.sessions.open_store` could return): subclass
:class:`StoreConformance` (name the subclass ``Test...``) and override the ``make_store``
fixture with a factory that opens a new store object on this test's storage (called again
for tests that need a second store on the same storage, as a second process would have);
the suite closes every store it opened. Give each test fresh storage (a new file, database,
schema or key prefix). Override the class-scoped ``store_lifespan`` fixture for work done once
per test class (create a database, start a server), and the ``corrupt_item`` /
``make_schema_newer`` methods so the tests of bad data run::

    import pytest
    from threadline.sessions.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def make_store(self, store_lifespan, tmp_path):
            return lambda: MyStore(tmp_path / "db")

**A session object without a store** (a duck-typed ``Session``): subclass
:class:`SessionConformance` and override ``make_session`` with a factory of handles by id (or
of awaitables of them); handles from one factory should share storage.

Nothing in the suites moves a session between event loops or threads: every call of a test
runs on that test's loop, so a backend whose connections belong to the loop that opened them
(asyncpg, ``redis.asyncio``) passes. Tests of optional capabilities run for what the store
(or session) declares in ``capabilities``, or for the names in the subclass's
``capabilities`` when it sets it. Needs ``pytest``, ``pytest-asyncio`` and ``hypothesis``:
``pip install -e '.[testing]'`` in a threadline checkout.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ...errors import MissingDependencyError, UserError

try:
    import hypothesis  # noqa: F401
    import pytest
    import pytest_asyncio
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError(
        exc.name or "pytest", "testing", "threadline.sessions.testing"
    ) from exc

from ...items import MAX_DEPTH, Item, function_call, function_call_output, user_message
from ._forks import ForkTests
from ._harness import SessionFactory, asyncio_test, sample_history
from ._listing import ListingTests
from ._optional import OptionalCapabilityTests
from ._reference import check_window, reference_pop_turn, reference_window
from ._retention import RetentionTests
from ._stateful import run_stateful
from ._store import StoreOpener, StoreTests
from ._transfer import TransferTests

__all__ = [
    "SessionConformance",
    "SessionFactory",
    "StoreConformance",
    "StoreFactory",
    "StoreOpener",
    "check_window",
    "reference_pop_turn",
    "reference_window",
    "sample_history",
]

TRICKY_IDS = [
    "it's",
    'say "hi"',
    "'; DROP TABLE threadline_items; --",
    "100%_match",
    "a/b\\c",
    "用户🙂-Ωmega",
    "  spaced  ",
    "x" * 5000,
]


def nested(levels: int) -> Any:
    """A value of ``levels`` nested arrays around a string."""
    value: Any = "core"
    for _ in range(levels):
        value = [value]
    return value


BAD_ITEMS: list[tuple[object, str]] = [
    (42, "dict"),
    ("hello", "dict"),
    (None, "dict"),
    ({"role": ["user"], "content": "x"}, "role"),
    ({"type": 7, "content": "x"}, "type"),
    ({"type": "function_call", "name": "f", "arguments": "{}"}, "call_id"),
    ({"type": "function_call_output", "call_id": 5, "output": "x"}, "call_id"),
    ({"role": "user", "content": {1, 2}}, "serialis"),
    ({"type": "function_call_output", "call_id": "c", "output": [object()]}, "serialis"),
    ({"role": "user", "content": [{"type": "input_text", "text": float("nan")}]}, "serialis"),
    ({"role": "user", "content": "x", "score": float("-inf")}, "serialis"),
    ({"role": "user", "content": "x", "n": 10**5000}, "serialis"),
    ({"role": "user", "content": "lone \ud800 surrogate"}, "Unicode"),
    ({"role": "user", "content": "x", "meta": {1: "one", "1": "also one"}}, "not a string"),
    ({"role": "user", "content": "x", "meta": {None: 1}}, "not a string"),
    ({"role": "user", "content": nested(MAX_DEPTH)}, "deeper"),
    ({"role": "user", "content": nested(10_000)}, "deeper"),
]


SDK_ITEMS: list[Item] = [
    {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    {"type": "mystery_item", "payload": {"nested": [1, 2.5, None, True]}},
    {"role": "assistant", "content": None},
    {"type": "function_call", "call_id": "call_2", "name": "lookup"},
    {"type": "function_call_output", "call_id": "call_2", "output": None},
    {"app_metadata": {"tags": ["a", "b"]}, "created_at": 1700000000},
    {"role": "wizard", "content": "x"},
]
"""Items the OpenAI Agents SDK's sessions store and a model API does not read as they are: a
store keeps them as given (see ``docs/porting.md``)."""


class SessionConformance(OptionalCapabilityTests):
    """Base class of the conformance tests; see the module docstring."""

    # ------------------------------------------------------------------ the core contract

    @asyncio_test
    async def test_new_session_is_empty(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "empty")
        assert await session.get_items() == []
        assert await session.get_items(limit=3) == []
        assert await session.pop_item() is None
        await session.clear_session()
        assert await session.get_items() == []

    @asyncio_test
    async def test_items_come_back_in_write_order(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "order")
        history = sample_history()
        await session.add_items(history[:3])
        await session.add_items(history[3:4])
        await session.add_items(history[4:])
        assert await session.get_items() == history
        assert session.session_id == "order"

    @asyncio_test
    async def test_limit_returns_newest_oldest_first(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "limit")
        history = sample_history()
        await session.add_items(history)
        assert await session.get_items(limit=None) == history
        assert await session.get_items(limit=0) == []
        assert await session.get_items(limit=1) == history[-1:]
        assert await session.get_items(limit=4) == history[-4:]
        assert await session.get_items(limit=len(history)) == history
        assert await session.get_items(limit=len(history) + 50) == history

    @asyncio_test
    async def test_negative_limit_is_a_user_error(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "negative")
        with pytest.raises(UserError, match="limit"):
            await session.get_items(limit=-1)

    @asyncio_test
    async def test_pop_item_takes_newest_first(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "pop")
        history = sample_history()[:3]
        await session.add_items(history)
        assert await session.pop_item() == history[2]
        assert await session.pop_item() == history[1]
        assert await session.get_items() == history[:1]
        assert await session.pop_item() == history[0]
        assert await session.pop_item() is None
        await session.add_items(history[1:2])
        assert await session.get_items() == history[1:2]

    @asyncio_test
    async def test_clear_session_empties_it(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "clear")
        await session.add_items(sample_history())
        await session.clear_session()
        assert await session.get_items() == []
        await session.add_items([user_message("again")])
        assert await session.get_items() == [user_message("again")]

    @asyncio_test
    async def test_sessions_are_isolated(self, make_session: SessionFactory) -> None:
        first = await self.new(make_session, "alpha")
        second = await self.new(make_session, "Alpha")
        await first.add_items([user_message("one")])
        await second.add_items([user_message("two"), user_message("three")])
        await first.pop_item()
        assert await first.get_items() == []
        assert await second.get_items() == [user_message("two"), user_message("three")]
        await second.clear_session()
        await first.add_items([user_message("four")])
        assert await first.get_items() == [user_message("four")]
        assert await second.get_items() == []

    @pytest.mark.parametrize("session_id", TRICKY_IDS, ids=range(len(TRICKY_IDS)))
    @asyncio_test
    async def test_session_ids_are_data(
        self, make_session: SessionFactory, session_id: str
    ) -> None:
        tricky = await self.new(make_session, session_id)
        plain = await self.new(make_session, "plain")
        await plain.add_items([user_message("plain")])
        await tricky.add_items([user_message(session_id)])
        assert await tricky.get_items() == [user_message(session_id)]
        assert await plain.get_items() == [user_message("plain")]
        await tricky.clear_session()
        assert await plain.get_items() == [user_message("plain")]

    @pytest.mark.parametrize("session_id", ["", 7, None, "\ud800", "lone \udfff low"])
    @asyncio_test
    async def test_bad_session_id_is_a_user_error(
        self, make_session: SessionFactory, session_id: Any
    ) -> None:
        with pytest.raises(UserError, match="session_id"):
            await self.new(make_session, session_id)

    @asyncio_test
    async def test_items_round_trip_unchanged(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "round-trip")
        items: list[Item] = [
            user_message('héllo wörld — 你好 — 🙂🚀 — \u0000 nul and \\ backslash "quotes"'),
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "x" * 300_000, "annotations": []}],
                "z_last": 1,
                "a_first": {"nested": [1, 2.5, -3, 10**30, True, False, None, [], {}]},
            },
            function_call("c-1", "lookup", json.dumps({"q": "ünïcode", "n": [1, {"k": None}]})),
            function_call_output("c-1", ""),
        ]
        await session.add_items(items)
        got = await session.get_items()
        assert got == items
        assert [list(item) for item in got] == [list(item) for item in items]  # key order

    @asyncio_test
    async def test_deepest_allowed_item_reads_back(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "deep")
        item: Item = {"role": "user", "content": nested(MAX_DEPTH - 1)}  # the item is level 1
        await session.add_items([item])
        assert await session.get_items() == [item]
        assert await session.get_items(limit=1) == [item]

    @asyncio_test
    async def test_items_are_stored_by_value(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "copies")
        item: Item = {"role": "user", "content": [{"type": "input_text", "text": "original"}]}
        await session.add_items([item])
        item["content"][0]["text"] = "changed after add"
        got = await session.get_items()
        got[0]["content"][0]["text"] = "changed after get"
        assert (await session.get_items())[0]["content"][0]["text"] == "original"

    @pytest.mark.parametrize("bad, problem", BAD_ITEMS, ids=range(len(BAD_ITEMS)))
    @asyncio_test
    async def test_bad_batch_writes_nothing(
        self, make_session: SessionFactory, bad: object, problem: str
    ) -> None:
        session = await self.new(make_session, "atomic")
        await session.add_items([user_message("kept")])
        with pytest.raises(UserError, match=rf"item 1\b.*{problem}"):
            await session.add_items([user_message("not kept"), bad, user_message("nor this")])
        assert await session.get_items() == [user_message("kept")]

    @asyncio_test
    async def test_items_the_sdk_stores_are_kept_as_given(
        self, make_session: SessionFactory
    ) -> None:
        session = await self.new(make_session, "sdk-items")
        await session.add_items([user_message("first"), *SDK_ITEMS])
        assert await session.get_items() == [user_message("first"), *SDK_ITEMS]
        assert await session.get_items(limit=2) == SDK_ITEMS[-2:]
        assert await session.pop_item() == SDK_ITEMS[-1]

    @asyncio_test
    async def test_an_unserialisable_value_is_a_type_error(
        self, make_session: SessionFactory
    ) -> None:
        session = await self.new(make_session, "type-error")
        with pytest.raises(TypeError, match="item 0 is not JSON-serialisable") as caught:
            await session.add_items([{"role": "user", "content": b"bytes"}])
        assert isinstance(caught.value, UserError)
        assert await session.get_items() == []

    @pytest.mark.parametrize("batch", [{"role": "user", "content": "x"}, "text", 5])
    @asyncio_test
    async def test_batch_must_be_a_list(self, make_session: SessionFactory, batch: Any) -> None:
        session = await self.new(make_session, "not-a-list")
        with pytest.raises(UserError, match="list"):
            await session.add_items(batch)
        assert await session.get_items() == []

    @asyncio_test
    async def test_empty_batch_changes_nothing(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "empty-batch")
        await session.add_items([])
        assert await session.get_items() == []

    @asyncio_test
    async def test_concurrent_batches_stay_whole(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "concurrent")

        async def writer(number: int) -> None:
            await session.add_items([user_message(f"{number}:{part}") for part in range(4)])

        await asyncio.gather(*(writer(number) for number in range(25)))
        texts = [item["content"] for item in await session.get_items()]
        assert len(texts) == 100
        for start in range(0, 100, 4):
            owner = texts[start].split(":")[0]
            assert texts[start : start + 4] == [f"{owner}:{part}" for part in range(4)]

    @asyncio_test
    async def test_long_history(self, make_session: SessionFactory) -> None:
        session = await self.new(make_session, "long")
        history = [user_message(f"message {number}") for number in range(2600)]
        for start in range(0, len(history), 500):
            await session.add_items(history[start : start + 500])
        assert await session.get_items() == history
        assert await session.get_items(limit=2300) == history[-2300:]
        assert await session.get_items(limit=7) == history[-7:]

    # ------------------------------------------------------------------ against a plain list

    @asyncio_test
    async def test_behaves_like_a_list(self, make_session: SessionFactory) -> None:
        await run_stateful(self, make_session, self.stateful_examples)


StoreFactory = Callable[[], Any]
"""Opens a new store object on this test's storage (or returns an awaitable of one)."""


class StoreConformance(
    SessionConformance, StoreTests, ListingTests, TransferTests, RetentionTests, ForkTests
):
    """The session tests on handles of a store, plus the store-level tests.

    Override ``make_store`` (and optionally ``store_lifespan``, ``corrupt_item`` and
    ``make_schema_newer``); see the module docstring.
    """

    @pytest.fixture(scope="class")
    @classmethod
    def store_lifespan(cls) -> Iterator[Any]:
        """Override: set up once per test class (a server, a database); yield what
        ``make_store`` needs."""
        yield None

    @pytest.fixture
    def make_store(self, store_lifespan: Any) -> StoreFactory:
        """Override: a factory that opens a new store on this test's storage."""
        raise NotImplementedError("override the make_store fixture in your test class")

    @pytest_asyncio.fixture
    async def stores(self, make_store: StoreFactory) -> AsyncIterator[StoreOpener]:
        """Opens stores from ``make_store`` on this test's loop; closes them after the test."""
        opened: list[Any] = []

        async def open_one() -> Any:
            store = make_store()
            if inspect.isawaitable(store):
                store = await store
            opened.append(store)
            return store

        yield open_one
        for store in reversed(opened):
            await store.aclose()

    @pytest_asyncio.fixture
    async def store(self, stores: StoreOpener) -> Any:
        """The test's first store."""
        return await stores()

    @pytest.fixture
    def make_session(self, store: Any) -> SessionFactory:
        """Handles of the test's first store."""
        return store.session  # type: ignore[no-any-return]

    def require(self, session: Any, capability: str) -> None:
        """Skip the current test unless the store offers ``capability``."""
        offered = self.capabilities if self.capabilities is not None else session.capabilities
        if capability not in offered:
            pytest.skip(f"the store does not offer {capability!r}")
