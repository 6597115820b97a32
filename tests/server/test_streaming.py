"""Streamed responses: OpenAI's event types in order, sequence numbers, failures, a client
that disconnects mid-stream, and the conversation lease (busy → 409, or wait)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from threadline import Agent, function_tool
from threadline.testing.server import ScriptedServer, error, reply, tool_calls

from .conftest import Served, upstream_model
from .test_responses import WEATHER_TOOL


def _check_sequence(events: list[Any]) -> None:
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[1].type == "response.in_progress"


def test_text_stream(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(reply("The Golden Gate Bridge is in San Francisco."))
    with client.responses.stream(model="assistant", input="Where?", conversation=conv.id) as stream:
        events = list(stream)
        final = stream.get_final_response()
    _check_sequence(events)
    types = [event.type for event in events]
    deltas = [event for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) >= 2  # the upstream's chunks arrive as they are
    first_delta = types.index("response.output_text.delta")
    assert types[2:first_delta] == ["response.output_item.added", "response.content_part.added"]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    text = "".join(event.delta for event in deltas)
    assert text == "The Golden Gate Bridge is in San Francisco."
    done = next(event for event in events if event.type == "response.output_text.done")
    assert done.text == text
    item_id = events[2].item.id
    assert {event.item_id for event in deltas} == {item_id}
    assert final.output_text == text and final.output[0].id == item_id
    assert final.status == "completed"
    # what was streamed is what was stored
    assert client.responses.retrieve(final.id).output[0].id == item_id
    stored = client.conversations.items.list(conv.id).data[0]
    assert stored.id == item_id and stored.content[0].text == text  # type: ignore[union-attr]


def test_stream_true_on_create(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    upstream.add(reply("hello there"))
    stream = client.responses.create(model="assistant", input="hi", stream=True)
    events = list(stream)
    _check_sequence(events)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "hello there"  # type: ignore[union-attr]


def test_function_call_stream(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    upstream.add(tool_calls(("get_weather", {"city": "Rome"})))
    with client.responses.stream(model="assistant", input="Rome?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    _check_sequence(events)
    assert [event.type for event in events[2:]] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, delta, args_done, item_done = events[2:6]
    assert added.item.type == "function_call" and added.item.status == "in_progress"
    assert delta.delta == '{"city": "Rome"}' and args_done.arguments == '{"city": "Rome"}'
    assert item_done.item.call_id == final.output[0].call_id  # type: ignore[union-attr]
    assert {added.item.id, delta.item_id, args_done.item_id, item_done.item.id} == {
        final.output[0].id
    }


def test_server_tool_steps_stream(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    @function_tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: 12C"

    agent = Agent(name="w", instructions="i", model=upstream_model(upstream), tools=[lookup])
    client = serve(agents=[agent]).client()
    upstream.add(tool_calls(("lookup", {"city": "Oslo"})), reply("12C in Oslo."))
    with client.responses.stream(model="w", input="Oslo?") as stream:
        events = list(stream)
        final = stream.get_final_response()
    _check_sequence(events)
    added = [event.item.type for event in events if event.type == "response.output_item.added"]
    assert added == ["function_call", "function_call_output", "message"]
    indexes = [event.output_index for event in events if event.type == "response.output_item.done"]
    assert indexes == [0, 1, 2]
    assert [item.type for item in final.output] == added
    assert final.output_text == "12C in Oslo."


def test_a_failure_before_the_stream_is_an_http_error(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    upstream.add(error(500, "upstream exploded"), error(500), error(500))
    with (
        pytest.raises(openai.APIStatusError) as caught,
        client.responses.stream(model="assistant", input="x") as stream,
    ):
        list(stream)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"  # type: ignore[index]


def test_a_failure_mid_stream_is_a_failed_event(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    @function_tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return "sunny"

    agent = Agent(name="w", instructions="i", model=upstream_model(upstream), tools=[lookup])
    client = serve(agents=[agent]).client()
    conv = client.conversations.create()
    upstream.add(tool_calls(("lookup", {"city": "Oslo"})), *[error(400, "bad")] * 3)
    events = list(
        client.responses.create(model="w", input="Oslo?", conversation=conv.id, stream=True)
    )
    _check_sequence(events)
    assert [event.type for event in events[-2:]] == ["error", "response.failed"]
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None
    # the completed step was stored; the failed response can be retrieved
    kinds = [item.type for item in client.conversations.items.list(conv.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output"]
    assert client.responses.retrieve(failed.id).status == "failed"


def test_a_client_that_disconnects_loses_nothing(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    release = threading.Event()

    @function_tool
    async def slow_lookup(city: str) -> str:
        """Look a city up, slowly."""
        await asyncio.to_thread(release.wait, 30)
        return "sunny"

    agent = Agent(name="w", instructions="i", model=upstream_model(upstream), tools=[slow_lookup])
    served = serve(agents=[agent])
    client = served.client()
    conv = client.conversations.create()
    upstream.add(tool_calls(("slow_lookup", {"city": "Oslo"})), reply("Sunny in Oslo."))
    stream = client.responses.create(model="w", input="Oslo?", conversation=conv.id, stream=True)
    for event in stream:
        if event.type == "response.output_item.done":  # the call is out; its tool is running
            break
    stream.close()  # the client hangs up mid-stream
    release.set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items = client.conversations.items.list(conv.id, order="asc").data
        if len(items) == 4:
            break
        time.sleep(0.05)
    assert [item.type for item in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[-1].content[0].text == "Sunny in Oslo."  # type: ignore[union-attr]


def test_a_busy_conversation_is_a_409_at_once_or_waits(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    served = serve()
    client = served.client()
    conv = client.conversations.create()
    upstream.add(reply("slow", delay=1.5), reply("second"), reply("third"))
    results: dict[str, Any] = {}

    def first() -> None:
        results["first"] = client.responses.create(
            model="assistant", input="a", conversation=conv.id
        )

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 10
    while not upstream.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(openai.ConflictError) as caught:
        client.responses.create(model="assistant", input="b", conversation=conv.id)
    assert caught.value.code == "conversation_busy"
    assert time.monotonic() - started < 1.0  # at once, not after the first finished
    with pytest.raises(openai.ConflictError):
        client.conversations.items.create(conv.id, items=[{"role": "user", "content": "c"}])
    # asking to wait: served once the first request has finished
    waited = client.responses.create(
        model="assistant",
        input="b",
        conversation=conv.id,
        extra_headers={"X-Threadline-Lease-Wait": "10"},
    )
    thread.join()
    assert results["first"].output_text == "slow" and waited.output_text == "second"
    texts = [
        item.content[0].text for item in client.conversations.items.list(conv.id, order="asc").data
    ]  # type: ignore[union-attr]
    assert texts == ["a", "slow", "b", "second"]


def test_sse_wire_format(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    import urllib.request

    served = serve()
    upstream.add(reply("wire"))
    request = urllib.request.Request(
        served.base_url + "/responses",
        data=json.dumps({"model": "assistant", "input": "x", "stream": True}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = answer.read().decode()
    blocks = [block for block in body.split("\n\n") if block.strip()]
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        assert json.loads(data_line[6:])["type"] == event_line[7:]
