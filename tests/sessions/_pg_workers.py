"""Functions run in child processes by the PostgreSQL multi-process tests.

They are spawned, so each builds its own store, agent and event loop; the scripted model
server's URL comes in as an argument. (The multi-host tests' functions are in
:mod:`._netns_workers`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
from pathlib import Path


def _agent(base_url: str) -> object:
    os.environ["OPENAI_API_KEY"] = "test-key"
    os.environ["OPENAI_BASE_URL"] = base_url
    from threadline import Agent

    return Agent(name="Assistant", instructions="Reply very concisely.")


def run_turns(
    url: str,
    schema: str,
    base_url: str,
    worker: int,
    session_ids: list[str],
    turns: int,
    concurrency: int,
) -> int:
    """Run ``turns`` turns on every session (shuffled, ``concurrency`` at once) through
    ``Runner.run``; returns how many turns completed."""
    from threadline import Runner
    from threadline.sessions import SessionSettings
    from threadline.sessions.postgres import PostgresStore

    agent = _agent(base_url)

    async def main() -> int:
        store = PostgresStore(url, schema=schema, pool_size=concurrency + 2)
        settings = SessionSettings(lease_ttl=10)
        gate = asyncio.Semaphore(concurrency)
        order = [(sid, turn) for turn in range(turns) for sid in session_ids]
        random.Random(worker).shuffle(order)
        done = 0

        async def one(sid: str, turn: int) -> None:
            nonlocal done
            async with gate:
                session = store.session(sid, session_settings=settings)
                await Runner.run(agent, f"w{worker} t{turn} {sid}", session=session)  # type: ignore[arg-type]
                done += 1

        try:
            await asyncio.gather(*(one(sid, turn) for sid, turn in order))
        finally:
            await store.aclose()
        return done

    return asyncio.run(main())


def hold_leases_forever(
    url: str, schema: str, session_ids: list[str], ttl: float, ready: str
) -> None:
    """Take the lease of every session, write half a turn in each, signal ``ready``, then
    wait to be killed (the parent sends SIGKILL)."""
    from threadline.items import user_message
    from threadline.sessions import SessionSettings
    from threadline.sessions.postgres import PostgresStore

    async def main() -> None:
        store = PostgresStore(url, schema=schema)
        settings = SessionSettings(lease_ttl=ttl)
        async with contextlib.AsyncExitStack() as stack:
            for sid in session_ids:
                session = store.session(sid, session_settings=settings)
                await stack.enter_async_context(session.lease())
                await session.add_items([user_message(f"held {sid}")])
            Path(ready).touch()  # noqa: ASYNC240
            await asyncio.sleep(3600)

    asyncio.run(main())


if __name__ == "__main__":  # python -m tests.sessions._pg_workers NAME JSON-ARGS
    globals()[sys.argv[1]](*json.loads(sys.argv[2]))
