"""Listing 100,000 SQLite sessions with and without metadata (issue 14).

A plain ``list_sessions(limit=50)`` must cost what it did (it reads no records);
``list_sessions(limit=50, metadata={...})`` reads each listed session's metadata along the
listing index and filters after decoding. The database is built directly (one transaction
of rows; every 100th session belongs to user ``u1``). Medians of ``--rounds`` calls.

    PYTHONPATH=src python bench/listing_metadata.py --sessions 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from threadline.sessions import SQLiteStore


def _fill(conn: Any, count: int) -> None:
    now = time.time() - count
    conn.executemany(
        "INSERT INTO threadline_sessions (sid, session_id, item_count, created_at, updated_at) "
        "VALUES (?, ?, 0, ?, ?)",
        [(n + 1, f"s{n:06d}", now + n, now + n) for n in range(count)],
    )
    conn.executemany(
        "INSERT INTO threadline_records (sid, key, data) VALUES (?, 'metadata', ?)",
        [
            (
                n + 1,
                json.dumps(
                    {"k": "metadata", "v": {"user": "u1" if n % 100 == 0 else f"u{n}"}},
                    separators=(",", ":"),
                ),
            )
            for n in range(count)
        ],
    )


async def _median(call: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        await call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        async with SQLiteStore(Path(directory) / "listing.db") as store:
            await store.setup()
            await store._engine.write(lambda conn: _fill(conn, args.sessions))
            plain = await _median(lambda: store.list_sessions(limit=50), args.rounds)
            meta = await _median(
                lambda: store.list_sessions(limit=50, with_metadata=True), args.rounds
            )
            filtered = await _median(
                lambda: store.list_sessions(limit=50, metadata={"user": "u1"}), args.rounds
            )
            page = await store.list_sessions(limit=50, metadata={"user": "u1"})
            assert len(page) == 50
            scan = await _median(
                lambda: store.list_sessions(metadata={"user": "nobody"}), max(1, args.rounds // 3)
            )
    print(f"{args.sessions:,} sessions:")
    print(f"  list_sessions(limit=50): {plain * 1000:.1f} ms")
    print(f"  list_sessions(limit=50, with_metadata=True): {meta * 1000:.1f} ms")
    print(
        f"  list_sessions(limit=50, metadata={{'user': 'u1'}}) (1 in 100 match): "
        f"{filtered * 1000:.1f} ms"
    )
    print(f"  list_sessions(metadata={{'user': 'nobody'}}) (a full scan): {scan * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
