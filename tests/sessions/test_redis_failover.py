"""The Redis store on a Redis Cluster with replicas, through failovers.

Each test starts its own 3-master, 3-replica cluster (:class:`~tests.redis_cluster.ReplicatedCluster`,
a 1 s node timeout) and kills or fails over a master while the store writes:

* a master SIGKILLed under four writer tasks and a ``Runner.run`` loop, and a manual
  ``CLUSTER FAILOVER`` under the same: no error reaches the caller, nothing is stored twice,
  every history is whole turns, valid to send;
* a lease held across a failover still excludes a second store;
* without ``wait_replicas`` a master that dies before replicating loses turns it acknowledged
  (the replica is frozen with SIGSTOP and its link closed, so exactly those are lost); with ``wait_replicas=1`` those
  writes raise instead and nothing acknowledged is lost;
* a slot with no live master: after ``failover_timeout`` a StoreServerError names the node.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from threadline import Agent, Runner, function_tool
from threadline.errors import SessionBusyError, StoreServerError, UserError
from threadline.items import assistant_message, message_text, user_message, validate_items
from threadline.sessions import SessionSettings
from threadline.sessions.redis import RedisStore
from threadline.sessions.redis._keys import SessionKeys
from threadline.testing import ScriptedModel
from threadline.testing.scripted_model import call

from ..redis_cluster import ReplicatedCluster
from ..redis_servers import OwnRedis, cluster_url, drop_prefix, new_prefix, own_redis_available
from ..redis_servers import redis_url as shared_url

pytestmark = pytest.mark.redis

PREFIX = "tlfail:"


@pytest.fixture
def cluster() -> Iterator[ReplicatedCluster]:
    with ReplicatedCluster() as started:
        yield started


def _slot(session_id: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(SessionKeys(PREFIX, session_id).d.encode()))


def _serving_master(cluster: ReplicatedCluster, index: int) -> int:
    """The port of the ``index``-th live master that serves slots as the cluster sees it now.

    Roles are read again until one qualifies: on a loaded machine a master can be seen
    failing for a moment and its replica promoted (the old master rejoining as a replica),
    so a port read once from ``master_ports()`` may no longer be a master."""
    deadline = time.monotonic() + 30
    while True:
        owners = {owner for _, _, owner in cluster._slot_ranges()}
        masters = [port for port in cluster.master_ports() if port in owners]
        if len(masters) > index:
            return masters[index]
        if time.monotonic() > deadline:
            raise AssertionError(f"no master #{index} serving slots: {cluster.nodes()}")
        time.sleep(0.05)


def _ids_on(cluster: ReplicatedCluster, port: int, count: int, stem: str) -> list[str]:
    """``count`` session ids whose keys live on the master on ``port``."""
    deadline = time.monotonic() + 30
    while True:  # a node seen as failing for a moment (a loaded machine) lists no slots
        ranges = [(start, end) for start, end, owner in cluster._slot_ranges() if owner == port]
        if ranges:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the master on {port} serves no slots: {cluster.nodes()}")
        time.sleep(0.05)
    found = []
    for number in range(1_000_000):  # a master serves about a third of the slots
        candidate = f"{stem}{number}"
        slot = _slot(candidate)
        if any(start <= slot <= end for start, end in ranges):
            found.append(candidate)
            if len(found) == count:
                return found
    raise AssertionError(f"no {count} session ids on the slots {ranges}")


@function_tool
def lookup(q: str) -> str:
    """Look ``q`` up."""
    return f"found {q}"


def _agent() -> Agent:
    def respond(request: Any) -> Any:
        last = request.input[-1]
        if last.get("type") == "function_call_output":
            return f"answer to {last['output']}"
        tag = message_text(last)
        return [call("lookup", {"q": tag}, call_id=f"{tag}-c")]

    return Agent(name="A", model=ScriptedModel(responder=respond), tools=[lookup])


def _check_run_history(items: list[Any], acked: list[str]) -> None:
    """Whole turns (question, call, output, answer), each question once, in order, the ones
    acknowledged among them (a turn the dead master had not replicated may be missing)."""
    validate_items(items)
    assert len(items) % 4 == 0, [i.get("content", i.get("type")) for i in items]
    questions = []
    for start in range(0, len(items), 4):
        question, made, output, answer = items[start : start + 4]
        tag = question["content"]
        assert made["type"] == "function_call" and made["call_id"] == f"{tag}-c"
        assert output["type"] == "function_call_output" and output["call_id"] == made["call_id"]
        assert answer["content"][0]["text"] == f"answer to found {tag}"
        questions.append(tag)
    assert len(questions) == len(set(questions)), "a turn was stored twice"
    order = {tag: n for n, tag in enumerate(acked)}
    assert [order[tag] for tag in questions if tag in order] == sorted(
        order[tag] for tag in questions if tag in order
    )


class _Load:
    """Four writer tasks appending two-item batches and a ``Runner.run`` loop, on sessions of
    one master, counting what was acknowledged and every error that reached them."""

    def __init__(self, store: RedisStore, writer_ids: list[str], run_id: str) -> None:
        self.store = store
        self.writer_ids = writer_ids
        self.run_id = run_id
        self.acked: dict[str, list[str]] = {sid: [] for sid in [*writer_ids, run_id]}
        self.acked_at: dict[str, float] = {}
        self.errors: list[str] = []
        self.stopping = False
        self.tasks: list[asyncio.Task[None]] = []

    async def _writer(self, session_id: str) -> None:
        session = self.store.session(session_id)
        for number in itertools.count():
            if self.stopping:
                return
            tag = f"{session_id}:{number}"
            try:
                await session.add_items([user_message(tag), assistant_message(tag)])
            except Exception as exc:  # counted: the test asserts there are none
                self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            self.acked[session_id].append(tag)
            self.acked_at[tag] = time.monotonic()
            await asyncio.sleep(0.002)

    async def _runs(self) -> None:
        agent = _agent()
        session = self.store.session(self.run_id, session_settings=SessionSettings(lease_ttl=10))
        for number in itertools.count():
            if self.stopping:
                return
            tag = f"run{number}"
            try:
                await Runner.run(agent, tag, session=session)
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            self.acked[self.run_id].append(tag)
            self.acked_at[tag] = time.monotonic()

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._writer(sid)) for sid in self.writer_ids]
        self.tasks.append(asyncio.create_task(self._runs()))

    async def until(self, writes: int) -> None:
        deadline = time.monotonic() + 30
        while sum(map(len, self.acked.values())) < writes:
            assert time.monotonic() < deadline, "the writers did not get going"
            await asyncio.sleep(0.01)

    async def stop(self) -> int:
        self.stopping = True
        await asyncio.gather(*self.tasks)
        return sum(map(len, self.acked.values()))

    async def check(self, killed_at: float | None = None) -> int:
        """Assert every history; the number of acknowledged writes that are missing (only
        ones acknowledged in the second before ``killed_at`` may be)."""
        lost = 0
        missing: list[str] = []
        for session_id in self.writer_ids:
            items = await self.store.session(session_id).get_items()
            tags = [item["content"] for item in items[::2]]
            assert [message_text(item) for item in items[1::2]] == tags, "a batch was split"
            assert len(tags) == len(set(tags)), f"a batch of {session_id} was stored twice"
            acked = self.acked[session_id]
            assert [t for t in tags if t in set(acked)] == [t for t in acked if t in set(tags)]
            missing += set(acked) - set(tags)
        items = await self.store.session(self.run_id).get_items()
        _check_run_history(items, self.acked[self.run_id])
        stored = {item["content"] for item in items[::4]}
        missing += set(self.acked[self.run_id]) - stored
        for tag in missing:  # the dead master's last writes, not yet replicated, and no others
            assert killed_at is not None, f"{tag} was acknowledged and is lost"
            assert killed_at - 1.0 <= self.acked_at[tag] <= killed_at, f"{tag} is lost"
        lost += len(missing)
        return lost


async def test_a_killed_master_fails_over_under_writers_and_runs(
    cluster: ReplicatedCluster,
) -> None:
    victim = _serving_master(cluster, 0)
    on_victim = _ids_on(cluster, victim, 5, "kill-")
    store = RedisStore(cluster.url, prefix=PREFIX)
    load = _Load(store, on_victim[:4], on_victim[4])
    try:
        load.start()
        await load.until(40)
        replica = cluster.kill_master(victim)
        killed = time.monotonic()
        before = sum(map(len, load.acked.values()))
        took = await asyncio.to_thread(cluster.wait_master, replica)
        await load.until(before + 40)  # and they go on on the new master
        writes = await load.stop()
        assert load.errors == []
        lost = await load.check(killed)
        print(
            f"\nSIGKILL: {writes} writes, failover {took:.2f} s, writers resumed "
            f"{time.monotonic() - killed:.2f} s after the kill, {lost} acknowledged lost"
        )
    finally:
        load.stopping = True
        await asyncio.gather(*load.tasks, return_exceptions=True)
        await store.aclose()


async def test_a_manual_failover_under_writers_loses_nothing(cluster: ReplicatedCluster) -> None:
    victim = _serving_master(cluster, 1)
    on_victim = _ids_on(cluster, victim, 5, "manual-")
    store = RedisStore(cluster.url, prefix=PREFIX)
    load = _Load(store, on_victim[:4], on_victim[4])
    try:
        load.start()
        await load.until(40)
        replica = cluster.replica_of(victim)
        await asyncio.to_thread(cluster.failover, replica)
        await asyncio.to_thread(cluster.wait_master, replica)
        before = sum(map(len, load.acked.values()))
        await load.until(before + 40)
        await load.stop()
        assert load.errors == []
        # a manual failover waits for the replica to catch up: nothing acknowledged is lost
        assert await load.check() == 0
    finally:
        load.stopping = True
        await asyncio.gather(*load.tasks, return_exceptions=True)
        await store.aclose()


async def test_a_lease_held_across_a_failover_still_excludes_others(
    cluster: ReplicatedCluster,
) -> None:
    victim = _serving_master(cluster, 2)
    (session_id,) = _ids_on(cluster, victim, 1, "leased-")
    holder = RedisStore(cluster.url, prefix=PREFIX)
    other = RedisStore(cluster.url, prefix=PREFIX)
    ttl = 8.0
    settings = SessionSettings(lease_ttl=ttl)
    try:
        held = holder.session(session_id, session_settings=settings)
        async with held.lease():
            await held.add_items([user_message("before")])
            await asyncio.to_thread(cluster.wait_replicated, victim)  # the lease key too
            taken = time.monotonic()
            replica = cluster.kill_master(victim)
            await asyncio.to_thread(cluster.wait_master, replica)
            rival = other.session(session_id, session_settings=settings)
            with pytest.raises(SessionBusyError):
                async with rival.lease(timeout=0):
                    pass
            assert time.monotonic() - taken < ttl
        # released by its holder (its fence still held on the new master): taken at once
        async with other.session(session_id, session_settings=settings).lease(timeout=0):
            pass
        items = await other.session(session_id).get_items()
        assert items == [user_message("before")]
    finally:
        await holder.aclose()
        await other.aclose()


async def _turns(store: RedisStore, session_id: str, first: int, count: int) -> list[int]:
    """Write ``count`` turns; the numbers of the ones acknowledged."""
    acked = []
    session = store.session(session_id)
    for number in range(first, first + count):
        try:
            await session.add_items([user_message(f"q{number}"), assistant_message(f"a{number}")])
        except StoreServerError as exc:
            assert "WAIT confirmed it on 0 of 1 replicas" in str(exc), str(exc)
            continue
        acked.append(number)
    return acked


async def _die_before_replicating(
    cluster: ReplicatedCluster, query: str
) -> tuple[list[int], list[int]]:
    """Write a turn, freeze the replica, write five more, kill the master, promote the
    replica, start the old master again (it rejoins as the new one's replica) and write a
    last turn: (acknowledged turns, turns the new master holds)."""
    victim = _serving_master(cluster, 0)
    (session_id,) = _ids_on(cluster, victim, 1, "lost-")
    store = RedisStore(cluster.url + query, prefix=PREFIX)
    replica = cluster.replica_of(victim)
    # turns not under test (the first, and the last through the new master) wait up to 5 s
    # for their replica: on a loaded machine one may take longer than 200 ms to confirm
    patient = query.replace("=200", "=5000")
    try:
        first = RedisStore(cluster.url + patient, prefix=PREFIX)
        try:
            acked = await _turns(first, session_id, 0, 1)
        finally:
            await first.aclose()
        await asyncio.to_thread(cluster.wait_replicated, victim)
        # frozen (SIGSTOP), then its link closed by the master: it cannot reconnect, and
        # nothing the master writes now reaches it (not even through socket buffers)
        cluster.stop(replica)
        try:
            cluster.cut_replicas(victim)
            acked += await _turns(store, session_id, 1, 5)
            cluster.kill(victim)
        finally:
            cluster.resume(replica)
        await asyncio.to_thread(cluster.failover, replica, "TAKEOVER")
        await asyncio.to_thread(cluster.wait_master, replica)
        cluster.restart(victim)
        await asyncio.to_thread(cluster.wait_healthy)
        # through the new master, confirmed by the old one (its new replica)
        late = RedisStore(cluster.url + patient, prefix=PREFIX)
        try:
            acked += await _turns(late, session_id, 6, 1)
        finally:
            await late.aclose()
        items = await store.session(session_id).get_items()
        held = [int(item["content"][1:]) for item in items[::2]]
        return acked, held
    finally:
        await store.aclose()


async def test_without_wait_a_dying_master_loses_acknowledged_turns(
    cluster: ReplicatedCluster,
) -> None:
    acked, held = await _die_before_replicating(cluster, "")
    assert acked == [0, 1, 2, 3, 4, 5, 6]
    assert held == [0, 6]  # the five turns acknowledged while the replica was frozen are gone
    print(f"\nwithout wait_replicas: {len(set(acked) - set(held))} acknowledged turns lost")


async def test_with_wait_no_acknowledged_turn_is_lost(cluster: ReplicatedCluster) -> None:
    acked, held = await _die_before_replicating(cluster, "?wait_replicas=1&wait_timeout_ms=200")
    assert acked == [0, 6]  # the five writes WAIT could not confirm raised: not acknowledged
    assert held == [0, 6]
    assert set(acked) <= set(held)


async def test_a_slot_without_a_master_fails_after_failover_timeout() -> None:
    with ReplicatedCluster(password="s3cret-pw") as cluster:
        await _without_a_master(cluster)


async def _without_a_master(cluster: ReplicatedCluster) -> None:
    victim = _serving_master(cluster, 0)
    (session_id,) = _ids_on(cluster, victim, 1, "dead-")
    store = RedisStore(cluster.url + "?failover_timeout=1.5", prefix=PREFIX)
    try:
        await store.session(session_id).add_items([user_message("before")])
        replica = cluster.replica_of(victim)
        cluster.kill(replica)
        cluster.kill(victim)
        started = time.monotonic()
        with pytest.raises(StoreServerError) as raised:
            await store.session(session_id).get_items()
        waited = time.monotonic() - started
        assert 1.5 <= waited < 8
        message = str(raised.value)
        assert "failover_timeout=1.5 s" in message
        assert "Redis Cluster at 127.0.0.1:" in message
        assert "last tried 127.0.0.1:" in message or "CLUSTERDOWN" in message, message
        assert "s3cret-pw" not in message and "s3cret-pw" not in repr(raised.value)
        print(f"\n{message}")
    finally:
        await store.aclose()


# ---------------------------------------------------------------------- without a failover


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("failover_timeout=0", "failover_timeout must be"),
        ("failover_timeout=soon", "failover_timeout must be"),
        ("wait_replicas=-1", "wait_replicas must be a whole number >= 0"),
        ("wait_replicas=one", "wait_replicas must be a whole number"),
        ("wait_replicas=1&wait_timeout_ms=0", "wait_timeout_ms must be a whole number >= 1"),
    ],
)
def test_bad_failover_options_are_user_errors(query: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        RedisStore(f"redis+cluster://127.0.0.1:7000?{query}")


def test_failover_options_reach_the_connection() -> None:
    store = RedisStore(
        "redis+cluster://127.0.0.1:7000?failover_timeout=3&wait_replicas=2&wait_timeout_ms=50"
    )
    config = store.backend.connection.config
    assert (config.failover_timeout, config.wait_replicas, config.wait_timeout_ms) == (3, 2, 50)
    defaults = RedisStore("redis://127.0.0.1:6379/0", failover_timeout=7).backend.connection
    assert (defaults.config.failover_timeout, defaults.config.wait_replicas) == (7, 0)


async def test_a_write_no_replica_confirms_raises_instead_of_acknowledging() -> None:
    url = shared_url()  # the shared server has no replica
    store = RedisStore(f"{url}?wait_replicas=1&wait_timeout_ms=20", prefix=new_prefix())
    try:
        session = store.session("unconfirmed")
        with pytest.raises(StoreServerError, match="WAIT confirmed it on 0 of 1 replicas"):
            await session.add_items([user_message("q")])
        assert await session.get_items() == [user_message("q")]  # on the primary only
    finally:
        await store.aclose()
        drop_prefix(url, store.prefix)


async def test_a_write_a_replica_confirms_is_acknowledged() -> None:
    own_redis_available()
    primary = OwnRedis().start()
    replica = OwnRedis("--replicaof", "127.0.0.1", str(primary.port)).start()
    try:
        deadline = time.monotonic() + 10
        while "master_link_status:up" not in replica.cli("INFO", "replication"):
            assert time.monotonic() < deadline, "the replica did not connect"
            await asyncio.sleep(0.02)
        store = RedisStore(f"{primary.url}?wait_replicas=1&wait_timeout_ms=2000")
        try:
            session = store.session("confirmed")
            await session.add_items([user_message("q"), assistant_message("a")])
            await session.add_items([user_message("q2")])
            await session.pop_item()
            async with session.lease():
                await session.add_items([assistant_message("leased")])
            copy = RedisStore(replica.url)
            try:  # WAIT returned: the replica has every write already
                assert await copy.session("confirmed").get_items() == [
                    user_message("q"),
                    assistant_message("a"),
                    assistant_message("leased"),
                ]
            finally:
                await copy.aclose()
        finally:
            await store.aclose()
    finally:
        replica.close()
        primary.close()


async def test_a_retried_append_that_landed_touches_the_session_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = shared_url()
    store = RedisStore(url, prefix=new_prefix(), ttl=1000)
    backend = store.backend
    real = backend._write_args

    def same_write_id(session_id: str, fence: Any) -> list[Any]:
        args = real(session_id, fence)
        args[1] = "landed-write-id"
        return args

    monkeypatch.setattr(backend, "_write_args", same_write_id)
    keys = SessionKeys(store.prefix, "touched")
    try:
        session = store.session("touched")
        await session.add_items([user_message("q")])
        import redis

        with redis.Redis.from_url(url) as raw:
            updated = int(raw.hget(keys.h, "u"))
            for key in (keys.d, keys.m, keys.h):
                raw.pexpire(key, 5000)  # as if the ttl had run down since
            await asyncio.sleep(0.002)
            await session.add_items([user_message("q")])  # the retry: DUP
            assert await session.get_items() == [user_message("q")]
            assert int(raw.hget(keys.h, "u")) > updated
            assert all(raw.pttl(key) > 900_000 for key in (keys.d, keys.m, keys.h))
    finally:
        await store.aclose()
        drop_prefix(url, store.prefix)


async def test_the_command_table_is_read_once_per_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from redis._parsers import AsyncCommandsParser

    from threadline.sessions.redis import _client

    url = cluster_url()
    monkeypatch.setattr(_client, "_COMMAND_TABLES", {})
    reads = 0
    real = AsyncCommandsParser.initialize

    async def counted(self: Any, node: Any = None) -> None:
        nonlocal reads
        reads += 1
        await real(self, node)

    monkeypatch.setattr(AsyncCommandsParser, "initialize", counted)
    firsts = []
    for _ in range(3):
        store = RedisStore(url, prefix=new_prefix())
        try:
            started = time.perf_counter()
            await store.session("first").get_items()
            firsts.append(time.perf_counter() - started)
        finally:
            await store.aclose()
    assert reads == 1
    print(f"\nfirst call of a new cluster store: {[round(t * 1000, 1) for t in firsts]} ms")


async def test_an_error_of_threadline_itself_is_not_retried_as_a_failover() -> None:
    store = RedisStore(cluster_url(), prefix=new_prefix())
    calls = 0

    async def broken(client: Any) -> Any:
        nonlocal calls
        calls += 1
        raise AttributeError("a bug, not a failover")

    try:
        with pytest.raises(AttributeError, match="a bug"):
            await store.backend.connection._run(broken)
        assert calls == 1
    finally:
        await store.aclose()


async def test_redis_pys_own_transient_node_errors_are_retried() -> None:
    from redis.crc import key_slot

    from threadline.sessions.redis._client import _transient

    def inside_redis_py() -> BaseException:
        try:
            key_slot(None)  # type: ignore[arg-type]  # an AttributeError raised in redis-py
        except (AttributeError, TypeError) as exc:
            return exc
        raise AssertionError("key_slot(None) did not fail")

    assert _transient(inside_redis_py())
    assert not _transient(AttributeError("of threadline's own"))

    store = RedisStore(cluster_url(), prefix=new_prefix())
    calls = 0

    async def flaky(client: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise inside_redis_py()
        return "answered"

    try:
        assert await store.backend.connection._run(flaky) == "answered"
        assert calls == 2
    finally:
        await store.aclose()
