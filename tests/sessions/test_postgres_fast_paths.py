"""The PostgreSQL overrides of the optional backend methods agree with the generic defaults.

Each fast path is compared with :class:`StoreBackend`'s default run on the same backend (the
defaults are built only on the required methods), on a history of turns with function calls,
on the plain and the encrypted configuration; plus the query plans they rely on.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from threadline.errors import CorruptItemError, UserError
from threadline.items import Item, assistant_message, user_message
from threadline.sessions import StoreBackend
from threadline.sessions.backend import Payload, TailWindow
from threadline.sessions.postgres import PostgresStore

from ..backends import POSTGRES_URL, _encryption_codec, new_postgres_schema, postgres_execute

pytestmark = pytest.mark.postgres

CONFIGS = ["plain", "encrypted"]


def _history(turns: int) -> list[Item]:
    items: list[Item] = []
    for turn in range(turns):
        items.append(user_message(f"question {turn} " + "w" * (turn % 5)))
        if turn % 3 == 1:
            call_id = f"call_{turn}"
            items.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": "lookup",
                    "arguments": "{}",
                }
            )
            items.append({"type": "function_call_output", "call_id": call_id, "output": "x" * turn})
        items.append(assistant_message(f"answer {turn} " + "z" * (turn % 11)))
    return items


@pytest.fixture(params=CONFIGS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PostgresStore]:
    codec = _encryption_codec() if request.param == "encrypted" else None
    kwargs: dict[str, Any] = {} if codec is None else {"codec": codec}
    opened = PostgresStore(POSTGRES_URL, schema=new_postgres_schema(), create=True, **kwargs)
    yield opened
    await opened.aclose()


def _skey(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8")).digest()


BUDGETS = [
    (None, None),
    (0, None),
    (None, 0),
    (1, None),
    (3, None),
    (None, 1),
    (None, 40),
    (5, 100),
    (7, 10**6),
    (None, 10**6),
]


async def test_window_since_matches_the_generic_read(store: PostgresStore) -> None:
    history = _history(30)
    await store.session("s").add_items(history)
    backend = store._backend
    starts = [0, 1, 2, 5, 17, len(history) - 1, len(history), len(history) + 1, len(history) + 9]
    for start in starts:
        for max_items, max_tokens in BUDGETS:
            fast = await backend.window_since("s", start, max_items, max_tokens)
            generic = await StoreBackend.window_since(backend, "s", start, max_items, max_tokens)
            assert fast == generic, (start, max_items, max_tokens)
    assert await backend.window_since("missing", 3, 5, None) == TailWindow(0, None, [], 0)


async def test_window_since_reports_a_corrupt_row_it_reads(store: PostgresStore) -> None:
    await store.session("s").add_items(_history(10))
    backend = store._backend
    for position in (4, 20):  # the anchor of start 5; an item in the newest window
        sql = "UPDATE threadline_items SET data = 'not json' WHERE skey = $1 AND seq = $2"
        await postgres_execute(store, sql, _skey("s"), position)
        start = 5 if position == 4 else 15
        with pytest.raises(CorruptItemError) as caught:
            await backend.window_since("s", start, None, None)
        assert caught.value.position == position


async def test_window_after_record_matches_get_record_and_the_tail(store: PostgresStore) -> None:
    history = _history(20)
    session = store.session("s")
    await session.add_items(history)
    backend = store._backend

    def plan(payload: Payload) -> tuple[int, int | None, int | None] | None:
        return None if payload == b"plain" else (int(payload), 4, 200)

    # No record: the plain window.
    assert await backend.window_after_record("s", "k", 6, None, plan) == (
        None,
        await backend.window("s", 6, None),
    )
    for start in (0, 3, 12, len(history), len(history) + 2):
        sealed = str(start).encode()
        await backend.put_records("s", {"k": sealed}, None)
        payload, read = await backend.window_after_record("s", "k", 6, None, plan)
        assert payload == sealed
        assert read == await StoreBackend.window_since(backend, "s", start, 4, 200)
    await backend.put_records("s", {"k": b"plain"}, None)
    assert await backend.window_after_record("s", "k", 6, 300, plan) == (
        b"plain",
        await backend.window("s", 6, 300),
    )


async def test_window_after_record_plans_again_when_the_record_changes(
    store: PostgresStore,
) -> None:
    await store.session("s").add_items(_history(12))
    backend = store._backend
    await backend.put_records("s", {"k": b"2"}, None)
    seen: list[Payload] = []

    def write_elsewhere() -> None:  # another process's compaction, between the two reads
        async def run() -> None:
            other = PostgresStore(POSTGRES_URL, schema=store._backend.pools.settings.schema)
            await other._backend.put_records("s", {"k": b"9"}, None)
            await other.aclose()

        asyncio.run(run())

    def plan(payload: Payload) -> tuple[int, int | None, int | None]:
        seen.append(payload)
        if len(seen) == 1:
            worker = threading.Thread(target=write_elsewhere)
            worker.start()
            worker.join()
        return int(payload), None, None

    payload, read = await backend.window_after_record("s", "k", None, None, plan)
    assert seen == [b"2", b"9"]
    assert payload == b"9"
    assert read == await StoreBackend.window_since(backend, "s", 9, None, None)


async def test_read_oldest_user_positions_and_read_json_match(store: PostgresStore) -> None:
    history = _history(25)
    await store.session("s").add_items(history)
    backend = store._backend
    for limit in (1, 2, 7, len(history), len(history) + 5):
        fast = await backend.read_oldest("s", limit)
        assert fast == await StoreBackend.read_oldest(backend, "s", limit) == history[:limit]
    assert await backend.user_positions("s") == await StoreBackend.user_positions(backend, "s")
    assert len(await backend.user_positions("s")) == 25
    assert await backend.read_json("s") == await StoreBackend.read_json(backend, "s")
    for name in ("read_oldest", "user_positions", "read_json"):
        args = ("missing", 3) if name == "read_oldest" else ("missing",)
        assert await getattr(backend, name)(*args) == []
    sql = "UPDATE threadline_items SET data = 'not json' WHERE skey = $1 AND seq = $2"
    await postgres_execute(store, sql, _skey("s"), 3)
    for read in (backend.read_json("s"), backend.read_oldest("s", 5)):
        with pytest.raises(CorruptItemError) as caught:
            await read
        assert caught.value.position == 3


async def test_read_json_of_a_row_on_two_lines_is_exported_on_one() -> None:
    plain = PostgresStore(POSTGRES_URL, schema=new_postgres_schema(), create=True)
    await plain.session("s").add_items([user_message("a"), user_message("b")])
    sql = "UPDATE threadline_items SET data = $3 WHERE skey = $1 AND seq = $2"
    spaced = b'{"role": "user",\n "content": "b"}'
    await postgres_execute(plain, sql, _skey("s"), 1, spaced)
    texts = await plain._backend.read_json("s")
    assert texts == await StoreBackend.read_json(plain._backend, "s")
    assert all("\n" not in text for text in texts)
    await plain.aclose()


async def test_list_sessions_with_record_pages_like_the_generic_listing(
    store: PostgresStore,
) -> None:
    backend = store._backend
    for n in range(9):
        await store.session(f"s{n}").add_items([user_message(str(n))])
        if n % 3:
            await backend.put_records(f"s{n}", {"meta": str(n).encode()}, None)
    await backend.put_records("records-only", {"meta": b"x"}, None)

    def select(session_id: str, payload: Payload | None) -> Any:
        if payload is None or payload == b"4":
            return None
        return (session_id, bytes(payload) if isinstance(payload, bytes) else payload)

    for limit in (0, 1, 2, 3, 100, None):
        pages: list[Any] = []
        for method in (backend.list_sessions_with_record, None):
            cursor: str | None = None
            got = []
            while True:
                if method is None:
                    page = await StoreBackend.list_sessions_with_record(
                        backend, limit, cursor, "meta", select
                    )
                else:
                    page = await method(limit, cursor, "meta", select)
                got.append(page)
                cursor = page[1]
                if cursor is None:
                    break
            pages.append(got)
        assert pages[0] == pages[1], limit
    everything, cursor = await backend.list_sessions_with_record(None, None, "meta", select)
    assert cursor is None
    assert [info.session_id for info, _ in everything] == [
        "records-only",
        "s8",
        "s7",
        "s5",
        "s2",
        "s1",
    ]
    with pytest.raises(UserError):
        await backend.list_sessions_with_record(1, "bogus", "meta", select)


async def test_fork_resealed_copies_like_the_generic_fork(store: PostgresStore) -> None:
    history = _history(9)
    await store.session("s").add_items(history)
    backend = store._backend
    codec = store.codec

    def resealer(new_id: str) -> Any:
        return lambda payload: codec.seal(new_id, codec.open("s", payload))

    for at in (None, 0, 3, 5, len(history) + 3):
        fast_id, generic_id = f"fast-{at}", f"generic-{at}"
        copied = await backend.fork_resealed("s", fast_id, at, resealer(fast_id))
        expected = await StoreBackend.fork_resealed(
            backend, "s", generic_id, at, resealer(generic_id)
        )
        assert copied == expected == len(history[:at])
        assert await backend.read(fast_id, None) == await backend.read(generic_id, None)
        assert await backend.window(fast_id, None, 30) == await backend.window(generic_id, None, 30)
    # a cut between a call (item 3) and its output (item 4), and a target that is not empty
    with pytest.raises(UserError, match="fork at 3 or at 5"):
        await backend.fork_resealed("s", "cut", 4, resealer("cut"))
    assert await backend.read("cut", None) == []
    with pytest.raises(UserError, match="already holds"):
        await backend.fork_resealed("s", "fast-None", None, resealer("fast-None"))

    def broken(payload: Payload) -> Payload:
        raise ValueError("cannot open it")

    with pytest.raises(CorruptItemError) as caught:
        await backend.fork_resealed("s", "broken", None, broken)
    assert caught.value.position == 0
    assert await backend.read("broken", None) == []


async def test_the_fast_paths_read_only_what_they_return(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = _history(12)
    await store.session("s").add_items(history)
    backend = store._backend
    await backend.put_records("s", {"k": b"10"}, None)
    sql = "UPDATE threadline_items SET data = 'not json' WHERE skey = $1 AND seq = $2"
    await postgres_execute(store, sql, _skey("s"), 6)  # an old item, outside every read below
    with pytest.raises(CorruptItemError):
        await StoreBackend.window_since(backend, "s", 10, 3, None)  # the default reads it all
    tail = await backend.window_since("s", 10, 3, None)
    assert (tail.count, tail.anchor, tail.items) == (len(history), history[9], history[-2:])
    assert tail.tail_tokens > 0
    assert await backend.read_oldest("s", 6) == history[:6]
    assert len(await backend.user_positions("s")) == 12

    def refuse(*args: Any) -> Any:
        raise AssertionError("the fast path called a generic building block")

    for name in ("read", "get_record", "window_since", "window", "append", "list_sessions"):
        monkeypatch.setattr(backend, name, refuse)
    payload, read = await backend.window_after_record(
        "s", "k", None, None, lambda payload: (int(payload), 3, None)
    )
    assert payload == b"10" and isinstance(read, TailWindow) and read.items == history[-2:]
    page, _ = await backend.list_sessions_with_record(None, None, "k", lambda sid, p: p)
    assert [info.session_id for info, _ in page] == ["s"]
    codec = store.codec
    copied = await backend.fork_resealed(
        "s", "copy", 5, lambda p: codec.seal("copy", codec.open("s", p))
    )
    assert copied == 5
    monkeypatch.undo()
    assert await backend.read("copy", None) == history[:5]


async def test_explain_window_since_is_index_range_scans_from_start() -> None:
    from threadline.sessions.postgres._backend import _SINCE

    store = PostgresStore(POSTGRES_URL, schema=new_postgres_schema(), create=True)
    session = store.session("explained")
    for block in range(20):
        await session.add_items([user_message(f"m{block}-{n}") for n in range(100)])
    pool = await store._backend.pools.pool()
    plans = []
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE threadline_items")
        await conn.execute("SET enable_seqscan = off")  # what the planner does at scale
        for limit, max_tokens in ((21, None), (None, 500), (21, 500)):
            rows = await conn.fetch(
                "EXPLAIN " + _SINCE, _skey("explained"), 1900, limit, max_tokens, "k"
            )
            plans.append("\n".join(r[0] for r in rows))
    await store.aclose()
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        scans = [line for line in plan.splitlines() if "on threadline_items" in line]
        assert scans and all(
            "threadline_items_pkey" in line or "Bitmap Heap" in line for line in scans
        ), plan
        conds = [line for line in plan.splitlines() if "Cond:" in line and "seq" in line]
        assert conds and all("seq >= '1900'" in c or "seq = " in c for c in conds), plan
    # with an item budget the window is read backwards from the newest item and stops early
    assert "Index Scan Backward using threadline_items_pkey" in plans[0], plans[0]
    assert "Limit" in plans[0], plans[0]
