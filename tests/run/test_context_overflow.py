"""A model call refused as too long for the context window is retried with a smaller window,
then after a compaction, then refused with a clear error (run/overflow.py).

Through the real openai client against the scripted server, whose answers are the overflow
bodies providers send (OpenAI's ``context_length_exceeded``, llama.cpp's, vLLM's, Ollama's).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline import (
    Agent,
    CompactionSettings,
    ContextWindowExceededError,
    GuardrailFunctionOutput,
    InMemoryStore,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    SessionSettings,
    function_tool,
    input_guardrail,
)
from threadline.items import Item
from threadline.models.base import ModelRequest, ModelResponse, ModelStreamEvent, TextDelta
from threadline.run.context_budget import request_tokens
from threadline.run.overflow import ContextRetry, smaller_budget
from threadline.sessions import read_summary
from threadline.sessions._summary import SUMMARY_PREFIX
from threadline.sessions._window import window_of_items
from threadline.sessions.codec import estimate_tokens
from threadline.testing import ScriptedServer, raw, reply, tool_calls
from threadline.tracing import Span, set_trace_processors

WORDS = "word " * 60
WINDOW, REPLY = 3000, 200
INSTRUCTIONS = "Be brief."


def openai_overflow(requested: int) -> str:
    return json.dumps(
        {
            "error": {
                "message": f"This model's maximum context length is {WINDOW} tokens. However, "
                f"your messages resulted in {requested} tokens. Please reduce the length of "
                "the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    )


LLAMA_CPP = json.dumps(
    {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 4100,
            "n_ctx": WINDOW,
        }
    }
)
VLLM = json.dumps(
    {
        "object": "error",
        "message": f"This model's maximum context length is {WINDOW} tokens. However, you "
        f"requested 4300 tokens (4100 in the messages, {REPLY} in the completion).",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
)
OLLAMA = json.dumps(
    {"error": {"message": "input length exceeds maximum context length", "type": "api_error"}}
)


def overflow(body: str) -> Any:
    return raw(body, status=400)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def chat_model(server: ScriptedServer) -> OpenAIChatCompletionsModel:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    return OpenAIChatCompletionsModel(model="m", openai_client=client)


def agent_for(model: Any, **kwargs: Any) -> Agent[Any]:
    settings = ModelSettings(context_window=WINDOW, max_tokens=REPLY)
    return Agent(
        name="A", instructions=INSTRUCTIONS, model=model, model_settings=settings, **kwargs
    )


def turns(count: int) -> list[Item]:
    items: list[Item] = []
    for index in range(count):
        items.append({"role": "user", "content": f"question {index}: {WORDS}"})
        items.append({"role": "assistant", "content": f"answer {index}: {WORDS}"})
    return items


BIG = SessionSettings(max_tokens=20_000)
"""A budget larger than the model's window: the whole history is sent, and refused."""


def history_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages between the instructions and the newest user message."""
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": INSTRUCTIONS}
    return messages[1:-1]


def spans_collected() -> tuple[list[Span], Any]:
    spans: list[Span] = []

    class Collect:
        def on_span_start(self, span: Span) -> None:
            pass

        def on_span_end(self, span: Span) -> None:
            spans.append(span)

    return spans, Collect()


async def test_a_refused_call_is_retried_with_a_smaller_window(
    server: ScriptedServer, make_session: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session = make_session("s")
    seeded = turns(10)
    await session.add_items(seeded)
    agent = agent_for(chat_model(server))
    server.add(overflow(openai_overflow(5000)))
    server.add(reply("fine"))
    spans, collect = spans_collected()
    set_trace_processors([collect])
    try:
        with caplog.at_level(logging.WARNING, logger="threadline.run"):
            result = await Runner.run(
                agent,
                "the newest question",
                session=session,
                run_config=RunConfig(session_settings=BIG),
            )
    finally:
        set_trace_processors([])
    assert result.final_output == "fine"
    first, second = (request.body for request in server.requests)
    assert len(history_of(first)) == 20
    kept = history_of(second)
    assert 0 < len(kept) < 20
    assert second["messages"][-1] == {"role": "user", "content": "the newest question"}
    assert kept[0]["role"] == "user"  # a window starts where a turn starts
    assert kept == history_of(first)[-len(kept) :]  # the newest items, in order
    [retry] = result.context_retries
    assert retry.stage == "smaller window" and retry.compaction is None
    assert (retry.requested_tokens, retry.items_before, retry.items_after) == (5000, 20, len(kept))
    assert len(kept) == len(window_of_items(seeded, None, retry.budget))
    # the retry fits by the endpoint's own count of the refused request
    new_input = [{"role": "user", "content": "the newest question"}]
    refused = request_tokens(agent.model, instructions=INSTRUCTIONS, items=seeded + new_input)
    retried = request_tokens(
        agent.model, instructions=INSTRUCTIONS, items=seeded[-len(kept) :] + new_input
    )
    assert retried * 5000 / refused <= WINDOW - REPLY
    assert len(await session.get_items()) == 22  # nothing stored is lost, only not sent
    models = [span for span in spans if span.kind == "model"]
    assert [s.attributes.get("context_retry") for s in models] == [None, "smaller window"]
    assert models[0].error is not None and "context" in models[0].error
    assert "retried with" in caplog.text and "5000 tokens requested" in caplog.text


@pytest.mark.parametrize(
    ("body", "requested"),
    [(LLAMA_CPP, 4100), (VLLM, 4100), (OLLAMA, None)],
    ids=["llama.cpp", "vllm", "ollama"],
)
async def test_other_providers_overflows_are_retried(
    server: ScriptedServer, body: str, requested: int | None
) -> None:
    session = InMemoryStore().session("s", session_settings=BIG)
    seeded = turns(10)
    await session.add_items(seeded)
    server.add(overflow(body))
    server.add(reply("fine"))
    result = await Runner.run(agent_for(chat_model(server)), "next", session=session)
    [retry] = result.context_retries
    assert retry.requested_tokens == requested
    history = sum(estimate_tokens(item) for item in seeded)
    if requested is None:  # nothing to compute a budget from: half the history
        assert retry.budget == history // 2
    else:
        assert retry.budget < history
    assert len(history_of(server.requests[1].body)) == retry.items_after < 20


def test_the_smaller_budget() -> None:
    # unknown size or window: half
    assert smaller_budget(1000, 1200, None, 2800) == 500
    assert smaller_budget(1000, 1200, 5000, None) == 500
    # known: this request's ratio (5000 / 1200) says what fits, less the safety margin
    fits = smaller_budget(1000, 1200, 5000, 2800)
    assert fits == int((2800 / (5000 / 1200) - 200) * 0.9)
    assert 0 < fits < 1000
    # by our count it fitted, so the window we know is wrong: half
    assert smaller_budget(1000, 1200, 1300, 100_000) == 500
    # the rest alone does not fit: no history
    assert smaller_budget(1000, 1200, 50_000, 2800) == 0
    assert smaller_budget(0, 200, 5000, 2800) == 0


async def test_a_second_overflow_compacts_the_session_then_retries(
    server: ScriptedServer, make_session: Any
) -> None:
    session = make_session("s")
    await session.add_items(turns(10))
    agent = agent_for(chat_model(server))
    server.add(overflow(OLLAMA))
    server.add(overflow(OLLAMA))
    server.add(reply("The user asked ten questions about words."))  # the summariser
    server.add(reply("fine"))
    spans, collect = spans_collected()
    set_trace_processors([collect])
    try:
        result = await Runner.run(
            agent,
            "the newest question",
            session=session,
            run_config=RunConfig(session_settings=BIG),
        )
    finally:
        set_trace_processors([])
    assert result.final_output == "fine"
    bodies = [request.body for request in server.requests]
    assert len(bodies) == 4
    assert "running summary" in json.dumps(bodies[2]) and "question 0:" in json.dumps(bodies[2])
    sent = bodies[3]["messages"]
    summary_text = SUMMARY_PREFIX + "The user asked ten questions about words."
    assert sent[1] == {"role": "system", "content": summary_text}
    assert sent[-1] == {"role": "user", "content": "the newest question"}
    assert "question 0:" not in json.dumps(sent)
    first, second = result.context_retries
    assert (first.stage, second.stage) == ("smaller window", "compaction")
    assert second.compaction is not None and second.compaction.compacted
    assert second.budget < first.budget
    assert second.items_after <= first.items_after
    summary = await read_summary(session)
    assert summary is not None and summary.text == "The user asked ten questions about words."
    assert len(await session.get_items()) == 22
    compactions = [span for span in spans if span.kind == "compaction"]
    assert len(compactions) == 1 and compactions[0].error is None
    run_span = next(span for span in spans if span.kind == "run")
    assert compactions[0].trace_id == run_span.trace_id  # inside the run, under its lease
    models = [s.attributes.get("context_retry") for s in spans if s.kind == "model"]
    assert models == [None, "smaller window", None, "compaction"]  # the third: the summariser


async def test_a_third_overflow_is_a_clear_error(server: ScriptedServer, make_session: Any) -> None:
    session = make_session("s")
    await session.add_items(turns(10))
    server.add(overflow(openai_overflow(5000)))
    server.add(overflow(openai_overflow(4000)))
    server.add(reply("The user asked ten questions."))
    server.add(overflow(openai_overflow(3500)))
    with pytest.raises(ContextWindowExceededError) as caught:
        await Runner.run(
            agent_for(chat_model(server)),
            "next",
            session=session,
            run_config=RunConfig(session_settings=BIG),
        )
    message = str(caught.value)
    assert "still refused" in message and "compacted the session (compacted)" in message
    for fix in ("ModelSettings(context_window=", "SessionSettings(max_tokens=", "--max-history"):
        assert fix in message
    assert "\n" not in message
    assert caught.value.requested_tokens == 3500 and caught.value.status_code == 400
    assert isinstance(caught.value.__cause__, ContextWindowExceededError)
    assert len(server.requests) == 4
    items = await session.get_items()
    assert len(items) == 21 and items[-1] == {"role": "user", "content": "next"}


async def test_an_empty_history_is_a_clear_error_at_once(server: ScriptedServer) -> None:
    session = InMemoryStore().session("s")
    server.add(overflow(openai_overflow(5000)))
    with pytest.raises(ContextWindowExceededError, match="no stored history to leave out"):
        await Runner.run(agent_for(chat_model(server)), "a very long question", session=session)
    assert len(server.requests) == 1


async def test_without_a_session_the_error_is_unchanged(server: ScriptedServer) -> None:
    server.add(overflow(openai_overflow(5000)))
    with pytest.raises(ContextWindowExceededError) as caught:
        await Runner.run(agent_for(chat_model(server)), "hi")
    assert "send less history" in str(caught.value)  # the provider mapping's own message
    assert caught.value.__cause__ is not None
    assert not isinstance(caught.value.__cause__, ContextWindowExceededError)
    assert len(server.requests) == 1


async def test_a_streamed_run_is_retried_before_any_event(
    server: ScriptedServer, make_session: Any
) -> None:
    session = make_session("s")
    await session.add_items(turns(10))
    server.add(overflow(openai_overflow(5000)))
    server.add(reply("streamed fine"))
    result = Runner.run_streamed(
        agent_for(chat_model(server)),
        "next",
        session=session,
        run_config=RunConfig(session_settings=BIG),
    )
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert "".join(deltas) == "streamed fine"
    assert result.final_output == "streamed fine"
    [retry] = result.context_retries
    first, second = (request.body for request in server.requests)
    assert first["stream"] is True and second["stream"] is True
    assert len(history_of(second)) == retry.items_after < len(history_of(first))


class HalfStream:
    """A model whose stream emits a delta and then says the context overflowed."""

    model = "half"

    def __init__(self) -> None:
        self.calls = 0
        self.error = ContextWindowExceededError("the context overflowed mid-stream")

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        raise AssertionError("only streamed here")

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        self.calls += 1
        yield TextDelta("par")
        raise self.error


async def test_an_overflow_mid_stream_is_not_retried() -> None:
    session = InMemoryStore().session("s")
    await session.add_items(turns(3))
    model = HalfStream()
    result = Runner.run_streamed(Agent(name="A", model=model), "next", session=session)
    seen = []
    with pytest.raises(ContextWindowExceededError) as caught:
        async for event in result.stream_events():
            seen.append(event)
    assert caught.value is model.error  # unchanged
    assert model.calls == 1
    assert any(getattr(event, "type", "") == "raw_response_event" for event in seen)


async def test_a_responses_model_is_retried(server: ScriptedServer) -> None:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    model = OpenAIResponsesModel(model="m", openai_client=client)
    session = InMemoryStore().session("s", session_settings=BIG)
    await session.add_items(turns(10))
    server.add(overflow(openai_overflow(5000)))
    server.add(reply("fine"))
    result = await Runner.run(agent_for(model), "next", session=session)
    assert result.final_output == "fine"
    first, second = (request.body for request in server.requests)
    assert server.requests[0].path.endswith("/responses")
    assert len(first["input"]) == 21
    [retry] = result.context_retries
    assert len(second["input"]) == retry.items_after + 1 < 21
    assert second["input"][-1]["role"] == "user" and "next" in json.dumps(second["input"][-1])
    await client.close()


def tool_history(count: int) -> list[Item]:
    items: list[Item] = []
    for index in range(count):
        call = f"call_{index}"
        items += [
            {"role": "user", "content": f"question {index}: {WORDS}"},
            {"type": "function_call", "call_id": call, "name": "look", "arguments": "{}"},
            {"type": "function_call_output", "call_id": call, "output": WORDS},
            {"role": "assistant", "content": f"answer {index}"},
        ]
    return items


def assert_pairs_intact(messages: list[dict[str, Any]]) -> None:
    """Every tool result follows the assistant message that made its call."""
    called: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            called.add(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in called, message


async def test_the_runs_own_items_and_call_pairs_are_kept(
    server: ScriptedServer, make_session: Any
) -> None:
    @function_tool
    def look() -> str:
        """Look it up."""
        return "looked up: " + WORDS

    session = make_session("s")
    await session.add_items(tool_history(8))
    agent = agent_for(chat_model(server), tools=[look])
    server.add(tool_calls(("look", {})))  # the run's first step: a call
    server.add(overflow(OLLAMA))  # its second call overflows
    server.add(reply("done"))
    result = await Runner.run(
        agent, "the question", session=session, run_config=RunConfig(session_settings=BIG)
    )
    assert result.final_output == "done"
    refused, retried = server.requests[1].body["messages"], server.requests[2].body["messages"]
    assert len(retried) < len(refused)
    # the new input, the run's call and its output are all sent again, in order
    assert retried[-3]["content"] == "the question"
    assert retried[-2]["tool_calls"][0]["function"]["name"] == "look"
    assert retried[-1]["role"] == "tool" and "looked up" in retried[-1]["content"]
    assert_pairs_intact(retried)
    assert retried[1]["role"] == "user"
    [retry] = result.context_retries
    assert retry.items_before == 32 and retry.items_after < 32
    assert len(await session.get_items()) == 32 + 4


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


async def test_a_session_without_records_shrinks_without_compacting(
    server: ScriptedServer,
) -> None:
    session = ListSession("sdk")
    session.items = turns(10)
    calls: list[int] = []

    def callback(history: list[Item], new: list[Item]) -> list[Item]:
        calls.append(len(history))
        return history + new

    server.add(overflow(OLLAMA))
    server.add(overflow(OLLAMA))
    server.add(reply("fine"))
    config = RunConfig(session_settings=BIG, session_input_callback=callback)
    result = await Runner.run(
        agent_for(chat_model(server)), "next", session=session, run_config=config
    )
    assert result.final_output == "fine"
    assert len(server.requests) == 3  # no summariser call
    first, second = result.context_retries
    assert second.stage == "compaction" and second.compaction is None
    assert "not possible" in second.describe()
    assert calls == [20, first.items_after, second.items_after]  # the callback merges each time
    assert 20 > first.items_after > second.items_after
    assert len(session.items) == 22


async def test_a_guarded_input_is_sent_in_the_retry_and_stored_once(
    server: ScriptedServer,
) -> None:
    @input_guardrail(run_in_parallel=False)
    def allow(context: Any, agent: Any, given: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    session = InMemoryStore().session("s", session_settings=BIG)
    await session.add_items(turns(10))
    server.add(overflow(openai_overflow(5000)))
    server.add(reply("fine"))
    agent = agent_for(chat_model(server), input_guardrails=[allow])
    result = await Runner.run(agent, "guarded", session=session)
    assert result.context_retries[0].items_after < 20
    assert server.requests[1].body["messages"][-1] == {"role": "user", "content": "guarded"}
    items = await session.get_items()
    assert items[-2] == {"role": "user", "content": "guarded"}  # stored once, after the check
    assert len(items) == 22


async def test_a_failed_compaction_still_retries_with_a_smaller_window(
    server: ScriptedServer,
) -> None:
    session = InMemoryStore().session("s", session_settings=BIG)
    await session.add_items(turns(10))
    server.add(overflow(OLLAMA))
    server.add(overflow(OLLAMA))
    server.add(reply(WORDS * 40))  # a "summary" longer than what it replaces: rejected
    server.add(reply("fine"))
    config = RunConfig(compaction=CompactionSettings(summary_words=50))
    result = await Runner.run(
        agent_for(chat_model(server)), "next", session=session, run_config=config
    )
    assert result.final_output == "fine"
    second = result.context_retries[1]
    assert second.compaction is not None and second.compaction.status == "rejected"
    assert "rejected" in second.describe()
    assert await read_summary(session) is None
    assert len(history_of(server.requests[3].body)) == second.items_after


def test_a_retry_describes_itself() -> None:
    retry = ContextRetry("smaller window", 5000, 800, 20, 8)
    assert retry.describe() == "retried with 8 of 20 history items (a budget of ~800 tokens)"
