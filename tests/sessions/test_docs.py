"""The store example of docs/sessions.md runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "sessions.md"


def _block_after(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_the_store_example_runs(tmp_path: Path) -> None:
    code = _block_after("## Stores")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['user_123'] None"
    assert lines[1].startswith("user_123 0 What city is the **Golden** **Gate** Bridge")
    assert lines[2].startswith("StoreStats(sessions=1, items=1")
    assert (tmp_path / "conversations.db").exists()


def test_the_encryption_example_runs(tmp_path: Path) -> None:
    import base64
    import os

    code = _block_after("## Encryption at rest")
    env = {**os.environ, "THREADLINE_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    item = "[{'role': 'user', 'content': 'My PIN is 4242'}]"
    assert done.stdout.splitlines() == [item, "1 item(s) now under 2026-07", item]
    for name in ("private.db", "private.db-wal", "private.db-shm"):
        path = tmp_path / name
        assert not path.exists() or b"PIN is 4242" not in path.read_bytes()


def test_the_long_conversation_example_runs(tmp_path: Path) -> None:
    code = _block_after("## Long conversations")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "What city is the Golden Gate Bridge in?",
        "[('user_123', 'Golden Gate')]",
        "2 2 [1, 1]",
        "2 user_123",
        "[]",
        "4 items exported",
        "4 items imported into copy",
    ]
    header = (tmp_path / "user_123.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert '"format":"threadline.session"' in header
