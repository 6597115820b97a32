"""SQLite under concurrency: threads, the event loop, other writers, processes, the lease."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from threadline.errors import (
    SessionBusyError,
    SessionError,
)
from threadline.items import assistant_message, user_message
from threadline.sessions import SessionSettings, SQLiteSession, SQLiteStore

from . import _workers
from ._helpers import history, raw

# ---------------------------------------------------------------------- threads and the loop


async def test_sqlite_never_runs_on_the_event_loop(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[int] = set()
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        threads.add(threading.get_ident())
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(lambda statement: threads.add(threading.get_ident()))
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    session = SQLiteSession("loop", db, session_settings=SessionSettings(lease_ttl=5))
    try:
        async with session.lease():
            await session.add_items(history(3))
            await session.get_items()
            await session.get_items(limit=2)
            await session.get_window(max_tokens=10)
            await session.pop_item()
            await session.pop_turn()
            await session.replace_items(history(2))
            await session.fork("loop-fork")
            await session.store.list_sessions()
            await session.clear_session()
    finally:
        session.close()
    assert threads
    assert threading.get_ident() not in threads


async def test_writes_queued_together_commit_together(store: SQLiteStore) -> None:
    await store.setup()
    started, gate = threading.Event(), threading.Event()

    def block(conn: sqlite3.Connection) -> None:
        started.set()
        gate.wait(10)

    blocker = store._engine.submit_write(block)
    assert await asyncio.to_thread(started.wait, 10)
    statements: list[str] = []
    conn = store._engine._write_conn
    assert conn is not None
    conn.set_trace_callback(statements.append)

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO threadline_leases (session_id, owner, expires_at) VALUES ('x', 'y', 0)"
        )
        raise RuntimeError("this job fails alone")

    writes = [
        asyncio.ensure_future(store.session(f"s{number}").add_items(history(2)))
        for number in range(20)
    ]
    failing = asyncio.wrap_future(store._engine.submit_write(boom))
    writes.append(asyncio.ensure_future(store.session("last").add_items(history(1))))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(*writes)
    with pytest.raises(RuntimeError, match="fails alone"):
        await failing
    await asyncio.wrap_future(blocker)
    conn.set_trace_callback(None)
    # the blocker's own transaction, then one for the 21 writes and the failed job queued behind
    assert statements.count("COMMIT") == 2
    listed = {info.session_id: info.item_count for info in await store.list_sessions()}
    assert listed == {**{f"s{number}": 2 for number in range(20)}, "last": 1}
    leases = await store._engine.read(
        lambda c: c.execute("SELECT count(*) FROM threadline_leases WHERE owner != ''").fetchone()[
            0
        ]
    )
    assert leases == 0  # the failed job's insert was rolled back


async def test_cancelled_writes_are_all_or_nothing(store: SQLiteStore) -> None:
    session = store.session("cancel")
    tasks = [
        asyncio.ensure_future(session.add_items([user_message(f"{n}a"), user_message(f"{n}b")]))
        for n in range(30)
    ]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    texts = [item["content"] for item in await session.get_items()]
    assert len(texts) % 2 == 0
    for start in range(0, len(texts), 2):
        assert texts[start][:-1] == texts[start + 1][:-1]
    finished = [task for task in tasks if not task.cancelled()]
    assert len(texts) >= 2 * len(finished)


# ---------------------------------------------------------------------- other writers


async def test_locked_database_is_waited_out(db: Path) -> None:
    store = SQLiteStore(db, busy_timeout=0.02, lock_timeout=10)
    await store.setup()
    with raw(db) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            write = asyncio.ensure_future(store.session("s").add_items(history(1)))
            await asyncio.sleep(0.3)
            assert not write.done()
            blocker.execute("COMMIT")
            await write
            assert await store.session("s").get_items() == history(1)
        finally:
            store.close()


async def test_lock_held_too_long_is_a_clear_error(db: Path) -> None:
    store = SQLiteStore(db, busy_timeout=0.02, lock_timeout=0.2)
    await store.setup()
    with raw(db) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(SessionError, match="locked by another process"):
                await store.session("s").add_items(history(1))
        finally:
            blocker.execute("ROLLBACK")
            store.close()


def _spawn_all(target: Any, arguments: list[tuple[Any, ...]]) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(arguments)) as pool:
        results = [pool.apply_async(target, args) for args in arguments]
        for result in results:
            result.get(timeout=120)


def test_many_processes_lose_and_duplicate_nothing(db: Path) -> None:
    _spawn_all(_workers.add_batches, [(str(db), "shared", worker, 50) for worker in range(4)])
    with raw(db) as conn:
        rows = conn.execute("SELECT seq, data FROM threadline_items ORDER BY seq").fetchall()
    assert [seq for seq, _ in rows] == list(range(400))
    tags = [json.loads(data) for _, data in rows]
    pairs = [(tags[i], tags[i + 1]) for i in range(0, 400, 2)]
    assert all(first["role"] == "user" for first, _ in pairs)
    assert all(first["content"] == second["content"][0]["text"] for first, second in pairs)
    assert sorted(first["content"] for first, _ in pairs) == sorted(
        f"{worker}:{number}" for worker in range(4) for number in range(50)
    )


def test_processes_holding_the_lease_never_interleave(db: Path) -> None:
    _spawn_all(_workers.leased_turns, [(str(db), "turns", worker, 12) for worker in range(3)])
    with raw(db) as conn:
        rows = conn.execute("SELECT data FROM threadline_items ORDER BY seq").fetchall()
        assert (
            conn.execute("SELECT count(*) FROM threadline_leases WHERE owner != ''").fetchone()[0]
            == 0
        )
    items = [json.loads(data) for (data,) in rows]
    assert len(items) == 72
    for start in range(0, 72, 2):
        user, reply = items[start], items[start + 1]
        assert user["role"] == "user" and reply["role"] == "assistant"
        assert user["content"] == reply["content"][0]["text"]


# ---------------------------------------------------------------------- the cross-process lease


async def test_lease_of_a_dead_process_is_taken_over(db: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=_workers.hold_lease_and_die, args=(str(db), "orphaned", 1.5, str(ready))
    )
    child.start()
    await asyncio.to_thread(child.join, 60)
    assert ready.exists()
    session = SQLiteSession("orphaned", db)
    try:
        with pytest.raises(SessionBusyError):
            async with session.lease(wait=False):
                pass
        async with session.lease(timeout=20):
            await session.add_items(history(1))
    finally:
        session.close()


async def test_expired_lease_row_is_taken_over(store: SQLiteStore, db: Path) -> None:
    await store.setup()
    with raw(db) as conn:
        conn.execute(
            "INSERT INTO threadline_leases (session_id, owner, expires_at) VALUES ('s', 'dead-owner', ?)",
            (time.time() + 0.3,),
        )
    session = store.session("s")
    with pytest.raises(SessionBusyError):
        async with session.lease(wait=False):
            pass
    async with session.lease(timeout=10):
        with raw(db) as conn:
            owner = conn.execute("SELECT owner FROM threadline_leases").fetchone()[0]
        assert owner != "dead-owner"


async def test_live_holder_keeps_its_lease_past_the_ttl(db: Path) -> None:
    holder_store, other_store = SQLiteStore(db), SQLiteStore(db)  # as if two processes
    short = SessionSettings(lease_ttl=0.3)
    holder = holder_store.session("s", session_settings=short)
    other = other_store.session("s", session_settings=short)
    try:
        async with holder.lease():
            for _ in range(3):
                await asyncio.sleep(0.35)  # longer than the ttl: only the heartbeat keeps it
                with pytest.raises(SessionBusyError):
                    async with other.lease(wait=False):
                        pass
        async with other.lease(wait=False):
            pass
        with raw(db) as conn:
            assert (
                conn.execute("SELECT count(*) FROM threadline_leases WHERE owner != ''").fetchone()[
                    0
                ]
                == 0
            )
    finally:
        holder_store.close()
        other_store.close()


async def test_waiter_in_another_store_gets_the_lease_after_release(db: Path) -> None:
    first_store, second_store = SQLiteStore(db), SQLiteStore(db)
    first, second = first_store.session("s"), second_store.session("s")
    events: list[str] = []
    try:
        async with first.lease():
            waiter = asyncio.ensure_future(_take(second, events))
            await asyncio.sleep(0.1)
            assert events == []
            events.append("first out")
        await waiter
        assert events == ["first out", "second in"]
    finally:
        first_store.close()
        second_store.close()


async def _take(session: Any, events: list[str]) -> None:
    async with session.lease(timeout=10):
        events.append("second in")


async def test_cancelled_lease_attempt_leaves_no_row(store: SQLiteStore, db: Path) -> None:
    session = store.session("s")
    await store.setup()
    for _ in range(5):
        attempt = asyncio.ensure_future(_take(session, []))
        await asyncio.sleep(0)
        attempt.cancel()
        await asyncio.gather(attempt, return_exceptions=True)
    await asyncio.sleep(0.05)
    async with session.lease(wait=False):
        pass
    with raw(db) as conn:
        assert (
            conn.execute("SELECT count(*) FROM threadline_leases WHERE owner != ''").fetchone()[0]
            == 0
        )


async def test_idle_writer_thread_leaves_and_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline.sessions.sqlite import _engine as _sqlite_engine

    monkeypatch.setattr(_sqlite_engine, "_IDLE_EXIT", 0.05)
    session = SQLiteSession("idle")  # a :memory: database lives in its one connection
    try:
        await session.add_items(history(2))
        engine = session.store._engine
        for _ in range(100):
            if engine._writer is None:
                break
            await asyncio.sleep(0.02)
        assert engine._writer is None
        await session.add_items(history(3)[2:])
        assert await session.get_items() == history(3)
    finally:
        session.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_uses_its_own_threads(db: Path) -> None:
    session = SQLiteSession("forked", db)
    try:
        asyncio.run(session.add_items(history(1)))  # the parent's threads are running now
        pid = os.fork()
        if pid == 0:  # the child: same objects, no threads of its own yet
            code = 1
            try:
                asyncio.run(session.add_items(history(2)[1:]))
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert asyncio.run(session.get_items()) == history(2)
    finally:
        session.close()


async def test_a_holder_paused_past_its_ttl_is_fenced_off(db: Path, tmp_path: Path) -> None:
    """SIGSTOP a holder past ``lease_ttl`` while this process writes a turn, then SIGCONT it:
    the resumed holder's next write is refused and the histories never interleave."""
    ready, result = tmp_path / "ready", tmp_path / "result"
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=_workers.stalled_turn, args=(str(db), "paused", 1.0, str(ready), str(result))
    )
    child.start()
    try:
        for _ in range(600):
            if ready.exists():
                break
            await asyncio.sleep(0.05)
        assert ready.exists(), "the child never started its turn"
        await asyncio.sleep(0.25)  # let it write a step or two
        os.kill(child.pid or 0, signal.SIGSTOP)
        session = SQLiteSession("paused", db, session_settings=SessionSettings(lease_ttl=5))
        try:
            async with session.lease(timeout=20):
                await session.add_items([user_message("other turn")])
                await session.add_items([assistant_message("other reply")])
        finally:
            os.kill(child.pid or 0, signal.SIGCONT)
        await asyncio.to_thread(child.join, 60)
        assert "LeaseLostError" in result.read_text()
        items = await session.get_items()
        session.close()
    finally:
        if child.is_alive():
            os.kill(child.pid or 0, signal.SIGCONT)
            child.terminate()
    texts = [
        item["content"] if item["role"] == "user" else item["content"][0]["text"] for item in items
    ]
    assert texts[0] == "stalled turn"
    tail = texts.index("other turn")
    assert texts[tail:] == ["other turn", "other reply"]
    assert all(text.startswith("stalled step") for text in texts[1:tail])


def test_forks_in_the_middle_of_writes_leave_children_able_to_write(db: Path) -> None:
    """os.fork() while the writer thread is inside a transaction: every child can write."""
    import warnings

    session = SQLiteSession("busy", db, synchronous="NORMAL")
    stop = threading.Event()

    def keep_writing() -> None:
        async def loop() -> None:
            while not stop.is_set():
                await session.add_items(history(3))

        asyncio.run(loop())

    writer = threading.Thread(target=keep_writing)
    writer.start()
    failures = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
            for number in range(12):
                time.sleep(0.01)
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        child = SQLiteSession(f"child-{number}", db, synchronous="NORMAL")
                        asyncio.run(asyncio.wait_for(child.add_items(history(1)), 10))
                        code = 0
                    finally:
                        os._exit(code)
                _, status = os.waitpid(pid, 0)
                failures += os.waitstatus_to_exitcode(status) != 0
    finally:
        stop.set()
        writer.join()
        session.close()
    assert failures == 0
    with raw(db) as conn:
        children = conn.execute(
            "SELECT count(*) FROM threadline_sessions WHERE session_id LIKE 'child-%'"
        ).fetchone()[0]
    assert children == 12
