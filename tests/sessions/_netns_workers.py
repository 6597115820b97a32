"""Functions the multi-host tests run inside network namespaces (``ip netns exec ... python
-m tests.sessions._netns_workers NAME JSON-ARGS``), for any store a URL names.

Each builds its own store and event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import Any


def _store(url: str, *, impatient: bool = False) -> Any:
    """The store ``url`` names; ``impatient``: one that gives up within seconds when its
    server stops answering (the cut host's)."""
    if url.startswith("postgresql://"):
        from threadline.sessions.postgres import PostgresStore

        if impatient:
            return PostgresStore(url, retry_for=1.0, connect_timeout=2.0, command_timeout=2.0)
        return PostgresStore(url)
    from threadline.sessions.redis import RedisStore

    if impatient:
        return RedisStore(url, timeout=2.0, connect_timeout=2.0)
    return RedisStore(url)


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

    def note(entry: dict[str, object]) -> None:
        with open(log, "a") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())

    async def main() -> None:
        store = _store(url, impatient=True)
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

    async def main() -> None:
        store = _store(url)
        await store.setup()
        await store.aclose()

    asyncio.run(main())


def netns_takeover(url: str, session_id: str, ttl: float, out: str) -> None:
    """The second app host: wait for the lease of ``session_id`` (the cut host still holds
    it), then record how long that took and the stored history in ``out`` (JSON)."""
    import time

    from threadline.errors import SessionBusyError

    async def main() -> None:
        store = _store(url)
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


if __name__ == "__main__":  # python -m tests.sessions._netns_workers NAME JSON-ARGS
    globals()[sys.argv[1]](*json.loads(sys.argv[2]))
