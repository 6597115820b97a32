"""The Python example of docs/serve.md runs as written against a real server."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from threadline.testing.server import ScriptedServer, reply

from .conftest import Served

DOC = Path(__file__).resolve().parents[2] / "docs" / "serve.md"


def test_the_guide_example_runs(
    serve: Callable[..., Served], upstream: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    served = serve()
    upstream.add(reply("San Francisco."), reply("California."))
    code = blocks[0].replace("http://127.0.0.1:8400/v1", served.base_url)
    exec(compile(code, "docs/serve.md", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.splitlines() == [
        "California.",
        "['user', 'assistant', 'user', 'assistant']",
    ]
    assert [m["content"] for m in upstream.requests[1].body["messages"]][1:] == [
        "What city is the Golden Gate Bridge in?",
        "San Francisco.",
        "What state is it in?",
    ]
