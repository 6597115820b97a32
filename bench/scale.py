"""Scale-out benchmark: per-turn store time of SQLite, PostgreSQL and Redis.

A *store turn* is what a run asks of its store per turn: a window read (the newest 50 items,
cut at a turn boundary), the input append and the step append. Two measurements:

* **concurrency** — 1, 8 and 64 sessions at once, spread over 4 OS processes (1 session: one
  process), each session doing store turns back to back for ``--seconds``; turns per second
  over all processes and p50 / p99 of one store turn. The chosen sides take turns within each
  point (``--rounds`` rounds, alternating which goes first); each side's median-throughput
  run is reported. Before the clock starts, every side is warmed up alike: each session's
  first turn, then ``WARM_ROUNDS`` rounds of all of a process's sessions at once, so each
  pool has opened the connections the timed turns use and prepared its statements on them
  (a one-time cost that would otherwise land on a few timed turns, the p99).
* **history length** — the windowed store turn's median time on a session holding 1k items vs
  one holding 1M (built by a bulk insert); the target is a ratio of at most 1.2.
* **summarised history length** — the same, on sessions whose compaction summary (a session
  record) covers all but the newest 40 items, so each window is the summary plus the newest
  turns after the range it covers (``window_after_record``); the same target.

    PYTHONPATH=src .venv/bin/python bench/scale.py                       # every backend
    PYTHONPATH=src .venv/bin/python bench/scale.py --only postgres --quick
    PYTHONPATH=src .venv/bin/python bench/scale.py --json results/scale.json
    PYTHONPATH=src .venv/bin/python bench/scale.py --only redis,sdk-redis --sessions 64 \
        --rounds 5 --no-history                                         # one point, 5 rounds

Each point prints the 1-minute load average before and after every run (the JSON keeps it
with each side's throughput per round): on a shared machine, read the ratios with it.

A backend is a :class:`Side` subclass registered in :data:`SIDES`: ``open()`` / ``close()``,
``turn(session_id, marker)`` and, for the history measurement, ``bulk(session_id, count)``.
The OpenAI Agents SDK's ``SQLAlchemySession`` (asyncpg) is the ``sdk-sqlalchemy`` side and its
``RedisSession`` the ``sdk-redis`` side; they need ``pip install -r bench/requirements-scale.txt``
and are skipped when that is missing. The Redis sides use database ``THREADLINE_BENCH_REDIS_DB``
(default 12; the tests use 9) of ``THREADLINE_BENCH_REDIS`` under a fresh key prefix per run,
and delete their keys afterwards.
Results: ``docs/deployment.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _items import assistant_item, assistant_text, user_item

PG_URL = os.environ.get("THREADLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
WINDOW = 50
PROCESSES = 4
WARM_ROUNDS = 3
"""Rounds of every session of a process at once before the timed part (see ``_worker``)."""
REDIS_HOST = os.environ.get("THREADLINE_BENCH_REDIS", "redis://127.0.0.1:6379")
REDIS_URL = f"{REDIS_HOST}/{os.environ.get('THREADLINE_BENCH_REDIS_DB', '12')}"


class Side:
    """One backend under test; ``target`` names its storage (a file, a schema), made by
    :meth:`make_target` in the parent and shared by every process."""

    name: ClassVar[str] = ""
    history: ClassVar[bool] = True
    """Whether the history-length measurement runs on this side."""

    def __init__(self, target: str) -> None:
        self.target = target

    @classmethod
    def available(cls) -> str | None:
        """``None`` when this side can run here, else why not."""
        return None

    @classmethod
    async def make_target(cls) -> str:
        """Create fresh storage; returns its name."""
        raise NotImplementedError

    @classmethod
    async def drop_target(cls, target: str) -> None:
        """Remove the storage again."""

    async def open(self) -> None:
        """Connect (called once per process)."""

    async def close(self) -> None:
        """Disconnect."""

    async def turn(self, session_id: str, marker: str) -> None:
        """One store turn on ``session_id``."""
        raise NotImplementedError

    async def bulk(self, session_id: str, count: int) -> None:
        """Give ``session_id`` ``count`` stored items (alternating user / assistant) fast."""
        raise NotImplementedError


class ThreadlineSide(Side):
    """A threadline store: ``get_window`` + two ``add_items``."""

    store: Any

    def make_store(self) -> Any:
        raise NotImplementedError

    async def open(self) -> None:
        self.store = self.make_store()

    async def close(self) -> None:
        await self.store.aclose()

    async def turn(self, session_id: str, marker: str) -> None:
        session = self.store.session(session_id)
        await session.get_window(max_items=WINDOW)
        await session.add_items([user_item(marker)])
        await session.add_items([assistant_item(assistant_text(marker), f"msg_{marker}")])

    async def summarise(self, session_id: str, keep: int) -> None:
        """Store a compaction summary covering all but the newest ``keep`` items (as a
        compaction would), and check that the window now starts with it."""
        from threadline.sessions._summary import SUMMARY_RECORD, Summary, item_digest
        from threadline.sessions.codec import encode_record

        store = self.make_store()
        backend = store._backend
        info = await backend.session_info(session_id)
        end = info.item_count - keep
        anchor = (await backend.window_since(session_id, end, 0, 0)).anchor
        summary = Summary("the earlier turns, summarised", end, item_digest(anchor), 10 * end)
        payload = encode_record(store.codec, session_id, SUMMARY_RECORD, summary.to_record())
        await backend.put_records(session_id, {SUMMARY_RECORD: payload}, None)
        window = await store.session(session_id).get_window(max_items=WINDOW)
        await store.aclose()
        if window[0] != summary.item:
            raise RuntimeError(f"the window of {session_id!r} does not start with its summary")


class SQLiteSide(ThreadlineSide):
    name = "sqlite"

    @classmethod
    async def make_target(cls) -> str:
        return str(Path(tempfile.mkdtemp(prefix="tl-scale-")) / "scale.db")

    @classmethod
    async def drop_target(cls, target: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(target + suffix).unlink(missing_ok=True)  # noqa: ASYNC240

    def make_store(self) -> Any:
        from threadline.sessions import SQLiteStore

        return SQLiteStore(self.target)

    async def bulk(self, session_id: str, count: int) -> None:
        import sqlite3

        store = self.make_store()
        await store.session(session_id).add_items([user_item("seed")])
        await store.aclose()
        rows = _bulk_rows(count)
        conn = sqlite3.connect(self.target)
        with conn:
            (sid,) = conn.execute(
                "SELECT sid FROM threadline_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            conn.execute("DELETE FROM threadline_items WHERE sid = ?", (sid,))
            conn.executemany(
                "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) "
                "VALUES (?, ?, ?, NULL, ?, ?)",
                ((sid, seq, kind, tokens, data) for seq, (kind, tokens, data) in enumerate(rows)),
            )
            conn.execute(
                "UPDATE threadline_sessions SET item_count = ?, indexed = ? WHERE sid = ?",
                (count, count, sid),
            )
        conn.close()


class PostgresSide(ThreadlineSide):
    name = "postgres"

    @classmethod
    def available(cls) -> str | None:
        return _pg_reachable()

    @classmethod
    async def make_target(cls) -> str:
        from threadline.sessions.postgres import PostgresStore

        schema = f"tl_scale_{uuid.uuid4().hex[:10]}"
        store = PostgresStore(PG_URL, schema=schema)
        await store.setup()
        await store.aclose()
        return schema

    @classmethod
    async def drop_target(cls, target: str) -> None:
        await _pg_execute(f'DROP SCHEMA IF EXISTS "{target}" CASCADE')

    def make_store(self) -> Any:
        from threadline.sessions.postgres import PostgresStore

        return PostgresStore(PG_URL, schema=self.target, pool_size=8)

    async def bulk(self, session_id: str, count: int) -> None:
        import hashlib

        store = self.make_store()
        await store.session(session_id).add_items([user_item("seed")])
        await store.aclose()
        skey = hashlib.sha256(session_id.encode()).digest()
        user = json.dumps(user_item("bulk"), separators=(",", ":"))
        answer = json.dumps(
            assistant_item(assistant_text("bulk"), "msg_bulk"), separators=(",", ":")
        )
        await _pg_execute(
            f'SET search_path = "{self.target}"; '
            "DELETE FROM threadline_items WHERE skey = $1; "
            "INSERT INTO threadline_items (skey, seq, kind, tokens, data) "
            "SELECT $1, n, CASE WHEN n % 2 = 0 THEN 1 ELSE 0 END, "
            "CASE WHEN n % 2 = 0 THEN $3::int ELSE $4::int END, "
            "convert_to(CASE WHEN n % 2 = 0 THEN $5::text ELSE $6::text END, 'UTF8') "
            "FROM generate_series(0, $2 - 1) AS n; "
            "UPDATE threadline_sessions SET item_count = $2 WHERE skey = $1; "
            "ANALYZE threadline_items",
            skey,
            count,
            -(-len(user) // 4),
            -(-len(answer) // 4),
            user,
            answer,
        )


class SdkSQLAlchemySide(Side):
    """The OpenAI Agents SDK's ``SQLAlchemySession`` on the same PostgreSQL (asyncpg); its
    per-turn read is ``get_items(limit=50)`` (it has no window)."""

    name = "sdk-sqlalchemy"
    history = False  # its bulk load goes through add_items: minutes for 1M items

    @classmethod
    def available(cls) -> str | None:
        try:
            import sqlalchemy  # noqa: F401
            from agents.extensions.memory import SQLAlchemySession  # noqa: F401
        except ImportError as exc:
            return f"{exc.name} missing: pip install -r bench/requirements-scale.txt"
        return _pg_reachable()

    @classmethod
    async def make_target(cls) -> str:
        schema = f"tl_sdk_{uuid.uuid4().hex[:10]}"
        await _pg_execute(f'CREATE SCHEMA "{schema}"')
        side = cls(schema)
        await side.open()
        try:  # its tables, once (four processes creating them at once collide)
            await side._session("setup", create=True).get_items()
        finally:
            await side.close()
        return schema

    @classmethod
    async def drop_target(cls, target: str) -> None:
        await _pg_execute(f'DROP SCHEMA IF EXISTS "{target}" CASCADE')

    async def open(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        url = PG_URL.replace("postgresql://", "postgresql+asyncpg://")
        self.engine = create_async_engine(
            url,
            pool_size=8,
            max_overflow=0,
            connect_args={"server_settings": {"search_path": self.target}},
        )
        self.sessions: dict[str, Any] = {}

    async def close(self) -> None:
        await self.engine.dispose()

    def _session(self, session_id: str, create: bool = False) -> Any:
        from agents.extensions.memory import SQLAlchemySession

        found = self.sessions.get(session_id)
        if found is None:
            found = SQLAlchemySession(session_id, engine=self.engine, create_tables=create)
            self.sessions[session_id] = found
        return found

    async def turn(self, session_id: str, marker: str) -> None:
        session = self._session(session_id)
        await session.get_items(limit=WINDOW)
        await session.add_items([user_item(marker)])
        await session.add_items([assistant_item(assistant_text(marker), f"msg_{marker}")])

    async def bulk(self, session_id: str, count: int) -> None:
        session = self._session(session_id)
        chunk = 5000
        for start in range(0, count, chunk):
            await session.add_items(
                [
                    user_item("bulk") if n % 2 == 0 else assistant_item("bulk", "msg_bulk")
                    for n in range(start, min(count, start + chunk))
                ]
            )


class RedisSide(ThreadlineSide):
    """threadline's ``RedisStore`` (``open_store("redis://…/<db>")``) under a fresh prefix."""

    name = "redis"

    @classmethod
    def available(cls) -> str | None:
        try:
            import redis  # noqa: F401
        except ImportError:
            return "redis missing: pip install -e '.[redis]'"
        return _redis_reachable()

    @classmethod
    async def make_target(cls) -> str:
        return f"tlscale{uuid.uuid4().hex[:10]}:"

    @classmethod
    async def drop_target(cls, target: str) -> None:
        await _redis_drop(target)

    def make_store(self) -> Any:
        from threadline.sessions import open_store

        return open_store(REDIS_URL, prefix=self.target)

    async def bulk(self, session_id: str, count: int) -> None:
        from threadline.sessions.redis._keys import SessionKeys, meta_entry

        store = self.make_store()
        await store.session(session_id).add_items([user_item("seed")])
        await store.aclose()
        keys = SessionKeys(self.target, session_id)
        rows = _bulk_rows(count)
        metas = [meta_entry(kind, tokens, None) for kind, tokens, _ in rows[:2]]

        def fill(pipe: Any, start: int, stop: int) -> None:
            pipe.rpush(keys.d, *(rows[n][2] for n in range(start, stop)))
            pipe.rpush(keys.m, *(metas[n % 2] for n in range(start, stop)))

        await _redis_fill([keys.d, keys.m], count, fill)


class SdkRedisSide(Side):
    """The OpenAI Agents SDK's ``RedisSession`` on the same Redis; its per-turn read is
    ``get_items(limit=50)`` (``LRANGE`` of the newest 50)."""

    name = "sdk-redis"

    @classmethod
    def available(cls) -> str | None:
        try:
            from agents.extensions.memory.redis_session import RedisSession  # noqa: F401
        except ImportError as exc:
            return f"{exc.name} missing: pip install -r bench/requirements-scale.txt"
        return _redis_reachable()

    @classmethod
    async def make_target(cls) -> str:
        return f"sdkscale{uuid.uuid4().hex[:10]}"

    @classmethod
    async def drop_target(cls, target: str) -> None:
        await _redis_drop(target)

    async def open(self) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.from_url(REDIS_URL)
        self.sessions: dict[str, Any] = {}

    async def close(self) -> None:
        await self.client.aclose()

    def _session(self, session_id: str) -> Any:
        from agents.extensions.memory.redis_session import RedisSession

        found = self.sessions.get(session_id)
        if found is None:
            found = RedisSession(session_id, redis_client=self.client, key_prefix=self.target)
            self.sessions[session_id] = found
        return found

    async def turn(self, session_id: str, marker: str) -> None:
        session = self._session(session_id)
        await session.get_items(limit=WINDOW)
        await session.add_items([user_item(marker)])
        await session.add_items([assistant_item(assistant_text(marker), f"msg_{marker}")])

    async def bulk(self, session_id: str, count: int) -> None:
        session = self._session(session_id)
        await session.add_items([user_item("seed")])  # its counter and session hash
        rows = _bulk_rows(count)
        key = f"{self.target}:{session_id}:messages"

        def fill(pipe: Any, start: int, stop: int) -> None:
            pipe.rpush(key, *(rows[n][2] for n in range(start, stop)))

        await _redis_fill([key], count, fill)


SIDES: dict[str, type[Side]] = {
    side.name: side
    for side in (SQLiteSide, PostgresSide, SdkSQLAlchemySide, RedisSide, SdkRedisSide)
}
"""Every backend the benchmark knows."""


def _redis_reachable() -> str | None:
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return None
    except OSError:
        return f"no Redis at {parts.hostname}:{parts.port or 6379}"


async def _redis_fill(keys: list[str], count: int, fill: Any) -> None:
    """Replace ``keys`` and let ``fill(pipe, start, stop)`` push items in pipelined chunks."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        await client.delete(*keys)
        chunk = 20_000
        for first in range(0, count, chunk * 5):
            pipe = client.pipeline(transaction=False)
            for start in range(first, min(count, first + chunk * 5), chunk):
                fill(pipe, start, min(count, start + chunk))
            await pipe.execute()
    finally:
        await client.aclose()


async def _redis_drop(prefix: str) -> None:
    """Delete every key under ``prefix`` (a SCAN, then UNLINK in batches)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


def _bulk_rows(count: int) -> list[tuple[int, int, str]]:
    user = json.dumps(user_item("bulk"), separators=(",", ":"))
    answer = json.dumps(assistant_item(assistant_text("bulk"), "msg_bulk"), separators=(",", ":"))
    rows = [(1, -(-len(user) // 4), user), (0, -(-len(answer) // 4), answer)]
    return [rows[n % 2] for n in range(count)]


def _pg_reachable() -> str | None:
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(PG_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return None
    except OSError:
        return f"no PostgreSQL at {parts.hostname}:{parts.port or 5432}"


async def _pg_execute(sql: str, *args: Any) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        if args:
            async with conn.transaction():
                statements = [part for part in sql.split("; ") if part.strip()]
                for statement in statements:
                    used = sorted({int(n) for n in _params(statement)})
                    await conn.execute(_renumber(statement, used), *[args[n - 1] for n in used])
        else:
            await conn.execute(sql)
    finally:
        await conn.close()


def _params(statement: str) -> list[str]:
    import re

    return re.findall(r"\$(\d+)", statement)


def _renumber(statement: str, used: list[int]) -> str:
    import re

    mapping = {old: new for new, old in enumerate(used, start=1)}
    return re.sub(r"\$(\d+)", lambda m: f"${mapping[int(m.group(1))]}", statement)


# ---------------------------------------------------------------------- one process


def _worker(
    name: str, target: str, sessions: list[str], seconds: float, start_at: float
) -> dict[str, Any]:
    side = SIDES[name](target)

    async def main() -> dict[str, Any]:
        await side.open()
        latencies: list[float] = []
        try:
            # Warm up, every side alike: each session's first turn (creating it) one after
            # the other, then WARM_ROUNDS rounds of every session at once, so the pool has
            # opened the connections the timed turns share and each has prepared its
            # statements (otherwise the first timed turns on each new connection pay for
            # the connect and the prepares, and those few turns are the p99).
            for session_id in sessions:
                await side.turn(session_id, f"warm-{session_id}")
            for n in range(WARM_ROUNDS):
                await asyncio.gather(*(side.turn(s, f"warm{n}-{s}") for s in sessions))
            await asyncio.sleep(max(0.0, start_at - time.time()))
            stop = time.perf_counter() + seconds
            began = time.time()

            async def loop(session_id: str) -> None:
                n = 0
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    await side.turn(session_id, f"{session_id}-{n}")
                    latencies.append(time.perf_counter() - started)
                    n += 1

            await asyncio.gather(*(loop(s) for s in sessions))
            ended = time.time()
        finally:
            await side.close()
        return {"latencies": latencies, "began": began, "ended": ended}

    return asyncio.run(main())


def _history_worker(
    name: str, target: str, sizes: list[int], turns: int, summarised: bool = False
) -> dict[str, float]:
    side = SIDES[name](target)

    async def main() -> dict[str, float]:
        await side.open()
        times: dict[int, list[float]] = {size: [] for size in sizes}
        try:
            for size in sizes:
                await side.bulk(f"history-{size}", size)
                if summarised:
                    await side.summarise(f"history-{size}", 40)
                for n in range(5):
                    await side.turn(f"history-{size}", f"warm-{n}")
            for n in range(turns):  # interleaved, so load changes hit every size alike
                for size in sizes:
                    started = time.perf_counter()
                    await side.turn(f"history-{size}", f"h{size}-{n}")
                    times[size].append(time.perf_counter() - started)
        finally:
            await side.close()
        return {str(size): statistics.median(found) for size, found in times.items()}

    return asyncio.run(main())


# ---------------------------------------------------------------------- the plan


def concurrency(name: str, sessions: int, seconds: float) -> dict[str, Any]:
    target = asyncio.run(SIDES[name].make_target())
    try:
        processes = 1 if sessions == 1 else PROCESSES
        ids = [f"c{sessions}-{n}" for n in range(sessions)]
        groups = [ids[p::processes] for p in range(processes)]
        context = multiprocessing.get_context("spawn")
        start_at = time.time() + 3.0 + 0.2 * sessions / 8
        with context.Pool(processes) as pool:
            jobs = [
                pool.apply_async(_worker, (name, target, group, seconds, start_at))
                for group in groups
            ]
            results = [job.get(timeout=seconds * 10 + 120) for job in jobs]
    finally:
        asyncio.run(SIDES[name].drop_target(target))
    latencies = sorted(x for r in results for x in r["latencies"])
    wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
    return {
        "turns_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "turns": len(latencies),
    }


def history(name: str, sizes: list[int], turns: int, summarised: bool = False) -> dict[str, float]:
    target = asyncio.run(SIDES[name].make_target())
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            return pool.apply(_history_worker, (name, target, sizes, turns, summarised))
    finally:
        asyncio.run(SIDES[name].drop_target(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated sides (default: every available one)")
    parser.add_argument("--quick", action="store_true", help="short runs, 100k instead of 1M")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None, help="concurrency runs per point")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--history-only", action="store_true", help="skip the concurrency measurement"
    )
    parser.add_argument(
        "--sessions", default="1,8,64", help="comma-separated concurrency points (default 1,8,64)"
    )
    parser.add_argument(
        "--no-history", action="store_true", help="skip the history-length measurement"
    )
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    big = 100_000 if args.quick else 1_000_000
    names = args.only.split(",") if args.only else list(SIDES)
    report: dict[str, Any] = {"seconds": seconds, "rounds": rounds, "sides": {}}
    ready = []
    for name in names:
        why = SIDES[name].available()
        if why is not None:
            print(f"{name}: skipped ({why})", flush=True)
            continue
        ready.append(name)
        report["sides"][name] = {"concurrency": {}}
    points = [int(n) for n in args.sessions.split(",")]
    for sessions in () if args.history_only else points:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ready}
        loads = [round(os.getloadavg()[0], 2)]
        for n in range(rounds):  # the sides take turns, so load changes hit them alike
            for name in ready if n % 2 == 0 else ready[::-1]:
                runs[name].append(concurrency(name, sessions, seconds))
                loads.append(round(os.getloadavg()[0], 2))
        report.setdefault("load_average", {})[str(sessions)] = loads
        for name in ready:
            best = sorted(runs[name], key=lambda r: r["turns_per_s"])[rounds // 2]  # median
            report["sides"][name]["concurrency"][str(sessions)] = best
            report["sides"][name].setdefault("rounds", {})[str(sessions)] = [
                r["turns_per_s"] for r in runs[name]
            ]
            report["sides"][name].setdefault("p99_rounds", {})[str(sessions)] = [
                r["p99_ms"] for r in runs[name]
            ]
            print(f"{name} x{sessions}: {best}", flush=True)
        print(f"load average (1 min) before and after each run: {loads}", flush=True)
    for name in () if args.no_history else ready:
        if not SIDES[name].history:
            continue
        side = report["sides"][name]
        medians = history(name, [1000, big], 100 if args.quick else 300)
        side["history_ms"] = {k: round(1000 * v, 3) for k, v in medians.items()}
        side["history_ratio"] = round(medians[str(big)] / medians["1000"], 3)
        print(f"{name} history: {side['history_ms']} ratio {side['history_ratio']}", flush=True)
        if isinstance(SIDES[name](""), ThreadlineSide):
            medians = history(name, [1000, big], 100 if args.quick else 300, summarised=True)
            side["summarised_ms"] = {k: round(1000 * v, 3) for k, v in medians.items()}
            side["summarised_ratio"] = round(medians[str(big)] / medians["1000"], 3)
            print(
                f"{name} summarised history: {side['summarised_ms']} "
                f"ratio {side['summarised_ratio']}",
                flush=True,
            )
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
