"""How the PostgreSQL store's writer lease is held: a lease row vs a session advisory lock.

Measures one acquire + release, sequentially, both ways, on the same server:

* **lease row** (what the store does): the store's own ``lease_acquire`` / ``lease_release``
  (one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING epoch`` and one ``UPDATE``), through
  its pool;
* **advisory lock**: ``pg_try_advisory_lock(key)`` / ``pg_advisory_unlock(key)`` on one
  connection (the lock lives as long as that connection, so a held lease pins a connection).

    PYTHONPATH=src .venv/bin/python bench/pg_lease.py

Results and the choice: ``docs/deployment.md`` ("The writer lease").
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ROUNDS = 500


async def lease_row() -> float:
    from threadline.sessions.backend import Fence
    from threadline.sessions.postgres import PostgresStore

    store = PostgresStore(PG_URL, schema=f"tl_lease_{uuid.uuid4().hex[:8]}", create=True)
    backend = store._backend
    times = []
    try:
        for n in range(ROUNDS):
            started = time.perf_counter()
            grant = await backend.lease_acquire(f"s{n % 20}", "owner", 30.0)
            await backend.lease_release(f"s{n % 20}", Fence("owner", grant.epoch))
            times.append(time.perf_counter() - started)
        pool = await backend.pools.pool()
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {store.schema} CASCADE")
    finally:
        await store.aclose()
    return statistics.median(times)


async def advisory() -> float:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    times = []
    try:
        for n in range(ROUNDS):
            started = time.perf_counter()
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", n % 20)
            await conn.fetchval("SELECT pg_advisory_unlock($1)", n % 20)
            times.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return statistics.median(times)


async def main() -> None:
    for _ in range(3):
        row, lock = await lease_row(), await advisory()
        print(
            f"lease row {row * 1000:.3f} ms   advisory lock {lock * 1000:.3f} ms (median of {ROUNDS})"
        )


if __name__ == "__main__":
    asyncio.run(main())
