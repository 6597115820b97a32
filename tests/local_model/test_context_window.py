"""A chat on the local model whose history passes its 8192-token context keeps working.

The stand-in server (``_fake_server.py ctx``) refuses, as llama.cpp does, a prompt that does not
fit the context it was started with; the runner's default window must keep every request
inside it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from threadline import Agent, ContextWindowExceededError, RunConfig, Runner, SessionSettings
from threadline.cli.chat import ChatApp, run_repl
from threadline.models import local
from threadline.sessions import SQLiteStore

from ._fake_server import _prompt_tokens
from .conftest import FakeServer

LONG = "The bridge's towers rise 227 metres above the water of the strait. " * 15  # ~1000 chars
TURNS = 40  # ~40 × 260 tokens of user text alone: well past 8192
CODE = "area = {'r': r, 'a': 3.14159 * r ** 2}; " * 25  # ~1000 chars on one line


def chat(fake: FakeServer, tmp_path: Path, lines: list[str]) -> tuple[int, str, str]:
    store = SQLiteStore(tmp_path / "chat.db")
    out, err = io.StringIO(), io.StringIO()
    app = ChatApp(
        agent=Agent(
            name="Assistant", instructions="Reply concisely.", model=local.local_model(fake.server)
        ),
        store=store,
        session_id="long",
        out=out,
        err=err,
    )
    status = run_repl(app, io.StringIO("".join(line + "\n" for line in lines)))
    return status, out.getvalue(), err.getvalue()


def test_the_local_model_declares_its_context(make_fake: Callable[..., FakeServer]) -> None:
    assert local.local_model(make_fake("ctx").server).context_window == 8192
    small = make_fake("ctx", context_size=2048)
    assert local.local_model(small.server).context_window == 2048


def test_a_chat_past_the_context_keeps_working(
    make_fake: Callable[..., FakeServer], tmp_path: Path
) -> None:
    fake = make_fake("ctx")
    status, out, err = chat(fake, tmp_path, [f"{i}: {LONG}" for i in range(TURNS)])
    assert status == 0 and "error" not in err
    assert out.splitlines() == ["Hello there."] * TURNS
    requests = [body for body in fake.requests() if body.get("messages")][-TURNS:]
    assert len(requests) == TURNS
    assert all(_prompt_tokens(body) + body["max_tokens"] <= 8192 for body in requests)
    last = requests[-1]["messages"]
    assert last[-1]["content"].startswith(f"{TURNS - 1}: ")
    assert not any(str(m["content"]).startswith("0: ") for m in last)  # old turns left out
    assert len(last) > 10  # but the window is not needlessly small


def test_a_denser_tokenizer_is_learned_from_the_reported_usage(
    make_fake: Callable[..., FakeServer], tmp_path: Path
) -> None:
    # code takes about twice the tokens the estimate says: the runner learns it from the
    # usage of the first turns, before the history reaches the window
    fake = make_fake("dense")
    status, out, err = chat(fake, tmp_path, [f"{i}: {CODE}" for i in range(TURNS)])
    assert status == 0 and "error" not in err, err
    assert out.splitlines() == ["Hello there."] * TURNS
    requests = [body for body in fake.requests() if body.get("messages")][-TURNS:]
    assert all(_prompt_tokens(body, 2) + body["max_tokens"] <= 8192 for body in requests)
    assert _prompt_tokens(requests[-1], 2) > 8192 // 2  # and the window is still used


async def test_an_explicit_budget_wins_and_an_overflow_names_the_fix(
    make_fake: Callable[..., FakeServer], tmp_path: Path
) -> None:
    fake = make_fake("ctx")
    model = local.local_model(fake.server)
    store = SQLiteStore(tmp_path / "chat.db")
    session = store.session("s")
    await session.add_items([{"role": "user", "content": f"{i}: {LONG}"} for i in range(TURNS)])
    agent = Agent(name="Assistant", model=model)
    config = RunConfig(session_settings=SessionSettings(max_tokens=10**6))
    # the explicit budget is sent and refused; the runner retries with a smaller window
    result = await Runner.run(agent, "and now?", session=session, run_config=config)
    assert result.final_output == "Hello there."
    assert [retry.stage for retry in result.context_retries] == ["smaller window"]
    refused, retried = [body for body in fake.requests() if body.get("messages")][-2:]
    assert len(retried["messages"]) < len(refused["messages"])
    assert _prompt_tokens(retried) + retried["max_tokens"] <= 8192
    # without a session there is no history to shrink: the error names the fixes
    history = await session.get_items()
    with pytest.raises(ContextWindowExceededError) as caught:
        await Runner.run(agent, [*history, {"role": "user", "content": "and now?"}])
    message = str(caught.value)
    assert "--max-history-tokens" in message and "SessionSettings(max_tokens=" in message
    assert "context_window=" in message and "\n" not in message
    result = await Runner.run(agent, "and now?", session=session)  # the default window fits
    assert result.final_output == "Hello there." and result.context_retries == []
    await store.aclose()


async def test_an_overflow_teaches_the_next_run_to_fit(
    make_fake: Callable[..., FakeServer], tmp_path: Path
) -> None:
    # a history of code written earlier (another process): the first request is too big for
    # the dense tokenizer, the error says by how much, the run retries with less history, and
    # the next run fits at once
    fake = make_fake("dense")
    store = SQLiteStore(tmp_path / "chat.db")
    session = store.session("s")
    await session.add_items([{"role": "user", "content": f"{i}: {CODE}"} for i in range(TURNS)])
    agent = Agent(name="Assistant", model=local.local_model(fake.server))
    result = await Runner.run(agent, "and now?", session=session)  # refused, then retried
    [retry] = result.context_retries
    assert retry.requested_tokens is not None
    assert retry.requested_tokens > 8192 - 256
    assert result.final_output == "Hello there."
    result = await Runner.run(agent, "and now?", session=session)
    assert result.final_output == "Hello there." and result.context_retries == []  # it fits
    await store.aclose()
