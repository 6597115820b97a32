"""How many times a PostgreSQL store waits on the server per operation.

The store sits behind :class:`~tests.pg_wire.RoundTripCounter`, a proxy that reads the wire
protocol and counts the client's waits (a simple query, or the Sync ending an extended-protocol
exchange). A store turn (the window of 50, the input append, the step append: what a run asks
of its store per turn, and what ``bench/scale.py`` times) is 3 round trips on a warm pool: the
window without a compaction summary is one statement that also looks for the summary, each
append is one function call, and a connection goes back to the pool without a reset query.
It was 8 (a record read, a window read, two appends, and asyncpg's ``RESET ALL`` after each).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from threadline.items import assistant_message, user_message
from threadline.sessions.postgres import PostgresStore

from ..backends import POSTGRES_HOST, POSTGRES_PORT, new_postgres_schema
from ..pg_wire import RoundTripCounter

pytestmark = pytest.mark.postgres


@pytest.fixture
async def counted() -> AsyncIterator[tuple[PostgresStore, RoundTripCounter]]:
    schema = new_postgres_schema()
    async with RoundTripCounter(POSTGRES_HOST, POSTGRES_PORT) as proxy:
        store = PostgresStore(
            f"postgresql://postgres@127.0.0.1:{proxy.port}/test?sslmode=disable",
            schema=schema,
            create=True,
            pool_size=2,
        )
        try:
            yield store, proxy
        finally:
            await store.aclose()


async def _turn(
    store: PostgresStore, proxy: RoundTripCounter, session_id: str, n: int
) -> list[int]:
    """One store turn; the round trips of its window, input append and step append."""
    counts: list[int] = []
    session = store.session(session_id)
    proxy.reset()
    await session.get_window(max_items=50)
    counts.append(proxy.round_trips)
    await session.add_items([user_message(f"question {n}")])
    counts.append(proxy.round_trips - sum(counts))
    await session.add_items([assistant_message(f"answer {n}")])
    counts.append(proxy.round_trips - sum(counts))
    return counts


async def test_a_store_turn_is_three_round_trips(
    counted: tuple[PostgresStore, RoundTripCounter],
) -> None:
    store, proxy = counted
    await _turn(store, proxy, "warm", 0)  # the pool, the schema check, prepared statements
    for n in range(1, 4):
        assert await _turn(store, proxy, "warm", n) == [1, 1, 1]
    assert await _turn(store, proxy, "first-touch", 0) == [1, 1, 1]  # a new session: no more
    assert proxy.queries == []  # no reset query on release, no BEGIN / COMMIT
    window = await store.session("warm").get_window(max_items=50)
    assert window == [
        message(n) for n in range(4) for message in (_question, _answer)
    ]  # the one statement read the window right


def _question(n: int) -> dict[str, object]:
    return dict(user_message(f"question {n}"))


def _answer(n: int) -> dict[str, object]:
    return dict(assistant_message(f"answer {n}"))


async def test_a_window_with_a_token_budget_wider_than_one_read_reads_on(
    counted: tuple[PostgresStore, RoundTripCounter],
) -> None:
    store, proxy = counted
    session = store.session("long")
    await session.add_items([user_message(f"message {n} " + "w" * 40) for n in range(300)])
    proxy.reset()
    window = await session.get_window(max_tokens=100_000)
    assert len(window) == 300
    assert proxy.round_trips > 1  # the one statement was not the whole window: read on
    proxy.reset()
    assert len(await session.get_window(max_items=10)) == 10
    assert proxy.round_trips == 1


async def test_a_turn_under_the_writer_lease(
    counted: tuple[PostgresStore, RoundTripCounter],
) -> None:
    store, proxy = counted
    await _turn(store, proxy, "leased", 0)
    proxy.reset()
    async with store.session("leased").lease(ttl=30):
        assert proxy.round_trips == 1  # taking it
        assert await _turn(store, proxy, "leased", 1) == [1, 1, 1]  # the fence is checked inside
        proxy.reset()
    assert proxy.round_trips == 1  # giving it back


async def test_a_connection_taken_past_the_store_is_still_reset(
    counted: tuple[PostgresStore, RoundTripCounter],
) -> None:
    store, proxy = counted
    await store.session("s").add_items([user_message("x")])
    pool = await store._backend.pools.pool()  # type: ignore[attr-defined]
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
    assert any("RESET ALL" in query for query in proxy.queries)  # asyncpg's default reset
    for _ in range(3):  # whichever pooled connection comes next: the setting is gone
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW enable_seqscan") == "on"
    proxy.reset()
    await store.session("s").get_window(max_items=50)
    assert proxy.queries == []  # the store's own operations: no reset
