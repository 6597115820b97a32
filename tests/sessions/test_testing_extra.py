"""The shipped conformance suite names the extra it needs when a test tool is missing."""

from __future__ import annotations

import subprocess
import sys


def test_missing_hypothesis_names_the_testing_extra() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n"
        "    import threadline.sessions.testing\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.startswith("MissingDependencyError")
    assert "pip install -e '.[testing]'" in out
    assert "'hypothesis'" in out
