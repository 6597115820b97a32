"""Every install instruction works from this repository: threadline is not on PyPI yet."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# one that is not ours to change (the sessions layer is edited elsewhere): a known gap
NOT_OURS: set[str] = set()
PIP = re.compile(r"pip install ([^`\n]*)")


def _sources() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted((ROOT / "scripts").glob("*.sh"))
    files += sorted((ROOT / "src" / "threadline").rglob("*.py"))
    return [f for f in files if str(f.relative_to(ROOT)) not in NOT_OURS]


def _works(arguments: str) -> bool:
    editable = re.search(r"(^|\s)(-e|--editable)\s", arguments) is not None
    from_git = "git+" in arguments
    future = "once threadline is published" in arguments  # said as a future, not as a step
    return editable or from_git or future


def test_every_pip_install_names_a_checkout_or_a_git_url() -> None:
    wrong = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        for match in PIP.finditer(text):
            if not _works(match.group(1) + " "):
                wrong.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert wrong == []


def test_the_demo_script_says_what_it_downloads_and_how_to_run_threadline() -> None:
    script = (ROOT / "scripts" / "demo.sh").read_text()
    assert "350 MB" in script
    assert script.index("350 MB") < script.index("pip install")  # said before installing
    assert "$VENV/bin/threadline chat" in script and "source $VENV/bin/activate" in script
    readme = (ROOT / "README.md").read_text()
    assert "scripts/demo.sh    #" in readme and "scripts/test.sh    #" in readme
    assert ".venv/bin/threadline" in readme and "source .venv/bin/activate" in readme


def test_the_demo_script_in_order(tmp_path: Path) -> None:
    """scripts/demo.sh with a stand-in environment: size first, the demo, then how to run."""
    import os
    import stat
    import subprocess

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    stubs = {
        # the import check fails (nothing installed yet); pip "installs"
        "python": '#!/bin/sh\n[ "$1" = "-c" ] && exit 1\necho "pip $*" >> "$0.log"\n',
        "threadline": '#!/bin/sh\necho "threadline $*"\n',
    }
    for name, body in stubs.items():
        path = venv / "bin" / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "THREADLINE_VENV": str(venv)}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert "about 350 MB" in lines[0]
    assert "-m pip install" in (venv / "bin" / "python.log").read_text()
    assert "threadline demo" in lines
    assert lines.index("threadline demo") > 0
    assert f"    {venv}/bin/threadline chat" in lines
    assert lines[-1] == f"or activate the environment first:  source {venv}/bin/activate"
