"""The crash-safety kill loop: start a writer child, SIGKILL it at a random moment, check.

:func:`kill_loop` runs ``_kill_child.py`` ``kills`` times on one SQLite file. Each child is
killed a random 0-60 ms after it acknowledged its first write, so kills land inside commits,
between a commit and its acknowledgement, inside a run's tool step and while a lease is
renewed. After every kill :func:`check` asserts the file is intact and the history whole.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from threadline.items import message_text, repair_orphans

from . import _kill_child as child

CHILD = Path(child.__file__).resolve()
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Figures:
    """What one kill loop tried and saw."""

    scenario: str
    config: str
    kills: int = 0
    acknowledged: int = 0
    """Writes (batches, or runs) the children acknowledged."""
    present: int = 0
    """Writes found whole in the history after the last kill (acknowledged or not)."""
    lost: int = 0
    """Acknowledged writes missing after a kill: must stay 0."""
    items: int = 0
    integrity_checks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return asdict(self)


def _acks(path: Path) -> dict[int, int]:
    """The highest acknowledged write number of each child run."""
    done: dict[int, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            run, n = map(int, line.split())
            done[run] = max(done.get(run, -1), n)
    return done


def _raw(db: Path, session_id: str) -> tuple[str, list[int], int]:
    conn = sqlite3.connect(db)
    try:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        row = conn.execute(
            "SELECT sid, item_count FROM threadline_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is None:
            return integrity, [], 0
        seqs = [
            s for (s,) in conn.execute("SELECT seq FROM threadline_items WHERE sid = ?", (row[0],))
        ]
        return integrity, sorted(seqs), row[1]
    finally:
        conn.close()


def _read(db: Path, key_hex: str, session_id: str) -> list[Any]:
    async def read() -> list[Any]:
        store = child.open_store(str(db), key_hex)
        try:
            return list(await store.session(session_id).get_items())
        finally:
            await store.aclose()

    return asyncio.run(read())


def _batches_present(items: list[Any]) -> dict[int, int]:
    """Walk the history batch by batch; every batch must be exactly ``batch(run, n)``."""
    present: dict[int, int] = {}
    position = 0
    while position < len(items):
        tag = message_text(items[position]).split()[0]  # "r{run}b{n}"
        run, n = (int(x) for x in tag[1:].split("b"))
        expected = child.batch(run, n)
        got = items[position : position + len(expected)]
        assert got == expected, f"batch {tag} at {position} is partial or changed: {got}"
        assert n == present.get(run, -1) + 1, f"batch {tag} follows {present.get(run)}: a gap"
        present[run] = n
        position += len(expected)
    return present


_TURN_PREFIXES = (
    [],
    ["function_call", "function_call", "function_call_output", "function_call_output"],
    ["function_call", "function_call", "function_call_output", "function_call_output", "message"],
)
"""How a turn may be stored after its user message: the input first, then each whole step."""


def _runs_present(items: list[Any]) -> dict[int, int]:
    """The runs whose final answer is stored; each turn stored as a prefix of whole steps."""
    present: dict[int, int] = {}
    seen: dict[int, int] = {}
    starts = [p for p, item in enumerate(items) if item.get("role") == "user"]
    assert starts[:1] in ([], [0]), "the history does not start with a user turn"
    for start, end in zip(starts, [*starts[1:], len(items)], strict=True):
        tag = items[start]["content"]
        run, n = (int(x) for x in tag[1:].split("t"))
        assert n == seen.get(run, -1) + 1, f"turn {tag} does not follow turn {seen.get(run)}"
        seen[run] = n
        turn = items[start + 1 : end]
        kinds = [item.get("type") for item in turn]
        assert kinds in _TURN_PREFIXES, f"turn {tag} is stored as {kinds}"
        if len(turn) == 5:
            assert message_text(turn[4]) == f"done {tag}"
            present[run] = n
    return present


def check(db: Path, key_hex: str, scenario: str, acks: dict[int, int]) -> tuple[int, int]:
    """Assert the file is intact and every acknowledged write whole; ``(present, items)``."""
    session_id = scenario
    integrity, seqs, count = _raw(db, session_id)
    assert integrity == "ok", integrity
    assert seqs == list(range(len(seqs))), "sequence numbers are not contiguous from 0"
    assert count == len(seqs), f"item_count {count} but {len(seqs)} items"
    items = _read(db, key_hex, session_id)
    assert len(items) == len(seqs)
    assert repair_orphans(items) == items, "a function call without its output (or vice versa)"
    present = _batches_present(items) if scenario == "batches" else _runs_present(items)
    for run, n in acks.items():
        assert present.get(run, -1) >= n, f"child {run} acknowledged write {n}; it is gone"
    return sum(n + 1 for n in present.values()), len(items)


def _wait_for_ack(proc: subprocess.Popen[bytes], acks: Path, run: int, errors: Path) -> None:
    deadline = time.monotonic() + 60
    while run not in _acks(acks):
        if proc.poll() is not None:
            raise AssertionError(f"child {run} exited early: {errors.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"child {run} acknowledged nothing in 60 s")
        time.sleep(0.005)


def kill_loop(
    tmp: Path, scenario: str, config: str, key_hex: str, kills: int, seed: int = 0
) -> Figures:
    """Run the ``scenario`` child ``kills`` times on ``tmp/kill.db``, checking after each kill."""
    rng = random.Random(seed)
    db, acks, errors = tmp / "kill.db", tmp / f"{scenario}.acks", tmp / "child.err"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    figures = Figures(scenario, config)
    started = time.perf_counter()
    for run in range(kills):
        with errors.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(CHILD), scenario, str(db), str(acks), str(run), key_hex],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            _wait_for_ack(proc, acks, run, errors)
            time.sleep(rng.uniform(0, 0.06))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        figures.kills += 1
        done = _acks(acks)
        figures.present, figures.items = check(db, key_hex, scenario, done)
        figures.integrity_checks += 1
        figures.acknowledged = sum(n + 1 for n in done.values())
    figures.seconds = round(time.perf_counter() - started, 2)
    figures.lost = 0  # check() failed otherwise
    return figures
