"""The examples of docs/context.md run as written and print what the page says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "context.md"


def runnable_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [block for block in blocks if block.startswith("import asyncio")]


def run(code: str, tmp_path: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_there_are_three_runnable_examples() -> None:
    assert len(runnable_blocks()) == 3


def test_the_compaction_example_runs(tmp_path: Path) -> None:
    lines = run(runnable_blocks()[0], tmp_path)
    assert lines[:6] == [
        "1 skipped",
        "2 skipped",
        "3 skipped",
        "4 compacted",
        "5 skipped",
        "6 skipped",
    ]
    assert lines[6].startswith("{'role': 'system', 'content': '[threadline summary] The earlier")
    assert lines[6].endswith("The user is planning five days in Lisbon.'}")
    assert lines[7] == "12 items stored, 7 in the window"


def test_the_explicit_compaction_example_runs(tmp_path: Path) -> None:
    lines = run(runnable_blocks()[1], tmp_path)
    assert lines == [
        "compacted items 0-5 into the summary: it covers 6 items (~186 tokens) in ~48 tokens",
        "6 Facts 0, 1 and 2 were noted.",
        "8 3",
        "None",
    ]
    text = DOC.read_text(encoding="utf-8")
    assert "`12 items stored, 7 in the window`" in text and "`8 3`" in text


def test_the_overflow_example_runs(tmp_path: Path) -> None:
    lines = run(runnable_blocks()[2], tmp_path)
    assert lines == [
        "I was sent 5 items.",
        "smaller window - retried with 4 of 10 history items (a budget of ~47 tokens)",
    ]
