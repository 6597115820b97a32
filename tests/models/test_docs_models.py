"""The example in docs/models.md runs as written and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()


def test_the_cut_off_example_prints_what_the_page_says(capsys: pytest.CaptureFixture[str]) -> None:
    [code] = re.findall(r"```python\n(.*?)```", DOC, re.S)
    [expected] = re.findall(r"prints\n\n```text\n(.*?)```", DOC, re.S)

    exec(compile(code, "docs/models.md", "exec"), {"__name__": "__main__"})

    assert capsys.readouterr().out == expected
