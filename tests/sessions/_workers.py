"""Functions run in child processes by the multi-process SQLite tests (spawned, not forked)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from threadline.items import assistant_message, user_message
from threadline.sessions import SessionSettings, SQLiteSession, writer_lease


def add_batches(db_path: str, session_id: str, worker: int, batches: int) -> int:
    """Append ``batches`` two-item batches tagged with the worker and batch number."""

    async def main() -> None:
        session = SQLiteSession(session_id, db_path)
        for number in range(batches):
            tag = f"{worker}:{number}"
            await session.add_items([user_message(tag), assistant_message(tag)])
        session.close()

    asyncio.run(main())
    return worker


def leased_turns(db_path: str, session_id: str, worker: int, turns: int) -> int:
    """Write ``turns`` turns as two separate writes, each turn inside the writer lease."""

    async def main() -> None:
        session = SQLiteSession(session_id, db_path, session_settings=SessionSettings(lease_ttl=5))
        for number in range(turns):
            tag = f"{worker}:{number}"
            async with writer_lease(session):
                await session.add_items([user_message(tag)])
                await asyncio.sleep(0)
                await session.add_items([assistant_message(tag)])
        session.close()

    asyncio.run(main())
    return worker


def hold_lease_and_die(db_path: str, session_id: str, ttl: float, ready: str) -> None:
    """Take the lease, signal readiness by creating the file ``ready``, then die holding it."""

    async def main() -> None:
        session = SQLiteSession(
            session_id, db_path, session_settings=SessionSettings(lease_ttl=ttl)
        )
        async with session.lease():
            Path(ready).touch()  # noqa: ASYNC240
            os._exit(0)  # no clean-up: the lease row stays behind, as after a crash

    asyncio.run(main())


def stalled_turn(db_path: str, session_id: str, ttl: float, ready: str, result: str) -> None:
    """Start a turn under the lease, signal ``ready``, keep writing steps (the parent stops
    this process with SIGSTOP meanwhile), and record in ``result`` how the turn ended."""

    async def main() -> None:
        session = SQLiteSession(
            session_id, db_path, session_settings=SessionSettings(lease_ttl=ttl)
        )
        outcome = "finished"
        try:
            async with session.lease():
                await session.add_items([user_message("stalled turn")])
                Path(ready).touch()  # noqa: ASYNC240
                for step in range(40):
                    await asyncio.sleep(0.1)
                    await session.add_items([assistant_message(f"stalled step {step}")])
        except Exception as exc:  # the parent checks which error ended the turn
            outcome = f"{type(exc).__name__}: {exc}"
        Path(result).write_text(outcome)  # noqa: ASYNC240
        session.close()

    asyncio.run(main())


def redis_runs(url: str, prefix: str, base_url: str, worker: int, session_ids: list[str]) -> int:
    """One ``Runner.run`` turn (a tool call, its output, an answer) on each session, eight at a
    time, through one Redis store of this process; the model is the parent's scripted server."""
    from openai import AsyncOpenAI

    from threadline import Agent, OpenAIChatCompletionsModel, Runner, function_tool
    from threadline.sessions.redis import RedisStore

    @function_tool
    def lookup(q: str) -> str:
        """Look ``q`` up."""
        return f"found {q}"

    async def main() -> None:
        store = RedisStore(url, prefix=prefix)
        client = AsyncOpenAI(api_key="test", base_url=base_url, max_retries=0)
        model = OpenAIChatCompletionsModel(model="scripted", openai_client=client)
        agent = Agent(name="A", model=model, tools=[lookup])
        settings = SessionSettings(lease_ttl=10)
        gate = asyncio.Semaphore(8)

        async def turn(session_id: str) -> None:
            async with gate:
                session = store.session(session_id, session_settings=settings)
                await Runner.run(agent, f"{worker}|{session_id}", session=session)

        await asyncio.gather(*(turn(session_id) for session_id in session_ids))
        await client.close()
        await store.aclose()

    asyncio.run(main())
    return worker


def redis_hold_and_die(url: str, prefix: str, session_id: str, ttl: float, ready: str) -> None:
    """Take the session's Redis lease, write a turn's input, signal ``ready``, then wait to be
    killed with SIGKILL while holding the lease (mid-turn)."""
    import time

    from threadline.sessions.redis import RedisStore

    async def main() -> None:
        store = RedisStore(url, prefix=prefix)
        session = store.session(session_id, session_settings=SessionSettings(lease_ttl=ttl))
        async with session.lease():
            await session.add_items([user_message("turn of the killed worker")])
            Path(ready).touch()  # noqa: ASYNC240
            time.sleep(60)  # noqa: ASYNC251 - blocks the loop too: no renewal, as if frozen

    asyncio.run(main())
