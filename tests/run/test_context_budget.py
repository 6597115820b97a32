"""The default history window fits the model's context window; an explicit budget wins.

Through the real openai client against the scripted server: every request of a long session
stays inside the budget, and the budget follows ``ModelSettings(context_window=...)``, the
table of well-known names, the reply reserve, the instructions and the tools.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline import (
    Agent,
    ContextWindowExceededError,
    InMemorySession,
    ModelSettings,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    SessionSettings,
    UserError,
    function_tool,
)
from threadline.models.context_windows import context_window_of, known_context_window
from threadline.run import context_budget
from threadline.run.context_budget import (
    SAFETY_MARGIN,
    history_budget,
    observe_usage,
    request_tokens,
    token_ratio,
)
from threadline.run.steps import tool_specs
from threadline.sessions.codec import estimate_tokens
from threadline.testing import ScriptedServer, error, raw, reply

TEXT = "Tell me more about the history of the bridge and its towers, please. " * 6  # ~420 chars


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        srv.responder = lambda request: reply("Noted: the bridge has a long history. " * 3)
        yield srv


def model(server: ScriptedServer, name: str = "test-model") -> OpenAIChatCompletionsModel:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    return OpenAIChatCompletionsModel(model=name, openai_client=client)


def history_tokens(body: dict[str, Any]) -> int:
    """Estimated tokens of the history a request carried (everything but system and the
    newest user message)."""
    messages = [m for m in body["messages"] if m["role"] != "system"][:-1]
    return sum(estimate_tokens(json.dumps(m)) for m in messages)


def body_tokens(body: dict[str, Any]) -> int:
    return sum(estimate_tokens(json.dumps(m)) for m in body["messages"])


async def test_a_long_session_never_exceeds_the_window(server: ScriptedServer) -> None:
    window = 3000
    settings = ModelSettings(context_window=window, max_tokens=300)
    agent = Agent(name="a", instructions="Be brief.", model=model(server), model_settings=settings)
    session = InMemorySession("long")
    for turn in range(40):
        await Runner.run(agent, f"{turn}: {TEXT}", session=session)
    bodies = [r.body for r in server.requests]
    assert len(bodies) == 40
    assert all(body_tokens(body) + 300 <= window for body in bodies)
    assert len(await session.get_items()) == 80  # nothing stored is lost, only not sent
    last = bodies[-1]["messages"]
    assert not any(m["content"].startswith("0: ") for m in last if m["role"] == "user")
    assert body_tokens(bodies[-1]) > window // 2  # the window is used, not wasted


async def test_an_explicit_budget_always_wins(server: ScriptedServer) -> None:
    agent = Agent(name="a", model=model(server), model_settings=ModelSettings(context_window=1000))
    session = InMemorySession("s", session_settings=SessionSettings(max_tokens=50_000))
    await session.add_items([{"role": "user", "content": f"{i}: {TEXT}"} for i in range(20)])
    await Runner.run(agent, "go on", session=session)
    assert len(server.requests[-1].body["messages"]) == 21  # the session's own setting
    config = RunConfig(session_settings=SessionSettings(max_tokens=400))
    await Runner.run(agent, "go on", session=session, run_config=config)
    # the run's setting (in provider tokens, which the session's calibration converts to
    # estimated tokens: within a factor of two here)
    assert history_tokens(server.requests[-1].body) <= 800
    assert len(server.requests[-1].body["messages"]) < 21
    await Runner.run(agent, "go on", session=InMemorySession("t"), run_config=config)


async def test_a_known_model_name_gets_its_window_and_an_unknown_one_sends_everything(
    server: ScriptedServer,
) -> None:
    session = InMemorySession("s")
    await session.add_items([{"role": "user", "content": f"{i}: {TEXT}"} for i in range(80)])
    await Runner.run(Agent(name="a", model=model(server, "gpt-4")), "go on", session=session)
    sent = server.requests[-1].body
    assert body_tokens(sent) + 1024 <= 8192 and len(sent["messages"]) < 81
    await Runner.run(Agent(name="a", model=model(server, "my-own-model")), "x", session=session)
    assert len(server.requests[-1].body["messages"]) == 83  # unknown window: no default cut


def test_the_budget_counts_instructions_tools_input_and_the_reply() -> None:
    @function_tool
    def lookup(query: str) -> str:
        """Look something up.

        Args:
            query: What to look up.
        """
        return query

    agent = Agent(name="a", tools=[lookup])
    tools = tool_specs(agent)
    settings = ModelSettings(context_window=8000, max_tokens=500)
    bare = history_budget(object(), settings, instructions=None)
    assert bare is not None and bare.reserved_reply == 500
    assert bare.history_tokens == int((8000 - 500) * SAFETY_MARGIN)
    full = history_budget(
        object(),
        settings,
        instructions="x" * 4000,
        tools=tools,
        new_input=[{"role": "user", "content": "y" * 400}],
    )
    assert full is not None and full.fixed > 1000 + 100
    assert full.history_tokens == int((8000 - 500 - full.fixed) * SAFETY_MARGIN)
    default_reply = history_budget(object(), ModelSettings(context_window=8192), instructions=None)
    assert default_reply is not None and default_reply.reserved_reply == 1024
    tiny = history_budget(object(), ModelSettings(context_window=300), instructions="z" * 4000)
    assert tiny is not None and tiny.history_tokens == 0
    assert history_budget(object(), ModelSettings(), instructions=None) is None


def test_the_table_of_known_windows() -> None:
    assert known_context_window("gpt-4o-2024-08-06") == 128_000
    assert known_context_window("gpt-4o-mini") == 128_000
    assert known_context_window("gpt-4-0613") == 8_192
    assert known_context_window("GPT-4.1-mini") == 1_047_576
    assert known_context_window("openai/gpt-4o") == 128_000
    assert known_context_window("llama3.1:8b") == 131_072
    assert known_context_window("gemini-2.5-flash") == 1_048_576
    assert known_context_window("something-else") is None
    assert known_context_window(None) is None

    class Own:
        model = "gpt-4o"
        context_window = 4096

    assert context_window_of(Own()) == 4096  # the model's own word over the table
    assert context_window_of(Own(), 2048) == 2048  # the setting over both


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "8192"])
def test_a_bad_context_window_setting_is_refused(bad: Any) -> None:
    with pytest.raises(UserError, match="context_window"):
        ModelSettings(context_window=bad)


OVERFLOWS = [
    # OpenAI
    {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your "
            "messages resulted in 9000 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    },
    # vLLM
    {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens. However, you requested "
        "5000 tokens (4000 in the messages, 1000 in the completion).",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    },
    # llama.cpp server
    {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 9000,
            "n_ctx": 8192,
        }
    },
    # Ollama
    {"error": {"message": "input length exceeds maximum context length", "type": "api_error"}},
    # Gemini's OpenAI-compatible endpoint
    {
        "error": {
            "code": 400,
            "message": "The input token count (1200000) exceeds the maximum number of tokens "
            "allowed (1048576).",
            "status": "INVALID_ARGUMENT",
        }
    },
]


@pytest.mark.parametrize(
    ("body", "requested"),
    list(zip(OVERFLOWS, [9000, 4000, 9000, None, 1200000], strict=True)),
    ids=["openai", "vllm", "llama.cpp", "ollama", "gemini"],
)
async def test_a_context_overflow_names_the_fix(
    server: ScriptedServer, body: Any, requested: int | None
) -> None:
    server.add(raw(json.dumps(body), status=400))
    agent = Agent(name="a", model=model(server))
    with pytest.raises(ContextWindowExceededError) as caught:
        await Runner.run(agent, "hi")
    message = str(caught.value)
    assert caught.value.status_code == 400
    assert caught.value.requested_tokens == requested
    for fix in ("--max-history-tokens", "SessionSettings(max_tokens=", "context_window="):
        assert fix in message
    assert "\n" not in message


async def test_another_bad_request_is_not_called_an_overflow(server: ScriptedServer) -> None:
    server.add(error(400, "Unknown parameter: 'foo'"))
    with pytest.raises(Exception) as caught:
        await Runner.run(Agent(name="a", model=model(server)), "hi")
    assert not isinstance(caught.value, ContextWindowExceededError)
    assert "Unknown parameter" in str(caught.value)


class ListSession:
    """A session with only the four contract methods (as the OpenAI Agents SDK's)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.items: list[dict[str, Any]] = []

    async def get_items(self, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self.items if limit is None else self.items[-limit:])

    async def add_items(self, items: list[dict[str, Any]]) -> None:
        self.items += items

    async def pop_item(self) -> dict[str, Any] | None:
        return self.items.pop() if self.items else None

    async def clear_session(self) -> None:
        self.items.clear()


def mixed_history(turns: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i in range(turns):
        items.append({"role": "user", "content": f"{i}: {TEXT}"})
        if i % 3 == 0:
            items.append(
                {"type": "function_call", "call_id": f"c{i}", "name": "look", "arguments": "{}"}
            )
            items.append({"type": "function_call_output", "call_id": f"c{i}", "output": TEXT})
        items.append(
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": f"answer {i}"}],
            }
        )
    return items


async def test_a_session_without_get_window_gets_the_same_window(server: ScriptedServer) -> None:
    plain, ours = ListSession("p"), InMemorySession("o")
    history = mixed_history(30)
    plain.items = [dict(item) for item in history]
    await ours.add_items(history)
    for budget in (300, 1000, 2500):
        expected = await ours.get_window(max_tokens=budget)
        config = RunConfig(session_settings=SessionSettings(max_tokens=budget))
        agent = Agent(name="a", model=model(server))
        await Runner.run(agent, "next", session=plain, run_config=config)
        sent = server.requests[-1].body["messages"]
        assert [m["content"] for m in sent if m["role"] == "user"] == [
            *(item["content"] for item in expected if item.get("role") == "user"),
            "next",
        ]
        sent_calls = [c["id"] for m in sent for c in m.get("tool_calls") or []]
        assert sent_calls == [i["call_id"] for i in expected if i.get("type") == "function_call"]
        assert len(expected) < len(history)
        plain.items = plain.items[:-2]  # forget this run's turn for the next budget
    agent = Agent(name="a", model=model(server), model_settings=ModelSettings(context_window=1500))
    await Runner.run(agent, "next", session=plain)
    assert body_tokens(server.requests[-1].body) + 256 <= 1500


def test_the_ratio_of_reported_to_estimated_tokens_is_kept_per_model() -> None:
    class M:
        def __init__(self, name: str) -> None:
            self.model = name

    dense, other = M("dense"), M("other")
    assert token_ratio(dense) == 1.0
    observe_usage(dense, 1000, 2100)
    assert token_ratio(dense) == 2.1 and token_ratio(M("dense")) == 2.1
    assert token_ratio(other) == 1.0
    observe_usage(other, 1000, 600)  # the estimate was generous: budgets do not grow
    assert token_ratio(other) == 1.0
    observe_usage(other, 50, 5000)  # too small a request to say anything
    assert token_ratio(other) == 1.0
    observe_usage(other, 1000, 10**6)
    assert token_ratio(other) == context_budget.MAX_RATIO
    settings = ModelSettings(context_window=8000, max_tokens=500)
    plain = history_budget(M("x"), settings, instructions=None)
    scaled = history_budget(dense, settings, instructions=None)
    assert plain is not None and scaled is not None and scaled.token_ratio == 2.1
    assert scaled.history_tokens == int((7500 / 2.1) * SAFETY_MARGIN)


async def test_the_runner_learns_the_ratio_from_the_first_call(server: ScriptedServer) -> None:
    session = InMemorySession("s")
    await session.add_items([{"role": "user", "content": f"{i}: {TEXT}"} for i in range(10)])
    chat = model(server)
    agent = Agent(name="a", model=chat, model_settings=ModelSettings(context_window=100_000))
    sent_estimate = 0

    def answer(request: Any) -> Any:
        nonlocal sent_estimate
        sent_estimate = sum(estimate_tokens(json.dumps(m)) for m in request.body["messages"])
        return reply("ok", usage={"input_tokens": 3 * sent_estimate, "output_tokens": 1})

    server.responder = answer
    await Runner.run(agent, "hi", session=session)
    ours = request_tokens(chat, instructions=None, items=(await session.get_items())[:11])
    assert token_ratio(chat) == pytest.approx(3 * sent_estimate / ours)  # about 3
    assert 2.5 < token_ratio(chat) < 3.5
    config = RunConfig(session_settings=SessionSettings(max_tokens=1))  # explicit: no learning
    server.responder = lambda request: reply("ok", usage={"input_tokens": 1, "output_tokens": 1})
    before = token_ratio(chat)
    await Runner.run(agent, "hi", session=session, run_config=config)
    assert token_ratio(chat) == before
