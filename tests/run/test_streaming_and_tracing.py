"""Streamed runs and tracing spans."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import ResponseTextDeltaEvent

from threadline import Agent, RunConfig, Runner, Span, UserError, function_tool
from threadline.testing import ScriptedModel, call
from threadline.tracing import set_trace_processors, set_tracing_disabled


async def test_stream_yields_text_deltas_items_and_agent_updates() -> None:
    @function_tool
    def weather(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    model = ScriptedModel([[call("weather", {"city": "Tokyo"})], "It is sunny in Tokyo."])
    agent = Agent(name="A", model=model, tools=[weather])
    result = Runner.run_streamed(agent, "weather?")
    deltas: list[str] = []
    names: list[str] = []
    kinds: list[str] = []
    async for event in result.stream_events():
        kinds.append(event.type)
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event":
            names.append(event.name)
    assert "".join(deltas) == "It is sunny in Tokyo."
    assert len(deltas) > 1
    assert kinds[0] == "agent_updated_stream_event"
    assert names == ["tool_called", "tool_output", "message_output_created"]
    assert result.is_complete
    assert result.final_output == "It is sunny in Tokyo."
    assert result.last_agent is agent
    assert result.usage.requests == 2
    assert result.to_input_list()[-1]["role"] == "assistant"


async def test_stream_reports_handoffs() -> None:
    model = ScriptedModel([[call("transfer_to_b", {})], "B speaking"])
    b = Agent(name="B", model=model)
    a = Agent(name="A", model=model, handoffs=[b])
    result = Runner.run_streamed(a, "x")
    agents = [
        e.new_agent.name
        async for e in result.stream_events()
        if e.type == "agent_updated_stream_event"
    ]
    assert agents == ["A", "B"]
    assert result.last_agent is b


async def test_stream_reraises_the_run_error() -> None:
    model = ScriptedModel([RuntimeError("boom")])
    result = Runner.run_streamed(Agent(name="A", model=model), "x")
    with pytest.raises(RuntimeError, match="boom"):
        async for _ in result.stream_events():
            pass


async def test_stream_can_only_be_iterated_once() -> None:
    result = Runner.run_streamed(Agent(name="A", model=ScriptedModel(["hi"])), "x")
    async for _ in result.stream_events():
        pass
    with pytest.raises(UserError, match="once"):
        async for _ in result.stream_events():
            pass


def test_to_input_list_before_completion_is_a_user_error() -> None:
    result = Runner.run_streamed(Agent(name="A", model=ScriptedModel(["hi"])), "x")
    with pytest.raises(UserError, match="not completed"):
        result.to_input_list()


class Recorder:
    def __init__(self) -> None:
        self.started: list[Span] = []
        self.ended: list[Span] = []

    def on_span_start(self, span: Span) -> None:
        self.started.append(span)

    def on_span_end(self, span: Span) -> None:
        self.ended.append(span)


@pytest.fixture
def recorder() -> Any:
    rec = Recorder()
    set_tracing_disabled(False)  # an example run earlier in the process may have disabled it
    set_trace_processors([rec])
    yield rec
    set_trace_processors([])
    set_tracing_disabled(False)


async def test_spans_for_run_model_and_tool(recorder: Recorder) -> None:
    @function_tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = ScriptedModel([[call("ping", {})], "done"])
    await Runner.run(Agent(name="A", model=model, tools=[ping]), "x")
    kinds = [s.kind for s in recorder.ended]
    assert kinds == ["model", "tool", "model", "run"]
    run_span = recorder.ended[-1]
    assert all(s.trace_id == run_span.trace_id for s in recorder.ended)
    assert all(s.parent_id == run_span.span_id for s in recorder.ended[:-1])
    assert all(s.duration is not None and s.duration >= 0 for s in recorder.ended)
    assert recorder.ended[0].attributes["usage"]["requests"] == 1
    assert run_span.attributes["usage"]["requests"] == 2
    assert recorder.ended[1].attributes["output"] == "pong"


async def test_failed_span_records_the_error(recorder: Recorder) -> None:
    model = ScriptedModel([RuntimeError("boom")])
    with pytest.raises(RuntimeError):
        await Runner.run(Agent(name="A", model=model), "x")
    assert recorder.ended[-1].kind == "run"
    assert recorder.ended[-1].error == "RuntimeError: boom"


async def test_tracing_can_be_disabled(recorder: Recorder) -> None:
    set_tracing_disabled(True)
    await Runner.run(Agent(name="A", model=ScriptedModel(["hi"])), "x")
    assert recorder.started == [] and recorder.ended == []
    set_tracing_disabled(False)
    await Runner.run(
        Agent(name="A", model=ScriptedModel(["hi"])),
        "x",
        run_config=RunConfig(tracing_disabled=True),
    )
    assert recorder.ended == []


async def test_a_broken_processor_does_not_break_the_run() -> None:
    class Broken:
        def on_span_start(self, span: Span) -> None:
            raise RuntimeError("exporter down")

        def on_span_end(self, span: Span) -> None:
            raise RuntimeError("exporter down")

    set_trace_processors([Broken()])
    try:
        result = await Runner.run(Agent(name="A", model=ScriptedModel(["hi"])), "x")
    finally:
        set_trace_processors([])
    assert result.final_output == "hi"
