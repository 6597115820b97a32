"""Many OS processes share one PostgreSQL store: nothing lost, no turn interleaved, and the
lease of a process killed while holding it is taken over within its ttl."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline.errors import SessionBusyError
from threadline.items import Item, validate_items
from threadline.sessions.postgres import PostgresStore
from threadline.testing import RecordedRequest, ScriptedServer, ServerStep, reply

from ..backends import POSTGRES_URL, new_postgres_schema
from . import _pg_workers

pytestmark = pytest.mark.postgres

SESSIONS = 100
WORKERS = 4
TURNS = 2  # per session per worker: 800 runs in all


def _user_texts(request: RecordedRequest) -> list[str]:
    body = request.body
    messages = body["messages"] if "messages" in body else body["input"]
    return [m["content"] for m in messages if m.get("role") == "user"]


def echo(request: RecordedRequest) -> ServerStep:
    """Answer ``"<question> #<n>"``: n is how many user messages the model was sent."""
    texts = _user_texts(request)
    return reply(f"{texts[-1]} #{len(texts)}")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        srv.responder = echo
        yield srv


@pytest.fixture
async def schema() -> str:
    name = new_postgres_schema()
    store = PostgresStore(POSTGRES_URL, schema=name)
    await store.setup()
    await store.aclose()
    return name


def _text(item: Item) -> str:
    content = item["content"]
    return content if isinstance(content, str) else content[0]["text"]


def test_four_processes_on_one_hundred_sessions(server: ScriptedServer, schema: str) -> None:
    ids = [f"user-{n:03d}" for n in range(SESSIONS)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        results = [
            pool.apply_async(
                _pg_workers.run_turns,
                (POSTGRES_URL, schema, server.base_url, worker, ids, TURNS, 8),
            )
            for worker in range(WORKERS)
        ]
        done = [result.get(timeout=300) for result in results]
    assert done == [SESSIONS * TURNS] * WORKERS

    async def check() -> None:
        store = PostgresStore(POSTGRES_URL, schema=schema)
        try:
            stats = await store.stats()
            assert (stats.sessions, stats.items) == (SESSIONS, SESSIONS * WORKERS * TURNS * 2)
            for sid in ids:
                items = await store.session(sid).get_items()
                validate_items(items)  # every history is valid to send
                assert len(items) == WORKERS * TURNS * 2  # 0 lost, 0 duplicated
                asked = []
                for index in range(0, len(items), 2):
                    question, answer = items[index], items[index + 1]
                    assert question["role"] == "user" and answer["role"] == "assistant"
                    # the answer follows its own question: no turn interleaved with another,
                    # and the model saw every earlier turn of the session
                    assert _text(answer) == f"{question['content']} #{index // 2 + 1}"
                    asked.append(question["content"])
                expected = {f"w{w} t{t} {sid}" for w in range(WORKERS) for t in range(TURNS)}
                assert set(asked) == expected
        finally:
            await store.aclose()

    asyncio.run(check())


async def _takeover_times(schema: str, ids: list[str], ttl: float) -> list[float]:
    store = PostgresStore(POSTGRES_URL, schema=schema)
    try:
        for sid in ids:
            with pytest.raises(SessionBusyError, match="pid"):
                async with store.session(sid).lease(wait=False):
                    pass
        started = time.monotonic()
        waited = []
        for sid in ids:
            session = store.session(sid)
            async with session.lease(timeout=ttl + 5):
                waited.append(time.monotonic() - started)
                items = await session.get_items()
                assert items == [{"role": "user", "content": f"held {sid}"}]
                await session.add_items([{"role": "assistant", "content": "taken over"}])
        return waited
    finally:
        await store.aclose()


def test_a_killed_holder_s_sessions_are_writable_within_the_ttl(
    schema: str, tmp_path: Path
) -> None:
    ttl = 2.0
    ids = [f"held-{n}" for n in range(5)]
    ready = tmp_path / "ready"
    context = multiprocessing.get_context("spawn")
    child: Any = context.Process(
        target=_pg_workers.hold_leases_forever,
        args=(POSTGRES_URL, schema, ids, ttl, str(ready)),
    )
    child.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.is_alive() and time.monotonic() < deadline, "the holder never got ready"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        killed_at = time.monotonic()
        waited = asyncio.run(_takeover_times(schema, ids, ttl))
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    assert time.monotonic() - killed_at <= ttl + 2.0
    assert max(waited) <= ttl + 1.0, waited
