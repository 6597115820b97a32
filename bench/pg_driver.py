"""Which PostgreSQL driver the PostgreSQL store uses: asyncpg vs psycopg 3 (+ psycopg_pool).

One store turn is a window read (the newest 20 rows of a session) plus two appends (one
transaction each: bump the session row, insert the rows). This script runs that turn through
both drivers against the same server, sequentially (latency) and with 32 concurrent sessions
on one pool of 8 connections (throughput), in fresh tables, and prints medians of 3 rounds.

    PYTHONPATH=src .venv/bin/python bench/pg_driver.py --dsn postgresql://postgres@127.0.0.1/test

Results and the choice: ``docs/deployment.md`` ("Driver").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

SCHEMA = """
DROP TABLE IF EXISTS bench_drv_items; DROP TABLE IF EXISTS bench_drv_sessions;
CREATE TABLE bench_drv_sessions (skey text PRIMARY KEY, next_seq bigint NOT NULL);
CREATE TABLE bench_drv_items (skey text, seq bigint, kind int, data text,
    PRIMARY KEY (skey, seq));
"""
BUMP = (
    "INSERT INTO bench_drv_sessions VALUES ({0}, {1}) ON CONFLICT (skey) DO UPDATE "
    "SET next_seq = bench_drv_sessions.next_seq + {1} RETURNING next_seq - {1}"
)
INSERT = "INSERT INTO bench_drv_items SELECT {0}, {1} + n - 1, 0, d FROM unnest({2}::text[]) WITH ORDINALITY AS t(d, n)"
WINDOW = "SELECT data FROM bench_drv_items WHERE skey = {0} ORDER BY seq DESC LIMIT 20"
ITEM = json.dumps({"role": "user", "content": "x" * 100})


class Asyncpg:
    name = "asyncpg"

    async def open(self, dsn: str, size: int) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
        self.bump = BUMP.format("$1", "$2")
        self.insert = INSERT.format("$1", "$2", "$3")
        self.window = WINDOW.format("$1")

    async def setup(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(SCHEMA)

    async def turn(self, skey: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetch(self.window, skey)
            for rows in ([ITEM], [ITEM, ITEM]):
                async with conn.transaction():
                    start = await conn.fetchval(self.bump, skey, len(rows))
                    await conn.execute(self.insert, skey, start, rows)

    async def close(self) -> None:
        await self.pool.close()


class Psycopg:
    name = "psycopg3"

    async def open(self, dsn: str, size: int) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(dsn, min_size=size, max_size=size, open=False)
        await self.pool.open(wait=True)
        self.bump = BUMP.format("%s", "%s")
        self.insert = INSERT.format("%s", "%s", "%s")
        self.window = WINDOW.format("%s")

    async def setup(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(SCHEMA)

    async def turn(self, skey: str) -> None:
        async with self.pool.connection() as conn:
            await (await conn.execute(self.window, (skey,), prepare=True)).fetchall()
            for rows in ([ITEM], [ITEM, ITEM]):
                async with conn.transaction():
                    cur = await conn.execute(
                        self.bump, (skey, len(rows), len(rows), len(rows)), prepare=True
                    )
                    (start,) = await cur.fetchone()  # type: ignore[misc]
                    await conn.execute(self.insert, (skey, start, rows), prepare=True)

    async def close(self) -> None:
        await self.pool.close()


async def measure(driver: Any, dsn: str, turns: int, concurrency: int) -> dict[str, float]:
    await driver.open(dsn, 8)
    try:
        await driver.setup()
        latencies: list[float] = []

        async def session(index: int) -> None:
            for _ in range(turns // concurrency):
                started = time.perf_counter()
                await driver.turn(f"s{index}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(session(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await driver.close()
    latencies.sort()
    return {
        "turns_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--turns", type=int, default=960)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for concurrency in (1, 32):
        for driver_class in (Asyncpg, Psycopg):
            runs = [
                asyncio.run(measure(driver_class(), args.dsn, args.turns, concurrency))
                for _ in range(args.rounds)
            ]
            key = f"{driver_class.name} x{concurrency}"
            results[key] = {
                name: round(statistics.median(run[name] for run in runs), 2) for name in runs[0]
            }
            print(key, results[key], flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
