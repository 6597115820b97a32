"""The example of docs/approvals.md runs as written: one process stops at the refund, a
second one approves it and finishes the run."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from threadline.testing import ScriptedServer, reply, tool_calls

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "approvals.md"


def _first_block() -> str:
    found = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert found is not None
    return found.group(1)


def _run(script: Path, server: ScriptedServer, *args: str) -> list[str]:
    env = {
        **os.environ,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": server.base_url,
        "PYTHONPATH": str(ROOT / "src"),
    }
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


async def test_the_approvals_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "support.py"
    script.write_text(_first_block(), encoding="utf-8")
    with ScriptedServer() as server:
        server.add(
            tool_calls(("refund", {"order_id": "A-7", "amount": 20.0})),
            reply("Your refund of 20 EUR is on its way."),
        )
        asked = await asyncio.to_thread(_run, script, server, "ask", "Refund", "order", "A-7")
        assert asked == ['waiting: refund {"order_id": "A-7", "amount": 20.0}']
        approved = await asyncio.to_thread(_run, script, server, "approve")
        assert approved == ["Your refund of 20 EUR is on its way."]
        again = await asyncio.to_thread(_run, script, server, "approve")
        assert again == ["nothing waits"]
        tool_message = server.requests[1].body
        sent = tool_message.get("messages") or tool_message.get("input")
        assert "refunded 20.0 EUR on A-7" in str(sent)
    assert (tmp_path / "support.db").exists()


async def test_the_deciding_snippet_runs(tmp_path: Path) -> None:
    from openai import AsyncOpenAI

    from threadline import Agent, OpenAIChatCompletionsModel, Runner, SQLiteStore, function_tool

    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    snippet = blocks[1]
    assert "state.reject(state.interruptions[1]" in snippet
    ran: list[str] = []

    @function_tool(needs_approval=True)
    def refund(order_id: str, amount: float) -> str:
        """Refund an order."""
        ran.append(order_id)
        return "refunded"

    with ScriptedServer() as server:
        client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        model = OpenAIChatCompletionsModel(model="test-model", openai_client=client)
        agent = Agent(name="Support", model=model, tools=[refund])
        server.add(
            tool_calls(
                ("refund", {"order_id": "A-1", "amount": 20.0}),
                ("refund", {"order_id": "A-2", "amount": 500.0}),
            ),
            reply("One refunded, one sent to a manager."),
        )
        async with SQLiteStore(tmp_path / "s.db") as store:
            session = store.session("c")
            result = await Runner.run(agent, "Refund both.", session=session)
            namespace = {"Runner": Runner, "agent": agent, "session": session}
            code = "async def _snippet(result):\n" + textwrap.indent(snippet, "    ")
            code += "    return result\n"
            exec(code, namespace)
            final = await namespace["_snippet"](result)
            assert final.final_output == "One refunded, one sent to a manager."
            assert ran == ["A-1"]
            outputs = [
                i for i in await session.get_items() if i.get("type") == "function_call_output"
            ]
            assert outputs[1]["output"] == "Refunds over 100 EUR go to a manager."
        await client.close()
