"""The child process the kill loop SIGKILLs (run as a script, see ``_kill_loop.py``).

``python _kill_child.py MODE DB ACKS RUN KEY`` writes to the SQLite file ``DB`` until killed:

* ``batches`` — appends batch after batch (``batch(run, n)``: a user message, 0 to 2 tool
  call pairs, an assistant message) to the session ``"batches"``;
* ``runner`` — ``Runner.run`` turn after turn on the session ``"runner"`` with a scripted model
  that calls a tool twice per turn and then answers.

After each ``add_items`` (or run) returns it appends ``RUN N`` to ``ACKS``: the parent only
counts as acknowledged what is written there. ``KEY`` is a hex master key for an
:class:`~threadline.sessions.EncryptionCodec`, or ``-`` for plain JSON.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from typing import Any

from threadline.items import Item, assistant_message, function_call, function_call_output
from threadline.items import user_message as user

LEASE_TTL = 0.5
"""The runner's lease ttl: a killed run's lease is taken over this soon."""


def batch(run: int, n: int) -> list[Item]:
    """The ``n``-th batch of child ``run``: 2, 4 or 6 items, every one tagged."""
    tag = f"r{run}b{n}"
    pairs = n % 3
    size = 2 + 2 * pairs
    items: list[Item] = [user(f"{tag} 0/{size}")]
    for p in range(pairs):
        call_id = f"{tag}c{p}"
        items.append(function_call(call_id, "echo", json.dumps({"text": f"{tag} {p}"})))
        items.append(function_call_output(call_id, f"{tag} out {p} " + "x" * (n % 50)))
    items.append(assistant_message(f"{tag} {size - 1}/{size}"))
    return items


def open_store(db: str, key_hex: str) -> Any:
    """The store the child (and the checker) opens on ``db``."""
    from threadline.sessions import EncryptionCodec, SQLiteStore

    codec = None if key_hex == "-" else EncryptionCodec(bytes.fromhex(key_hex), key_id="kill")
    return SQLiteStore(db, codec=codec)


def _ack(fd: int, run: int, n: int) -> None:
    os.write(fd, f"{run} {n}\n".encode())


async def _batches(store: Any, fd: int, run: int) -> None:
    session = store.session("batches")
    for n in itertools.count():
        await session.add_items(batch(run, n))
        _ack(fd, run, n)


async def _runner(store: Any, fd: int, run: int) -> None:
    from threadline import Agent, Runner, function_tool
    from threadline.items import message_text
    from threadline.sessions import SessionSettings
    from threadline.testing import ScriptedModel
    from threadline.testing.scripted_model import call

    @function_tool
    def echo(text: str) -> str:
        """Say ``text`` back."""
        return text

    def respond(request: Any) -> Any:
        last = request.input[-1]
        if last.get("type") == "function_call_output":
            return f"done {last['call_id'].split('c')[0]}"
        tag = message_text(last)
        return [
            call("echo", {"text": tag}, call_id=f"{tag}c0"),
            call("echo", {"text": tag}, call_id=f"{tag}c1"),
        ]

    agent = Agent(name="kill", model=ScriptedModel(responder=respond), tools=[echo])
    session = store.session("runner", session_settings=SessionSettings(lease_ttl=LEASE_TTL))
    for n in itertools.count():
        await Runner.run(agent, f"r{run}t{n}", session=session)
        _ack(fd, run, n)


def main(argv: list[str]) -> None:
    mode, db, acks, run, key_hex = argv
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    store = open_store(db, key_hex)
    work = _batches if mode == "batches" else _runner
    asyncio.run(work(store, fd, int(run)))


if __name__ == "__main__":
    main(sys.argv[1:])
