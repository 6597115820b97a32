"""``threadline demo``, the README's first command, on the real local model."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.cli import main
from threadline.models import local

pytestmark = pytest.mark.local_model


def test_demo_remembers_offline(
    real_server: local.LocalModelServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(local.LocalModelServer, "_shared", real_server)
    db = tmp_path / "demo.db"
    assert main(["demo", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    answers = [line for line in out.splitlines() if line.startswith("Assistant:")]
    assert len(answers) == 3
    assert "San Francisco" in answers[0]
    assert "California" in answers[1]
    assert "6. assistant:" in out  # the stored history is printed
    assert db.exists()
