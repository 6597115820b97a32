"""Crash safety: writers SIGKILLed at random moments never lose or half-write a history.

A child process appends batches (or runs ``Runner.run`` turns with tool calls) on a SQLite
file and acknowledges each write in a file once it returned; it is killed at a random moment,
``THREADLINE_KILLS`` times per scenario and configuration (10 by default;
``bench/reliability.py`` runs 100). After each kill: ``PRAGMA integrity_check`` is ok, every
acknowledged write is there, none is partial, sequence numbers are contiguous and the history
is valid to send. ``THREADLINE_KILL_REPORT`` names a file the figures are appended to.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from ..backends import TEST_KEY
from ._kill_loop import kill_loop

KILLS = int(os.environ.get("THREADLINE_KILLS", "10"))
CONFIGS = {"sqlite-file": "-", "sqlite-file-encrypted": TEST_KEY.hex()}

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("scenario", ["batches", "runner"])
def test_killed_writers_lose_nothing_acknowledged(
    tmp_path: Path, scenario: str, config: str
) -> None:
    figures = kill_loop(tmp_path, scenario, config, CONFIGS[config], KILLS, seed=KILLS)
    assert figures.kills == KILLS
    assert figures.lost == 0
    assert figures.present >= figures.acknowledged > 0
    report = os.environ.get("THREADLINE_KILL_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures.as_dict()) + "\n")


def test_the_checker_sees_a_lost_or_partial_batch(tmp_path: Path) -> None:
    import sqlite3

    from ._kill_loop import _acks, check

    kill_loop(tmp_path, "batches", "sqlite-file", "-", 1)
    db, acks = tmp_path / "kill.db", tmp_path / "batches.acks"
    with pytest.raises(AssertionError, match="acknowledged write 99999; it is gone"):
        check(db, "-", "batches", {**_acks(acks), 0: 99999})
    with sqlite3.connect(db) as conn:
        conn.execute(
            "DELETE FROM threadline_items WHERE seq = (SELECT max(seq) FROM threadline_items)"
        )
        conn.execute("UPDATE threadline_sessions SET item_count = item_count - 1")
    with pytest.raises(AssertionError, match="partial or changed"):
        check(db, "-", "batches", {})
