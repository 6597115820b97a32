"""Functions run in child processes by the PostgreSQL multi-process and multi-host tests.

They are spawned (or run by ``python -c`` inside a network namespace), so each builds its
own store, agent and event loop; the scripted model server's URL comes in as an argument.
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


def netns_writer(url: str, session_id: str, ttl: float, log: str) -> None:
    """The app host of the multi-host test: hold the lease of ``session_id`` and write turns
    (a user message, then a two-item step) as fast as it can, logging each acknowledged
    write to ``log`` as one JSON line, until a write fails; then log the error and exit."""
    from threadline.items import (
        assistant_message,
        function_call,
        function_call_output,
        user_message,
    )
    from threadline.sessions import SessionSettings
    from threadline.sessions.postgres import PostgresStore

    def note(entry: dict[str, object]) -> None:
        with open(log, "a") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())

    async def main() -> None:
        store = PostgresStore(url, retry_for=1.0, connect_timeout=2.0, command_timeout=2.0)
        session = store.session(session_id, session_settings=SessionSettings(lease_ttl=ttl))
        try:
            async with session.lease() as lease:
                note({"lease": lease.epoch})
                turn = 0
                while True:
                    tag = f"turn {turn}"
                    await session.add_items([user_message(tag)])
                    note({"ack": tag, "part": "input"})
                    await session.add_items(
                        [
                            function_call(f"c{turn}", "lookup", json.dumps({"q": tag})),
                            function_call_output(f"c{turn}", "x" * 2000),
                            assistant_message(tag),
                        ]
                    )
                    note({"ack": tag, "part": "step"})
                    turn += 1
        except Exception as exc:
            note({"error": f"{type(exc).__name__}: {exc}"})
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(store.aclose(), 2)

    asyncio.run(main())


def netns_setup(url: str) -> None:
    """Create the schema (the deployment's ``threadline db migrate``)."""
    from threadline.sessions.postgres import PostgresStore

    async def main() -> None:
        store = PostgresStore(url)
        await store.setup()
        await store.aclose()

    asyncio.run(main())


def netns_takeover(url: str, session_id: str, ttl: float, out: str) -> None:
    """The second app host: wait for the lease of ``session_id`` (the cut host still holds
    it), then record how long that took and the stored history in ``out`` (JSON)."""
    import time

    from threadline.errors import SessionBusyError
    from threadline.sessions.postgres import PostgresStore

    async def main() -> None:
        store = PostgresStore(url)
        session = store.session(session_id)
        busy = False
        try:
            async with session.lease(wait=False):
                pass
        except SessionBusyError:
            busy = True
        started = time.monotonic()
        async with session.lease(timeout=ttl + 20, ttl=ttl) as lease:
            waited = time.monotonic() - started
            items = await session.get_items()
            await session.add_items([{"role": "user", "content": "after the takeover"}])
            epoch = lease.epoch
        await store.aclose()
        with open(out, "w") as handle:  # noqa: ASYNC230 - the process ends here
            json.dump({"busy": busy, "waited": waited, "epoch": epoch, "items": items}, handle)

    asyncio.run(main())


if __name__ == "__main__":  # python -m tests.sessions._pg_workers NAME JSON-ARGS
    globals()[sys.argv[1]](*json.loads(sys.argv[2]))
