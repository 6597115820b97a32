"""The examples in docs/models.md run as written and do what the page says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, re.S)


def test_the_page_has_the_examples_these_tests_run() -> None:
    assert len(BLOCKS) == 2


def test_the_cut_off_example_prints_what_the_page_says(capsys: pytest.CaptureFixture[str]) -> None:
    [code] = [block for block in BLOCKS if "cut_off" in block]
    [expected] = re.findall(r"prints\n\n```text\n(.*?)```", DOC, re.S)

    exec(compile(code, "docs/models.md", "exec"), {"__name__": "__main__"})

    assert capsys.readouterr().out == expected


def test_the_context_window_example_sets_the_window() -> None:
    from threadline.run.context_budget import history_budget

    [code] = [block for block in BLOCKS if "context_window" in block]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, "docs/models.md", "exec"), namespace)
    agent = namespace["agent"]
    budget = history_budget(object(), agent.model_settings, instructions=None)
    assert budget is not None
    assert (budget.context_window, budget.reserved_reply) == (8192, 512)
