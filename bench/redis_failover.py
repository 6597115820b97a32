"""Redis Cluster failover under writers: SIGKILL a master five times, with and without WAIT.

Each side starts its own 3-master, 3-replica cluster (``tests/redis_cluster.py``, node timeout
1 s). Each round picks the next master, starts four writer tasks appending two-item batches
to sessions on that master, SIGKILLs it after half a second, and keeps writing for a second
after the cluster has promoted its replica; the killed node is then started again (it rejoins
as a replica) and the round waits until every replica is in sync. Reported per side: writes
acknowledged, writes refused (raised to the writer), the failover as the cluster saw it (kill
→ the replica serves the slots) and as the writers saw it (kill → the first acknowledged
write begun after it), and acknowledged writes missing afterwards.

The ``wait`` side opens the store with ``?wait_replicas=1&wait_timeout_ms=200``: a promoted
replica has no replica of its own until the killed node is back, so its writes are refused
until then (``WAIT`` cannot confirm them) — the price of not losing acknowledged writes.

    .venv/bin/python bench/redis_failover.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_cluster import ReplicatedCluster  # noqa: E402

from threadline.items import assistant_message, user_message  # noqa: E402
from threadline.sessions.redis import RedisStore  # noqa: E402
from threadline.sessions.redis._keys import SessionKeys  # noqa: E402

PREFIX = "tlbench-failover:"
SIDES = {"no wait": "", "wait_replicas=1": "?wait_replicas=1&wait_timeout_ms=200"}


def _ids_on(cluster: ReplicatedCluster, port: int, count: int, stem: str) -> list[str]:
    from redis.crc import key_slot

    ranges = [(start, end) for start, end, owner in cluster._slot_ranges() if owner == port]
    found = []
    for number in itertools.count():
        candidate = f"{stem}{number}"
        slot = key_slot(SessionKeys(PREFIX, candidate).d.encode())
        if any(start <= slot <= end for start, end in ranges):
            found.append(candidate)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


async def _round(cluster: ReplicatedCluster, store: RedisStore, number: int) -> dict[str, Any]:
    victim = cluster.master_ports()[number % 3]
    ids = _ids_on(cluster, victim, 4, f"r{number}-")
    acked: dict[str, list[str]] = {sid: [] for sid in ids}
    refused = 0
    stopping = False
    killed_at = 0.0
    resumed_at: float | None = None

    async def writer(session_id: str) -> None:
        nonlocal refused, resumed_at
        session = store.session(session_id)
        for n in itertools.count():
            if stopping:
                return
            tag = f"{session_id}:{n}"
            began = time.monotonic()
            try:
                await session.add_items([user_message(tag), assistant_message(tag)])
            except Exception:
                refused += 1
                await asyncio.sleep(0.05)
                continue
            acked[session_id].append(tag)
            if killed_at and began > killed_at and resumed_at is None:
                resumed_at = time.monotonic()  # the first write begun after the kill
            await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(writer(sid)) for sid in ids]
    await asyncio.sleep(0.5)
    replica = cluster.replica_of(victim)
    cluster.kill(victim)
    killed_at = time.monotonic()
    resumed_at = None
    failover = await asyncio.to_thread(cluster.wait_master, replica)
    cluster.restart(victim)  # as a supervisor would: it rejoins as a replica
    await asyncio.to_thread(cluster.wait_healthy)
    await asyncio.sleep(1.0)
    stopping = True
    await asyncio.gather(*tasks)
    lost = 0
    for session_id in ids:
        stored = {item["content"] for item in (await store.session(session_id).get_items())[::2]}
        lost += len(set(acked[session_id]) - stored)
    return {
        "writes": sum(map(len, acked.values())),
        "refused": refused,
        "failover_s": failover,
        "writers_resumed_s": None if resumed_at is None else resumed_at - killed_at,
        "lost": lost,
    }


async def _side(query: str, rounds: int) -> list[dict[str, Any]]:
    with ReplicatedCluster() as cluster:
        store = RedisStore(cluster.url + query, prefix=PREFIX)
        try:
            return [await _round(cluster, store, number) for number in range(rounds)]
        finally:
            await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {name: asyncio.run(_side(query, args.rounds)) for name, query in SIDES.items()}
    load_after = os.getloadavg()
    print(json.dumps(results, indent=1))
    print()
    print(
        "| side | kills | writes acked | writes refused | failover s (median, max) "
        "| writers resumed s (median, max) | acked writes lost |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        failovers = [row["failover_s"] for row in rows]
        resumed = [row["writers_resumed_s"] for row in rows if row["writers_resumed_s"]]
        print(
            f"| {name} | {len(rows)} | {sum(r['writes'] for r in rows)} "
            f"| {sum(r['refused'] for r in rows)} "
            f"| {statistics.median(failovers):.2f}, {max(failovers):.2f} "
            f"| {statistics.median(resumed):.2f}, {max(resumed):.2f} "
            f"| {sum(r['lost'] for r in rows)} |"
        )
    print()
    before = " / ".join(f"{x:.2f}" for x in load_before)
    after = " / ".join(f"{x:.2f}" for x in load_after)
    print(f"load average before: {before}; after: {after}")


if __name__ == "__main__":
    main()
