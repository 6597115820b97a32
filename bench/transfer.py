"""Export, import and fork of a 100k-item session (issue 14's targets).

Targets: export and import of 100,000 items at >= 100,000 items/s each; ``fork`` of a
100,000-item session in under 0.5 s. Items are the benchmark's realistic turns
(``_items.py``: ~120-byte user messages and ~490-byte assistant messages). Each measurement
runs ``--rounds`` times on fresh storage; the medians (and min/max) are printed and, with
``--markdown FILE``, written as a table.

    PYTHONPATH=src python bench/transfer.py --rounds 5 --markdown docs/benchmarks-transfer.md
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _items import turns
from _machine import describe, loadavg

from threadline.sessions import InMemoryStore, SQLiteStore

ITEMS = 100_000
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _postgres() -> Any:
    from threadline.sessions.postgres import PostgresStore

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    return PostgresStore(POSTGRES_URL, schema=schema, create=True, pool_size=4)


def _redis() -> Any:
    from threadline.sessions.redis import RedisStore

    return RedisStore(REDIS_URL, prefix=f"bench:{uuid.uuid4().hex[:12]}:")


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


SERVICES = {"postgresql": 5432, "redis": 6379}
"""The stores on a local server, measured when it answers (skipped otherwise)."""


async def _drop(store: Any, name: str) -> None:
    """Remove a round's data from a server store (a file store goes with its directory)."""
    if name == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')
        finally:
            await conn.close()


async def _settle(store: Any) -> None:
    """Let a SQLite store's background work of the step before (the WAL checkpoint it asks
    for when idle) finish outside the next timed step, so each step is timed on its own."""
    engine = getattr(store._backend, "engine", None)
    if engine is None or engine.memory:
        return
    await asyncio.sleep(0.2)  # the writer's quiet moment, then the checkpoint it asks for

    def checkpoint() -> None:
        conn = sqlite3.connect(engine.path)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    await asyncio.to_thread(checkpoint)


def _stores(tmp: Path) -> dict[str, Callable[[], Any]]:
    from threadline.sessions import EncryptionCodec

    key = bytes(range(32))
    return {
        "sqlite file": lambda: SQLiteStore(tmp / "bench.db"),
        "sqlite file, synchronous=NORMAL": lambda: SQLiteStore(
            tmp / "bench-normal.db", synchronous="NORMAL"
        ),
        "memory": lambda: InMemoryStore(),
        "sqlite file, encrypted": lambda: SQLiteStore(
            tmp / "bench-enc.db", codec=EncryptionCodec(key, key_id="bench")
        ),
        "postgresql": _postgres,
        "redis": _redis,
    }


async def _one_round(name: str, items: list[dict[str, Any]]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        make = _stores(tmp)[name]
        async with make() as store:
            session = store.session("source")
            for start in range(0, len(items), 10_000):
                await session.add_items(items[start : start + 10_000])
            await session.set_metadata({"title": "bench", "user": "u1"})
            if "search" in store.capabilities:
                await store.search("quick")  # the search index catches up now, not later
            await _settle(store)
            path = tmp / "export.jsonl"
            began, cpu = time.perf_counter(), time.process_time()
            written = await store.export_jsonl("source", path)
            export_s = time.perf_counter() - began
            export_cpu = time.process_time() - cpu
            assert written == len(items)
            await _settle(store)
            began, cpu = time.perf_counter(), time.process_time()
            result = await store.import_jsonl(path, session_id="imported")
            import_s = time.perf_counter() - began
            import_cpu = time.process_time() - cpu
            assert result.items == len(items)
            if "search" in store.capabilities:
                await store.search("quick")  # index the imported items before the forks
            await _settle(store)
            began = time.perf_counter()
            await session.fork("forked")
            fork_s = time.perf_counter() - began
            began = time.perf_counter()
            await session.fork("forked-turn", at_turn=-1)
            fork_turn_s = time.perf_counter() - began
            assert (await store.session_info("forked")).item_count == len(items)
            size = path.stat().st_size
            if name == "redis":  # (a PostgreSQL schema is dropped whole, a file goes with tmp)
                for session_id in ("source", "imported", "forked", "forked-turn"):
                    await store.delete_session(session_id)
        await _drop(store, name)
    return {
        "export_s": export_s,
        "import_s": import_s,
        "export_cpu": export_cpu,
        "import_cpu": import_cpu,
        "fork_s": fork_s,
        "fork_turn_s": fork_turn_s,
        "file_mb": size / 1e6,
    }


def _stat(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--markdown", metavar="FILE")
    parser.add_argument("--store", action="append", help="only these stores (repeatable)")
    args = parser.parse_args()
    items = turns(args.items // 2)
    names = args.store or list(_stores(Path(".")))
    for name, port in SERVICES.items():
        if name in names and not _reachable(port):
            print(f"{name}: no server on 127.0.0.1:{port}, skipped")
            names.remove(name)
    facts = describe(Path(tempfile.gettempdir()))
    rows = []
    for name in names:
        rounds = [await _one_round(name, items) for _ in range(args.rounds)]
        export = _stat([len(items) / r["export_s"] for r in rounds])
        imported = _stat([len(items) / r["import_s"] for r in rounds])
        export_cpu = _stat([len(items) / r["export_cpu"] for r in rounds])
        import_cpu = _stat([len(items) / r["import_cpu"] for r in rounds])
        fork = _stat([r["fork_s"] for r in rounds])
        fork_turn = _stat([r["fork_turn_s"] for r in rounds])
        rows.append(
            (name, export, imported, export_cpu, import_cpu, fork, fork_turn, rounds[0]["file_mb"])
        )
        print(
            f"{name}: export {export[0]:,.0f} items/s ({export_cpu[0]:,.0f} per CPU-s), "
            f"import {imported[0]:,.0f} items/s ({import_cpu[0]:,.0f} per CPU-s), "
            f"fork {fork[0] * 1000:.0f} ms, fork(at_turn=-1) {fork_turn[0] * 1000:.0f} ms"
        )
    if args.markdown:
        text = _markdown(rows, len(items), args.rounds, facts)
        Path(args.markdown).write_text(text, encoding="utf-8")  # noqa: ASYNC240


def _markdown(rows: list[Any], count: int, rounds: int, facts: dict[str, Any]) -> str:
    def rate(stat: tuple[float, float, float]) -> str:
        return f"{stat[0]:,.0f} ({stat[1]:,.0f}–{stat[2]:,.0f})"

    def ms(stat: tuple[float, float, float]) -> str:
        return f"{stat[0] * 1000:.0f} ms ({stat[1] * 1000:.0f}–{stat[2] * 1000:.0f})"

    lines = [
        "# Benchmarks: export, import and fork (issue 14)",
        "",
        "Generated by `bench/transfer.py`; merged into `docs/benchmarks.md` by the lead.",
        "",
        f"A session of {count:,} items (realistic turns: ~120-byte user messages, ~490-byte "
        "assistant messages, as in `bench/_items.py`) with metadata. Export writes the "
        "versioned JSON lines format to a file (through a temporary file renamed into "
        'place); import reads it into a new session of the same store (`mode="refuse"`, '
        "one transaction); fork makes a new session of the whole history (`fork(new_id)`) "
        "and of all but the last turn (`fork(new_id, at_turn=-1)`): SQLite with the plain "
        "codec shares the parent's rows (copy-on-write), the encrypted store opens and seals "
        "every item again for the new session, memory shares its immutable rows, PostgreSQL "
        "and Redis copy them on the server. Median of "
        f"{rounds} rounds on fresh storage (min–max in brackets); PostgreSQL and Redis run "
        "on this machine (127.0.0.1), their server's CPU is not in the per-CPU-s columns.",
        "",
        "Targets (on SQLite): export and import >= 100,000 items/s; fork of 100,000 items < 0.5 s.",
        "",
        "Each timed step starts once the store's background work of the step before (a WAL",
        "checkpoint) is done; a checkpoint an import asks for runs after it returns, on a reader",
        "thread, and is in none of the columns.",
        "",
        "Items/s are wall-clock; the machine is shared (see the load below), so the table also",
        "gives items per CPU-second of this process (all its threads), which contention",
        "inflates less (but does: two busy hyperthreads share a core's caches).",
        "",
        "| store | export items/s | import items/s | export per CPU-s | import per CPU-s "
        "| fork | fork(at_turn=-1) | file |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, export, imported, export_cpu, import_cpu, fork, fork_turn, size in rows:
        lines.append(
            f"| {name} | {rate(export)} | {rate(imported)} | {rate(export_cpu)} | "
            f"{rate(import_cpu)} | {ms(fork)} | {ms(fork_turn)} | {size:.0f} MB |"
        )
    lines += [
        "",
        f"Machine: {facts['cpu']}, {facts['nproc']} cores (shared), {facts['memory']}, "
        f"{facts['kernel']}, Python {facts['python']}, SQLite {facts['sqlite']}, "
        f"{facts['filesystem']}; load {facts['load_start']} at the start, {loadavg()} at the "
        f"end; {facts['date']}, git {facts['git']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(main())
