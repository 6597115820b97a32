"""PostgreSQL failures: each is a clear SessionError naming the server (never the password),
safe operations are retried, a retried append is never stored twice, no turn is half-written.

The tests that restart a server or cut connections use a server of their own
(tests/pg_cluster.py); the others use the shared test server.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from threadline import Agent, Runner, function_tool
from threadline.errors import (
    SchemaMissingError,
    SchemaVersionError,
    SessionError,
    StoreUnavailableError,
    UserError,
)
from threadline.items import assistant_message, user_message, validate_items
from threadline.sessions import open_store
from threadline.sessions.postgres import PostgresStore
from threadline.testing import ScriptedModel, call

from ..backends import POSTGRES_URL, new_postgres_schema, postgres_execute
from ..cut_proxy import CutProxy
from ..pg_cluster import PASSWORD, OwnCluster

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[OwnCluster]:
    own = OwnCluster(_free_port()).init().start()
    try:
        yield own
    finally:
        own.remove()


@pytest.fixture
async def own_store(cluster: OwnCluster) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(
        cluster.url, schema=f"t_{uuid.uuid4().hex[:12]}", create=True, pool_size=3, retry_for=10
    )
    try:
        yield store
    finally:
        await store.aclose()


# ---------------------------------------------------------------------- opening


def test_urls_and_options() -> None:
    store = open_store("postgres://app:hunter2@db.internal:6000/chat?pool_size=3&sslmode=disable")
    assert isinstance(store, PostgresStore)
    assert "hunter2" not in repr(store) and "hunter2" not in store.url
    assert store._backend.where == "postgresql://db.internal:6000/chat"
    settings = store._backend.pools.settings
    assert settings.pool_size == 3 and "sslmode=disable" in settings.dsn
    assert "schema nope" in open_store("postgresql://h/d", schema="nope")._backend.where
    for bad, match in [
        ("postgresql://h/d?pool_size=0", "pool_size"),
        ("postgresql://h/d?pool_size=x", "pool_size"),
        ("postgresql://h/d?schema=a;drop", "schema"),
        ("postgresql://h/d?create=maybe", "create"),
        ("postgresql://h:port/d", "port"),
    ]:
        with pytest.raises(UserError, match=match):
            open_store(bad)


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from threadline.errors import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a)
    )
    with pytest.raises(MissingDependencyError, match=r"'asyncpg'.*\[postgres\]") as caught:
        open_store("postgresql://app@db/chat")
    assert caught.value.extra == "postgres"


async def test_unreachable_server_names_it() -> None:
    store = open_store(
        f"postgresql://app:hunter2@127.0.0.1:{_free_port()}/chat", retry_for=0.3, connect_timeout=1
    )
    with pytest.raises(StoreUnavailableError) as caught:
        await store.session("s").get_items()
    message = str(caught.value)
    assert "127.0.0.1:" in message and "/chat" in message and "hunter2" not in message
    assert caught.value.server.startswith("postgresql://127.0.0.1:")
    await store.aclose()


async def test_missing_schema_names_the_migrate_command() -> None:
    schema = new_postgres_schema()
    store = open_store(f"{POSTGRES_URL}?schema={schema}")
    with pytest.raises(SchemaMissingError, match=r"threadline db migrate --store postgresql://"):
        await store.session("s").add_items([user_message("x")])
    await store.setup()  # the explicit step creates it
    await store.session("s").add_items([user_message("x")])
    assert len(await store.session("s").get_items()) == 1
    await store.aclose()


async def test_newer_schema_names_both_versions() -> None:
    schema = new_postgres_schema()
    store = PostgresStore(POSTGRES_URL, schema=schema)
    await store.setup()
    await postgres_execute(
        store, "INSERT INTO threadline_migrations (version, description) VALUES (7, 'future')"
    )
    await store.aclose()
    again = PostgresStore(POSTGRES_URL, schema=schema)
    with pytest.raises(SchemaVersionError, match=r"version 7.*up to version 1"):
        await again.session("s").get_items()
    with pytest.raises(SchemaVersionError, match="version 7"):
        await again.setup()
    await again.aclose()


async def test_setup_twice_and_concurrently_applies_each_migration_once() -> None:
    schema = new_postgres_schema()
    stores = [PostgresStore(POSTGRES_URL, schema=schema) for _ in range(4)]
    await asyncio.gather(*(store.setup() for store in stores))
    await stores[0].setup()
    pool = await stores[0]._backend.pools.pool()
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT version FROM threadline_migrations ORDER BY version")
    assert [row[0] for row in rows] == [1]
    for store in stores:
        await store.aclose()


async def test_wrong_password_is_named_without_the_password(cluster: OwnCluster) -> None:
    url = cluster.url.replace(PASSWORD, "not-the-password")
    store = open_store(url, create=True)
    with pytest.raises(StoreUnavailableError, match="refused the login") as caught:
        await store.session("s").get_items()
    assert "not-the-password" not in str(caught.value) and PASSWORD not in str(caught.value)
    assert f"127.0.0.1:{cluster.port}/postgres" in str(caught.value)
    await store.aclose()


# ---------------------------------------------------------------------- during use


async def test_exhausted_pool_is_a_clear_error() -> None:
    store = PostgresStore(
        POSTGRES_URL, schema=new_postgres_schema(), create=True, pool_size=1, acquire_timeout=0.2
    )
    await store.session("s").add_items([user_message("x")])
    pool = await store._backend.pools.pool()
    held = await pool.acquire()
    try:
        with pytest.raises(StoreUnavailableError, match=r"no free connection.*pool_size"):
            await store.session("s").get_items()
    finally:
        await pool.release(held)
    assert len(await store.session("s").get_items()) == 1
    await store.aclose()


async def _terminate_all(cluster: OwnCluster) -> None:
    await asyncio.to_thread(
        cluster.psql,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'threadline'",
    )


async def test_dropped_connections_are_retried_for_reads_and_appends(
    own_store: PostgresStore, cluster: OwnCluster
) -> None:
    session = own_store.session("dropped")
    await session.add_items([user_message("one")])
    await _terminate_all(cluster)
    assert await session.get_items() == [user_message("one")]  # a read retried
    await _terminate_all(cluster)
    await session.add_items([assistant_message("two")])  # an append retried
    assert len(await session.get_items()) == 2
    await _terminate_all(cluster)
    await session.pop_item()  # a connection cut while idle is replaced before use
    assert await session.get_items() == [user_message("one")]


async def _cut_while_waiting(
    store: PostgresStore, cluster: OwnCluster, session_id: str, operation: Any
) -> Any:
    """Run ``operation`` while another connection holds the session row's lock, cut the
    operation's connection while it waits (mid-transaction), then let the lock go."""
    import asyncpg

    blocker = await asyncpg.connect(
        cluster.url, server_settings={"search_path": store.schema, "application_name": "blocker"}
    )
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(
            "SELECT 1 FROM threadline_sessions WHERE skey = $1 FOR UPDATE",
            hashlib.sha256(session_id.encode()).digest(),
        )
        task = asyncio.ensure_future(operation())
        for _ in range(200):
            cut = await blocker.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'threadline' AND wait_event_type = 'Lock'"
            )
            if cut:
                break
            await asyncio.sleep(0.01)
        assert cut, "the operation never waited for the lock"
        await asyncio.sleep(0.05)
        await transaction.rollback()
        return await asyncio.gather(task, return_exceptions=True)
    finally:
        await blocker.close()


async def test_a_write_cut_mid_transaction_is_retried_only_when_safe(
    own_store: PostgresStore, cluster: OwnCluster
) -> None:
    session = own_store.session("cut")
    await session.add_items([user_message("one")])
    (appended,) = await _cut_while_waiting(
        own_store, cluster, "cut", lambda: session.add_items([assistant_message("two")])
    )
    assert appended is None  # retried on a fresh connection, stored once
    assert await session.get_items() == [user_message("one"), assistant_message("two")]
    (popped,) = await _cut_while_waiting(own_store, cluster, "cut", session.pop_item)
    assert isinstance(popped, StoreUnavailableError)
    assert "not retried because it may have been applied" in str(popped)
    assert f"127.0.0.1:{cluster.port}" in str(popped) and PASSWORD not in str(popped)
    # the cut transaction rolled back: nothing was popped
    assert await session.get_items() == [user_message("one"), assistant_message("two")]


async def test_a_retried_append_is_stored_once(own_store: PostgresStore) -> None:
    session = own_store.session("once")
    await session.add_items([user_message("first")])
    backend: Any = own_store._backend
    from threadline.sessions.codec import encode_items

    rows = encode_items([assistant_message("answer")], own_store.codec, "once")
    batch = uuid.uuid4()
    args = backend._append_args("once", rows, None, batch)
    pool = await backend.pools.pool()
    async with pool.acquire() as conn:
        await conn.execute(
            "SELECT threadline_append($1,$2,$3,$4,$5,false,$6,$7,$8,$9,$10,$11,$12)",
            *args[:5],
            *args[6:],
        )
        # the connection "dropped" after the commit: the retry carries the same batch id
        import asyncpg

        with pytest.raises(asyncpg.PostgresError) as caught:
            await conn.execute(
                "SELECT threadline_append($1,$2,$3,$4,$5,true,$6,$7,$8,$9,$10,$11,$12)",
                *args[:5],
                *args[6:],
            )
        assert caught.value.sqlstate == "TL002"
    assert await session.get_items() == [user_message("first"), assistant_message("answer")]


async def test_a_delete_cut_after_it_committed_answers_true(cluster: OwnCluster) -> None:
    async with CutProxy("127.0.0.1", cluster.port) as proxy:
        url = cluster.url.replace(f":{cluster.port}/", f":{proxy.port}/")
        store = PostgresStore(
            url, schema=f"t_{uuid.uuid4().hex[:12]}", create=True, pool_size=2, retry_for=10
        )
        try:
            session = store.session("doomed")
            await session.add_items([user_message("one")])
            # the COMMIT of the delete reaches the server; its answer never comes back, so the
            # store retries on a fresh connection and asks the server how that transaction ended
            proxy.arm(b"COMMIT")
            assert await store.delete_session("doomed") is True
            assert proxy.cuts == 1
            assert await session.get_items() == []
            assert await store.session_info("doomed") is None
            assert await store.delete_session("doomed") is False
        finally:
            await store.aclose()


async def test_a_delete_cut_before_it_committed_is_done_again(cluster: OwnCluster) -> None:
    async with CutProxy("127.0.0.1", cluster.port) as proxy:
        url = cluster.url.replace(f":{cluster.port}/", f":{proxy.port}/")
        store = PostgresStore(
            url, schema=f"t_{uuid.uuid4().hex[:12]}", create=True, pool_size=2, retry_for=10
        )
        try:
            session = store.session("doomed")
            await session.add_items([user_message("one")])
            # cut when the items' delete is sent: the transaction never commits (rolled back
            # when the server sees the connection go), and the retry deletes for real
            proxy.arm(b"DELETE FROM threadline_items")
            assert await store.delete_session("doomed") is True
            assert proxy.cuts == 1
            assert await session.get_items() == []
            assert await store.delete_session("doomed") is False
        finally:
            await store.aclose()


@function_tool
def lookup(query: str) -> str:
    """Look something up."""
    return f"found {query}"


async def test_server_restart_during_runs_leaves_whole_turns(
    own_store: PostgresStore, cluster: OwnCluster
) -> None:
    """Runs keep going while the server restarts under them; every run either completes or
    raises a SessionError naming the server; stored history is whole turns, valid to send."""
    script: list[Any] = []
    for turn in range(30):
        script += [[call("lookup", {"query": f"q{turn}"}, call_id=f"c{turn}")], f"answer {turn}"]
    model = ScriptedModel(script)
    agent = Agent(name="A", model=model, tools=[lookup])
    session = own_store.session("restarted")
    outcomes: list[str] = []

    async def runs() -> None:
        for turn in range(15):
            try:
                await Runner.run(agent, f"question {turn}", session=session)
                outcomes.append("ok")
            except SessionError as exc:
                assert cluster.url.split("@")[1].split("/")[0] in str(exc)
                assert PASSWORD not in str(exc)
                outcomes.append(type(exc).__name__)
            await asyncio.sleep(0.02)

    async def restarts() -> None:
        for _ in range(2):
            await asyncio.sleep(0.15)
            await asyncio.to_thread(cluster.restart, "fast")

    await asyncio.gather(runs(), restarts())
    items = await session.get_items()
    validate_items(items)
    # every tool call has its output right after it: no half-written step
    for index, item in enumerate(items):
        if item.get("type") == "function_call":
            assert items[index + 1]["type"] == "function_call_output"
            assert items[index + 1]["call_id"] == item["call_id"]
    questions = [i["content"] for i in items if i.get("role") == "user"]
    assert len(questions) == len(set(questions))  # nothing stored twice
    assert outcomes.count("ok") >= 10, outcomes


async def test_token_windows_wider_than_one_read_match_the_reference() -> None:
    from threadline.sessions.testing import reference_window

    store = PostgresStore(POSTGRES_URL, schema=new_postgres_schema(), create=True)
    session = store.session("long")
    history: list[Any] = []
    for turn in range(400):  # 1200 items: many chunks of the windowed read
        history += [
            user_message(f"q{turn}"),
            assistant_message(f"a{turn}"),
            assistant_message("x" * (turn % 7)),
        ]
    await session.add_items(history)
    try:
        for max_tokens in (5, 700, 3000, 9000, 10**6):
            expected = reference_window(history, None, max_tokens)
            assert await session.get_window(max_tokens=max_tokens) == expected, max_tokens
        assert await session.get_window(max_items=1000, max_tokens=10**6) == reference_window(
            history, 1000, 10**6
        )
    finally:
        await store.aclose()


def test_explain_window_and_limit_are_index_range_scans() -> None:
    async def main() -> list[str]:
        store = PostgresStore(POSTGRES_URL, schema=new_postgres_schema(), create=True)
        session = store.session("explained")
        for block in range(20):
            await session.add_items([user_message(f"m{block}-{n}") for n in range(100)])
        pool = await store._backend.pools.pool()
        plans = []
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE threadline_items")
            await conn.execute("SET enable_seqscan = off")  # what the planner does at scale
            skey = hashlib.sha256(b"explained").digest()
            for sql in (
                "SELECT seq, kind, call_id, tokens, data FROM threadline_items "
                "WHERE skey = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            ):
                rows = await conn.fetch("EXPLAIN " + sql, skey, 1 << 62, 21)
                plans.append("\n".join(r[0] for r in rows))
        await store.aclose()
        return plans

    (plan,) = asyncio.run(main())
    assert "Index Scan Backward using threadline_items_pkey" in plan, plan
    assert "Sort" not in plan, plan


async def test_one_pool_per_event_loop_closed_with_its_loop() -> None:
    store = PostgresStore(POSTGRES_URL, schema=new_postgres_schema(), create=True)
    await store.session("s").add_items([user_message("x")])
    await store.setup()  # through the pool this loop already has
    guards = [t for t in asyncio.all_tasks() if t.get_name() == "threadline-pg-pool"]
    assert len(guards) == 1

    def other_loop() -> list[Any]:
        async def use() -> list[Any]:
            return await store.session("s").get_items()

        return asyncio.run(use())  # a second pool, closed when that loop shuts down

    assert await asyncio.to_thread(other_loop) == [user_message("x")]
    assert len(store._backend.pools._pools) == 2
    await store.aclose()
    assert guards[0].done()
