"""What a SQLite file session adds to one library turn, for ``bench/serve.py``'s floor line.

Runs ``Runner.run`` on a zero-latency ``ScriptedModel`` with and without a session on a SQLite
file store (alternating, 8 turns per conversation) and prints one JSON object: the median turn
with the session, without it, and the median time of each store job kind (the lease and the
start read, the input commit, the durable commit, the lease's release; and any other read or
lease write), from the engine's own calls.

    PYTHONPATH=src python bench/_store_turn.py DIR [CONVERSATIONS]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


async def _main(where: Path, conversations: int) -> dict[str, Any]:
    from threadline import Agent, Runner, open_store
    from threadline.sessions.sqlite._engine import SQLiteEngine
    from threadline.testing import ScriptedModel

    jobs: dict[str, list[float]] = defaultdict(list)
    read, write = SQLiteEngine.read, SQLiteEngine.write

    async def timed_read(self: SQLiteEngine, fn: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await read(self, fn, **options)
        finally:
            jobs["read"].append(time.perf_counter() - started)

    async def timed_write(self: SQLiteEngine, fn: Any, *, durable: Any = True) -> Any:
        started = time.perf_counter()
        name = getattr(getattr(fn, "func", fn), "__name__", "")
        kind = (
            "lease and start read"
            if name == "acquire_lease_and_read"
            else "lease release"
            if name == "release_lease"
            else "input commit (fsync after)"
            if durable == "soon"
            else "durable commit"
            if durable
            else "lease write"
        )
        try:
            return await write(self, fn, durable=durable)
        finally:
            jobs[kind].append(time.perf_counter() - started)

    SQLiteEngine.read, SQLiteEngine.write = timed_read, timed_write  # type: ignore[method-assign]
    store = open_store(f"sqlite:///{where / 'turns.db'}")
    await store.setup()
    agent: Agent[Any] = Agent(name="bench", model=ScriptedModel(["ok"] * (conversations * 16 + 8)))
    await Runner.run(agent, "warm-up", session=store.session("warm-up"))
    jobs.clear()
    with_session: list[float] = []
    without: list[float] = []
    for c in range(conversations):
        session = store.session(f"c{c}")
        for turn in range(8):
            started = time.perf_counter()
            await Runner.run(agent, f"turn {turn}", session=session)
            with_session.append(time.perf_counter() - started)
            started = time.perf_counter()
            await Runner.run(agent, f"turn {turn}")
            without.append(time.perf_counter() - started)
    await store.aclose()
    turns = len(with_session)
    return {
        "turns": turns,
        "with_session_ms": statistics.median(with_session) * 1e3,
        "without_ms": statistics.median(without) * 1e3,
        "jobs": {
            kind: {"per_turn": len(times) / turns, "p50_ms": statistics.median(times) * 1e3}
            for kind, times in jobs.items()
        },
    }


if __name__ == "__main__":
    result = asyncio.run(_main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40))
    print(json.dumps(result))
