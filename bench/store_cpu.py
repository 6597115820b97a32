"""Where a Redis store turn's time goes: client CPU and Redis server time per turn.

One process runs ``--sessions`` sessions at once doing the store turns of ``bench/scale.py``
(window of 50 + input append + step append) for ``--seconds``; per turn it reports the
process's CPU time, the Redis server's CPU time (``INFO cpu``, main thread) and its command
time by command (``INFO commandstats``). The sides take turns, ``--rounds`` times; medians
are printed. It resets the server's command statistics (``CONFIG RESETSTAT``), so run it on a
server of your own.

    PYTHONPATH=src .venv/bin/python bench/store_cpu.py                  # redis and sdk-redis
    PYTHONPATH=src .venv/bin/python bench/store_cpu.py --only redis --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale


def _server_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"])


async def _measure(name: str, sessions: int, seconds: float, profile: bool) -> dict[str, Any]:
    import redis

    side_class = scale.SIDES[name]
    target = await side_class.make_target()
    side = side_class(target)
    await side.open()
    server = redis.Redis.from_url(scale.REDIS_URL)
    try:
        ids = [f"p{n}" for n in range(sessions)]
        for session_id in ids:  # a history of 60 items each, so the window is full
            for n in range(30):
                await side.turn(session_id, f"warm-{n}")
        server.config_resetstat()
        server_before, cpu_before = _server_cpu(server), time.process_time()
        started = time.perf_counter()
        stop = started + seconds
        count = 0

        async def loop(session_id: str) -> None:
            nonlocal count
            n = 0
            while time.perf_counter() < stop:
                await side.turn(session_id, f"{session_id}-{n}")
                n += 1
                count += 1

        profiler = cProfile.Profile(time.process_time) if profile else None
        if profiler is not None:
            profiler.enable()
        await asyncio.gather(*(loop(session_id) for session_id in ids))
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_before
        server_cpu = _server_cpu(server) - server_before
        commands = {
            key.removeprefix("cmdstat_"): round(value["usec"] / count, 1)
            for key, value in server.info("commandstats").items()
            if value["calls"] >= count / 10
        }
    finally:
        await side.close()
        server.close()
        await side_class.drop_target(target)
    return {
        "turns_per_s": round(count / wall, 1),
        "client_cpu_us": round(1e6 * client_cpu / count, 1),
        "server_cpu_us": round(1e6 * server_cpu / count, 1),
        "command_us": commands,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="redis,sdk-redis")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile (CPU time) each run")
    args = parser.parse_args()
    names = args.only.split(",")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for n in range(args.rounds):
        for name in names if n % 2 == 0 else names[::-1]:
            found = asyncio.run(_measure(name, args.sessions, args.seconds, args.profile))
            runs[name].append(found)
            print(name, json.dumps(found), flush=True)
    for name, found in runs.items():
        medians = {
            key: statistics.median(run[key] for run in found)
            for key in ("turns_per_s", "client_cpu_us", "server_cpu_us")
        }
        print(f"{name} medians: {medians}")


if __name__ == "__main__":
    main()
