"""The Redis store beyond the conformance suite: URLs, key layout, ttl, failures of the server,
retried writes, many processes (the suite itself runs on Redis and a Redis Cluster through
tests/backends.py)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline import Agent, Runner
from threadline.errors import MissingDependencyError, StoreServerError, UserError
from threadline.items import assistant_message, function_call, function_call_output, user_message
from threadline.sessions import SessionSettings, open_store
from threadline.sessions.redis import RedisStore
from threadline.sessions.redis._keys import SessionKeys, encode_id
from threadline.testing import ScriptedModel

from ..cut_proxy import CutProxy
from ..redis_servers import OwnRedis, cluster_url, drop_prefix, new_prefix, own_redis_available
from ..redis_servers import redis_url as shared_url
from . import _workers

pytestmark = pytest.mark.redis


@pytest.fixture
def url() -> str:
    return shared_url()


@pytest.fixture
async def store(url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(url, prefix=new_prefix())
    yield opened
    await opened.aclose()
    drop_prefix(url, opened.prefix)


@pytest.fixture
def own() -> Iterator[OwnRedis]:
    own_redis_available()
    server = OwnRedis().start()
    yield server
    server.close()


# ---------------------------------------------------------------------- URLs and options


def test_urls_open_redis_stores() -> None:
    single = open_store("redis://127.0.0.1:6380/3?prefix=app:&ttl=60&timeout=2")
    assert isinstance(single, RedisStore)
    assert (single.prefix, single.ttl) == ("app:", 60.0)
    assert single.backend.where == "Redis at 127.0.0.1:6380/3"
    tls = open_store("rediss://user:s3cret@cache.internal")
    assert tls.backend.where == "TLS Redis at cache.internal:6379/0"
    assert "s3cret" not in repr(tls) and "s3cret" not in tls.url
    cluster = open_store("redis+cluster://node1:7000,node2:7001")
    assert cluster.backend.where == "Redis Cluster at node1:7000,node2:7001"
    assert cluster.backend.connection.cluster
    assert "search" not in cluster.capabilities
    assert {"window", "pop_turn", "replace", "fork", "lease", "records", "shared"} <= (
        cluster.capabilities
    )
    explicit = open_store("redis://h/0?prefix=url:", prefix="argument:")
    assert explicit.prefix == "argument:"


@pytest.mark.parametrize(
    "url, problem",
    [
        ("redis://h:99999/0", "port"),
        ("redis://h/zero", "number"),
        ("redis://a:1,b:2/0", "redis\\+cluster"),
        ("redis+cluster://a:1/2", "database 0"),
        ("redis://h/0?colour=blue", "unknown option 'colour'"),
        ("redis://h/0?prefix=a{b", "hash"),
        ("redis://h/0?ttl=-1", "ttl"),
        ("redis://h/0?ssl_cert_reqs=none", "rediss://"),
        ("redis://:hunter2@h/0?colour=x", "colour"),
    ],
)
def test_bad_urls_are_user_errors(url: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem) as caught:
        open_store(url)
    assert "hunter2" not in str(caught.value)


def test_a_missing_redis_package_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from threadline.sessions import open_store\n"
        "from threadline.errors import MissingDependencyError\n"
        "try:\n    open_store('redis://127.0.0.1:6379/0')\n"
        "except MissingDependencyError as exc:\n    print('EXTRA', exc.extra, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "EXTRA redis" in done.stdout, done.stderr
    assert "threadline[redis]" in done.stdout or "'.[redis]'" in done.stdout
    assert issubclass(MissingDependencyError, ImportError)


async def test_search_is_refused_with_a_reason(store: RedisStore) -> None:
    await store.session("s").add_items([user_message("golden gate")])
    with pytest.raises(UserError, match="cannot search: its backend has no search index"):
        await store.search("golden")


# ---------------------------------------------------------------------- key layout


@pytest.mark.parametrize("session_id", ["plain", "a}b", "{x}", "}{", "%7D", "a{}b", "{"])
def test_the_hash_tag_is_always_the_whole_id(session_id: str) -> None:
    keys = SessionKeys("tl:", session_id)
    names = [keys.d, keys.m, keys.h, keys.l, keys.b, keys.e, keys.r]
    tags = {name[name.index("{") + 1 : name.index("}", name.index("{"))] for name in names}
    assert tags == {encode_id(session_id)}
    assert "{" not in encode_id(session_id) and "}" not in encode_id(session_id)


def test_escaped_ids_never_collide() -> None:
    ids = ["a}b", "a%7Db", "a%257Db", "a{b", "a%7Bb"]
    assert len({encode_id(session_id) for session_id in ids}) == len(ids)


async def test_a_cluster_keeps_each_session_on_one_slot() -> None:
    url = cluster_url()
    store = RedisStore(url, prefix=new_prefix())
    try:
        ids = ["a}b", "{x}", "user-1", "用户"]
        for session_id in ids:
            session = store.session(session_id)
            async with session.lease():
                await session.add_items([user_message(session_id)], records={"meta": 1})
        client = await store.backend.connection.client()
        for session_id in ids:
            keys = SessionKeys(store.prefix, session_id)
            slots = {
                await client.cluster_keyslot(name)
                for name in (keys.d, keys.m, keys.h, keys.b, keys.e, keys.r)
            }
            assert len(slots) == 1
        assert sorted(info.session_id for info in await store.list_sessions()) == sorted(ids)
    finally:
        await store.aclose()
        drop_prefix(url, store.prefix)


async def test_payloads_and_window_facts_are_stored_side_by_side(store: RedisStore) -> None:
    items = [
        user_message("q"),
        function_call("c:1", "f", "{}"),
        function_call_output("c:1", "out"),
        assistant_message("a"),
    ]
    await store.session("layout").add_items(items)
    keys = SessionKeys(store.prefix, "layout")
    connection = store.backend.connection
    payloads = await connection.command("LRANGE", keys.d, 0, -1)
    facts = await connection.command("LRANGE", keys.m, 0, -1)
    assert [json.loads(p) for p in payloads] == items
    assert [f.split(b":", 1)[0][:1] for f in facts] == [b"1", b"2", b"3", b"0"]
    assert facts[1].endswith(b":c:1") and facts[2].endswith(b":c:1")


# ---------------------------------------------------------------------- ttl


async def test_sessions_expire_after_their_ttl(url: str) -> None:
    store = RedisStore(url, prefix=new_prefix(), ttl=0.6)
    try:
        session = store.session("brief")
        await session.add_items([user_message("soon gone")], records={"meta": 1})
        keys = SessionKeys(store.prefix, "brief")
        for name in (keys.d, keys.m, keys.h, keys.r):
            assert 0 < await store.backend.connection.command("PTTL", name) <= 600
        await asyncio.sleep(0.4)
        await session.add_items([user_message("refreshed")])  # a write refreshes the ttl
        await asyncio.sleep(0.4)
        assert len(await session.get_items()) == 2
        await asyncio.sleep(0.5)
        assert await session.get_items() == []
        assert await store.session_info("brief") is None
        assert list(await store.list_sessions()) == []  # the index entry is dropped too
        assert (await store.stats()).details["index_entries"] == 0
    finally:
        await store.aclose()
        drop_prefix(url, store.prefix)


# ---------------------------------------------------------------------- writes and retries


async def test_a_retried_write_is_applied_once(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = store.backend
    real = backend._write_args

    def same_write_id(session_id: str, fence: Any) -> list[Any]:
        args = real(session_id, fence)
        args[1] = "one-write-id"
        return args

    monkeypatch.setattr(backend, "_write_args", same_write_id)
    session = store.session("retried")
    await session.add_items([user_message("q"), assistant_message("a")])
    await session.add_items([user_message("q"), assistant_message("a")])  # the retry
    assert await session.get_items() == [user_message("q"), assistant_message("a")]


async def test_a_dropped_connection_is_retried_for_reads_and_writes(own: OwnRedis) -> None:
    store = RedisStore(own.url)  # a server of this test: every client of it may be cut off
    try:
        session = store.session("dropped")
        await session.add_items([user_message("before")])
        own.cli("CLIENT", "KILL", "TYPE", "normal")
        assert await session.get_items() == [user_message("before")]
        own.cli("CLIENT", "KILL", "TYPE", "normal")
        await session.add_items([user_message("after")])
        assert await session.get_items() == [user_message("before"), user_message("after")]
    finally:
        await store.aclose()


async def test_a_delete_cut_after_it_ran_answers_true_once(own: OwnRedis) -> None:
    from threadline.sessions.redis._client import _SHAS

    async with CutProxy("127.0.0.1", own.port) as proxy:
        store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", prefix="cut:")
        try:
            session = store.session("doomed")
            await session.add_items([user_message("one")])
            assert await store.delete_session("other") is False  # the server has the script
            # the delete reaches the server and runs; its answer never comes back, so the
            # store retries it on a new connection
            proxy.arm(_SHAS["delete"].encode())
            assert await store.delete_session("doomed") is True
            assert proxy.cuts == 1
            assert await session.get_items() == []
            assert await store.delete_session("doomed") is False  # a new delete: nothing left
            # a session made again after a delete is not removed by that delete's retry
            await session.add_items([user_message("again")])
            proxy.arm(_SHAS["delete"].encode())
            assert await store.delete_session("doomed") is True
            assert proxy.cuts == 2
            assert await store.delete_session("doomed") is False
        finally:
            await store.aclose()


async def test_scripts_come_back_after_a_script_flush(own: OwnRedis) -> None:
    store = RedisStore(own.url, prefix="flush:")
    try:
        session = store.session("s")
        await session.add_items([user_message("one")])
        own.cli("SCRIPT", "FLUSH")
        await session.add_items([user_message("two")])
        assert len(await session.get_window(max_items=5)) == 2
    finally:
        await store.aclose()


# ---------------------------------------------------------------------- failures of the server


async def test_an_unreachable_server_is_a_store_server_error() -> None:
    own_redis_available()
    from ..redis_servers import free_port

    port = free_port()
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{port}/0", connect_timeout=1)
    try:
        with pytest.raises(StoreServerError) as caught:
            await store.session("s").get_items()
        message = str(caught.value)
        assert f"Redis at 127.0.0.1:{port}/0" in message and "cannot reach" in message
        assert "hunter2" not in message
        assert caught.value.server == f"Redis at 127.0.0.1:{port}/0"
    finally:
        await store.aclose()


async def test_a_wrong_password_is_named_without_the_password() -> None:
    own_redis_available()
    server = OwnRedis("--requirepass", "right-one").start()
    try:
        for url in (f"redis://:wrong-one@127.0.0.1:{server.port}/0", server.url):
            store = RedisStore(url)
            try:
                with pytest.raises(StoreServerError, match="credentials") as caught:
                    await store.session("s").add_items([user_message("x")])
                assert "wrong-one" not in str(caught.value)
                assert "right-one" not in str(caught.value)
            finally:
                await store.aclose()
        good = RedisStore(f"redis://:right-one@127.0.0.1:{server.port}/0")
        await good.session("s").add_items([user_message("x")])
        assert len(await good.session("s").get_items()) == 1
        await good.aclose()
    finally:
        server.close()


async def test_a_full_redis_refuses_the_turn_whole() -> None:
    own_redis_available()
    server = OwnRedis("--maxmemory", "3mb", "--maxmemory-policy", "noeviction").start()
    store = RedisStore(server.url)
    try:
        session = store.session("full")
        await session.add_items([user_message("kept")])
        big = [assistant_message("x" * 20_000) for _ in range(20)]
        with pytest.raises(StoreServerError, match="out of memory") as caught:
            for _ in range(400):
                await session.add_items([user_message("turn"), *big])
        assert "maxmemory" in str(caught.value)
        items = await session.get_items()
        assert items[0] == user_message("kept")
        assert (len(items) - 1) % 21 == 0  # whole turns only: none was half written
        count = len(items)
        with pytest.raises(StoreServerError, match="out of memory"):
            await session.add_items([user_message("turn"), *big])
        with pytest.raises(StoreServerError, match="out of memory"):
            await session.replace_items([user_message("summary"), *big])  # refused whole
        assert len(await session.get_items()) == count
        async with session.lease():  # removing still works on a full server, and frees it
            assert len(await session.pop_turn()) == 21
        assert await store.delete_session("full") is True
        await session.add_items([user_message("room again")])
    finally:
        await store.aclose()
        server.close()


async def test_a_server_restart_during_use_is_survived() -> None:
    own_redis_available()
    server = OwnRedis().start()
    store = RedisStore(server.url, connect_timeout=1)
    try:
        session = store.session("restarted")
        await session.add_items([user_message("before the restart")])
        server.kill()
        with pytest.raises(StoreServerError, match="cannot reach"):
            await session.add_items([user_message("while down")])
        server.start()  # an empty server again (no persistence): the scripts are gone too
        await session.add_items([user_message("after the restart")])
        assert await session.get_items() == [user_message("after the restart")]
    finally:
        await store.aclose()
        server.close()


# ---------------------------------------------------------------------- event loops


def test_one_store_serves_run_sync_and_asyncio_run(url: str) -> None:
    store = RedisStore(url, prefix=new_prefix())
    try:
        agent = Agent(name="A", model=ScriptedModel(["one", "two", "three"]))
        session = store.session("loops")
        Runner.run_sync(agent, "first", session=session)
        asyncio.run(Runner.run(agent, "second", session=session))
        Runner.run_sync(agent, "third", session=session)
        texts = [item["content"] for item in asyncio.run(session.get_items())[::2]]
        assert texts == ["first", "second", "third"]
    finally:
        asyncio.run(store.aclose())
        drop_prefix(url, store.prefix)


# ---------------------------------------------------------------------- many processes


def _scripted_server() -> Any:
    from threadline.testing.server import ScriptedServer, reply, tool_calls

    def respond(record: Any) -> Any:
        messages = record.body["messages"]
        last = messages[-1]
        if last["role"] == "user":
            return tool_calls(("lookup", {"q": last["content"]}))
        return reply(f"answer to {last['content']}")

    server = ScriptedServer()
    server.responder = respond
    return server


def _check_history(items: list[Any], expected_tags: set[str]) -> None:
    """Whole turns of four items each, one per expected tag, and valid to send."""
    assert len(items) == 4 * len(expected_tags), [i.get("content", i.get("type")) for i in items]
    seen = set()
    for start in range(0, len(items), 4):
        question, call, output, answer = items[start : start + 4]
        tag = question["content"]
        assert question["role"] == "user"
        assert call["type"] == "function_call" and json.loads(call["arguments"]) == {"q": tag}
        assert output["type"] == "function_call_output" and output["call_id"] == call["call_id"]
        assert output["output"] == f"found {tag}"
        assert answer["content"][0]["text"] == f"answer to found {tag}"
        seen.add(tag)
    assert seen == expected_tags


def test_four_processes_share_one_redis_store(url: str) -> None:
    prefix = new_prefix()
    session_ids = [f"user-{number}" for number in range(100)]
    server = _scripted_server().start()
    context = multiprocessing.get_context("spawn")
    try:
        with context.Pool(4) as pool:
            arguments = [
                (url, prefix, server.base_url, worker, session_ids[worker:] + session_ids[:worker])
                for worker in range(4)
            ]
            assert sorted(pool.starmap(_workers.redis_runs, arguments)) == [0, 1, 2, 3]

        async def check() -> None:
            store = RedisStore(url, prefix=prefix)
            try:
                for session_id in session_ids:
                    items = await store.session(session_id).get_items()
                    _check_history(items, {f"{worker}|{session_id}" for worker in range(4)})
                stats = await store.stats()
                assert (stats.sessions, stats.items) == (100, 1600)
            finally:
                await store.aclose()

        asyncio.run(check())
    finally:
        server.stop()
        drop_prefix(url, prefix)


def test_a_killed_lease_holder_is_taken_over_within_the_ttl(url: str, tmp_path: Path) -> None:
    prefix, ttl = new_prefix(), 1.0
    ready = tmp_path / "ready"
    context = multiprocessing.get_context("spawn")
    worker = context.Process(
        target=_workers.redis_hold_and_die, args=(url, prefix, "held", ttl, str(ready))
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and worker.is_alive()
            time.sleep(0.02)
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        killed = time.monotonic()
        worker.join(10)

        async def take_over() -> float:
            store = RedisStore(url, prefix=prefix)
            try:
                session = store.session("held", session_settings=SessionSettings(lease_ttl=ttl))
                async with session.lease(timeout=10):
                    waited = time.monotonic() - killed
                    await session.add_items([assistant_message("the next run writes")])
                assert await session.get_items() == [
                    user_message("turn of the killed worker"),
                    assistant_message("the next run writes"),
                ]
                return waited
            finally:
                await store.aclose()

        assert asyncio.run(take_over()) < ttl + 0.5
    finally:
        if worker.is_alive():
            worker.kill()
        drop_prefix(url, prefix)
