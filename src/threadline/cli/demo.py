"""``threadline demo``: the Golden Gate conversation, offline, so memory is visible.

Three questions on the bundled local model and a SQLite file; the second and third only make
sense with the earlier turns, which the session supplies. Then the stored history is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..agent import Agent
from ..errors import MissingDependencyError
from ..run import Runner
from ..sessions import SQLiteSession
from ._progress import LoadProgress
from ._render import print_history
from .commands import make_folder

__all__ = ["DEMO_SESSION", "QUESTIONS", "continue_command", "demo_command", "run_demo"]

DEMO_SESSION = "golden-gate-demo"

QUESTIONS = (
    "What city is the Golden Gate Bridge in?",
    "What state is it in?",
    "What's the population?",
)


async def run_demo(model: Any, db_path: Path, out: TextIO) -> None:
    """Ask the three questions on ``model`` with a session in ``db_path``; print it all."""
    agent: Agent[None] = Agent(name="Assistant", instructions="Reply very concisely.", model=model)
    session = SQLiteSession(DEMO_SESSION, db_path)
    await session.clear_session()  # a fresh conversation each time the demo runs
    for question in QUESTIONS:
        started = time.perf_counter()
        result = await Runner.run(agent, question, session=session)
        elapsed = time.perf_counter() - started
        print(f"You:       {question}", file=out)
        print(f"Assistant: {result.final_output}   ({elapsed:.1f}s)\n", file=out)
    print(f"Stored in {db_path} as session {session.session_id!r}:", file=out)
    print_history(await session.get_items(), out)
    print(f"\nContinue this conversation:  {continue_command(db_path)}", file=out)
    client = getattr(model, "openai_client", None)
    if client is not None:
        await client.close()  # its connections belong to this event loop


def continue_command(db_path: Path, argv0: str | None = None) -> str:
    """The ``threadline chat`` command line that continues the demo's conversation.

    When this program was started by a path that is not the ``threadline`` on the ``PATH``
    (``.venv/bin/threadline`` from ``scripts/demo.sh``), the command uses that path.
    """
    program = "threadline"
    started_as = sys.argv[0] if argv0 is None else argv0
    if Path(started_as).name == "threadline":
        on_path = shutil.which("threadline")
        if on_path is None or Path(on_path).resolve() != Path(started_as).resolve():
            program = shlex.quote(started_as)
    database = shlex.quote(str(db_path.resolve()))
    return f"{program} chat --db {database} --session {DEMO_SESSION}"


def demo_command(args: argparse.Namespace) -> int:
    """Start the local model (with progress), then run the demo."""
    from ..models import local

    make_folder(Path(args.db))  # a bad --db fails before the model loads
    if not local.is_available():
        raise MissingDependencyError("xllamacpp", "local", "threadline demo (the local model)")
    print("threadline demo: an offline conversation that remembers.\n", file=sys.stderr)
    model = local.local_model(start=True, progress=LoadProgress(sys.stderr))
    asyncio.run(run_demo(model, Path(args.db), sys.stdout))
    return 0
