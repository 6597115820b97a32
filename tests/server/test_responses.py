"""``POST /v1/responses`` and friends through the official openai client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest

from threadline import Agent, function_tool
from threadline.sessions import open_store
from threadline.testing.server import ScriptedServer, reply, tool_calls

from .conftest import Served, run, upstream_model

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def sent_texts(server: ScriptedServer, index: int = -1) -> list[Any]:
    """The ``content`` of each message the upstream received in request ``index``."""
    return [message.get("content") for message in server.requests[index].body["messages"]]


def test_a_conversation_remembers(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    conv = client.conversations.create(metadata={"user": "u1"})
    upstream.add(reply("San Francisco."), reply("California."))
    first = client.responses.create(
        model="assistant", input="What city is the Golden Gate Bridge in?", conversation=conv.id
    )
    assert first.output_text == "San Francisco."
    assert first.conversation is not None and first.conversation.id == conv.id
    assert first.status == "completed"
    assert first.usage is not None and first.usage.total_tokens > 0
    second = client.responses.create(
        model="assistant", input="What state is it in?", conversation=conv.id
    )
    assert second.output_text == "California."
    assert sent_texts(upstream) == [
        "You are a helpful assistant.",
        "What city is the Golden Gate Bridge in?",
        "San Francisco.",
        "What state is it in?",
    ]
    page = client.conversations.items.list(conv.id, order="asc", limit=20)
    assert [(item.type, item.role) for item in page.data] == [  # type: ignore[union-attr]
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    # the response's output items are the conversation's items, same ids
    assert second.output[0].id == page.data[-1].id
    assert client.responses.retrieve(second.id).output_text == "California."
    inputs = client.responses.input_items.list(second.id)
    assert [item.id for item in inputs.data] == [page.data[2].id]


def test_conversation_as_an_object(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    conv = client.conversations.create(items=[{"role": "user", "content": "Say hi"}])
    upstream.add(reply("hi"))
    answer = client.responses.create(model="assistant", conversation={"id": conv.id}, input="Now.")
    assert answer.output_text == "hi"
    assert sent_texts(upstream)[1:] == ["Say hi", "Now."]


def test_previous_response_id_chains_and_branches(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    upstream.add(reply("one"), reply("two"), reply("branch"))
    first = client.responses.create(model="assistant", input="a")
    assert first.conversation is None
    second = client.responses.create(model="assistant", input="b", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert sent_texts(upstream)[1:] == ["a", "one", "b"]
    # continuing the first response again branches: the second exchange is not in it
    branch = client.responses.create(model="assistant", input="c", previous_response_id=first.id)
    assert branch.output_text == "branch"
    assert sent_texts(upstream)[1:] == ["a", "one", "c"]
    # and the second response's chain is intact
    upstream.add(reply("three"))
    client.responses.create(model="assistant", input="d", previous_response_id=second.id)
    assert sent_texts(upstream)[1:] == ["a", "one", "b", "two", "d"]


def test_previous_response_of_a_conversation(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(reply("x1"), reply("x2"), reply("y"))
    first = client.responses.create(model="assistant", input="q1", conversation=conv.id)
    client.responses.create(model="assistant", input="q2", conversation=conv.id)
    # continuing the first response leaves the conversation alone
    client.responses.create(model="assistant", input="q3", previous_response_id=first.id)
    assert sent_texts(upstream)[1:] == ["q1", "x1", "q3"]
    assert len(client.conversations.items.list(conv.id).data) == 4


def test_conversation_and_previous_response_id_together_is_a_400(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(reply("r"))
    first = client.responses.create(model="assistant", input="a")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="assistant", input="b", conversation=conv.id, previous_response_id=first.id
        )
    assert "Mutually exclusive" in caught.value.message
    assert upstream.pending == 0 and len(upstream.requests) == 1


def test_store_false_keeps_nothing(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    conv = client.conversations.create(items=[{"role": "user", "content": "My name is Ada."}])
    upstream.add(reply("Ada."), reply("Hello."))
    answer = client.responses.create(
        model="assistant", input="What is my name?", conversation=conv.id, store=False
    )
    assert answer.output_text == "Ada."
    assert sent_texts(upstream)[1:] == ["My name is Ada.", "What is my name?"]  # history read
    assert len(client.conversations.items.list(conv.id).data) == 1  # nothing written
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(answer.id)
    alone = client.responses.create(model="assistant", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(alone.id)


def test_instructions_replace_the_agents(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    upstream.add(reply("Arr."))
    answer = client.responses.create(
        model="assistant", input="Hello", instructions="Talk like a pirate."
    )
    assert answer.instructions == "Talk like a pirate."
    assert sent_texts(upstream) == ["Talk like a pirate.", "Hello"]


def test_client_function_tool_round_trip(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    conv = client.conversations.create()
    upstream.add(tool_calls(("get_weather", {"city": "Paris"})), reply("Sunny in Paris."))
    asked = client.responses.create(
        model="assistant", input="Weather in Paris?", conversation=conv.id, tools=[WEATHER_TOOL]
    )
    assert [item.type for item in asked.output] == ["function_call"]
    call = asked.output[0]
    assert call.name == "get_weather" and call.arguments == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert upstream.requests[0].body["tools"][0]["function"]["name"] == "get_weather"
    # the call is in the conversation, waiting for the client's output
    assert [item.type for item in client.conversations.items.list(conv.id, order="asc").data] == [
        "message",
        "function_call",
    ]
    done = client.responses.create(
        model="assistant",
        conversation=conv.id,
        tools=[WEATHER_TOOL],
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}  # type: ignore[union-attr]
        ],
    )
    assert done.output_text == "Sunny in Paris."
    sent = upstream.requests[-1].body["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == call.call_id  # type: ignore[union-attr]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}  # type: ignore[union-attr]
    kinds = [item.type for item in client.conversations.items.list(conv.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output", "message"]


def test_client_tool_round_trip_with_previous_response_id(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    upstream.add(tool_calls(("get_weather", {"city": "Oslo"})), reply("Cold."))
    asked = client.responses.create(model="assistant", input="Oslo?", tools=[WEATHER_TOOL])
    call = asked.output[0]
    done = client.responses.create(
        model="assistant",
        previous_response_id=asked.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "-5C"}],  # type: ignore[union-attr]
    )
    assert done.output_text == "Cold."
    assert upstream.requests[-1].body["messages"][-1]["content"] == "-5C"


def _calculator(upstream: ScriptedServer) -> Agent[Any]:
    """An agent with a server-side tool, ``add``."""

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    return Agent(name="calc", instructions="Use add.", model=upstream_model(upstream), tools=[add])


def test_server_side_tools_run_on_the_server(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve(agents=[_calculator(upstream)]).client()
    upstream.add(tool_calls(("add", {"a": 2, "b": 3})), reply("5"))
    answer = client.responses.create(model="calc", input="2+3?")
    assert answer.output_text == "5"
    assert [item.type for item in answer.output] == [
        "function_call",
        "function_call_output",
        "message",
    ]
    assert answer.output[1].output == "5"  # type: ignore[union-attr]
    assert len({item.id for item in answer.output}) == 3


def test_unknown_model_conversation_and_response(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    client = serve().client()
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-9", input="x")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="assistant", input="x", conversation="conv_nope")
    assert missing.value.body["param"] == "conversation"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="assistant", input="x", previous_response_id="resp_nope")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_000000000000000000000000bm9wZQ")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="assistant", input="x", tools=[{"type": "web_search"}])  # type: ignore[list-item]
    assert upstream.requests == []


def test_delete_a_response(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    client = serve().client()
    upstream.add(reply("r"))
    answer = client.responses.create(model="assistant", input="a")
    client.responses.delete(answer.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(answer.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(answer.id)


def test_models_lists_the_served_agents(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    agents = [
        Agent(name="alpha", instructions="a", model=upstream_model(upstream)),
        Agent(name="beta", instructions="b", model=upstream_model(upstream)),
    ]
    client = serve(agents=agents).client()
    assert [model.id for model in client.models.list()] == ["alpha", "beta"]
    assert client.models.retrieve("beta").id == "beta"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gamma")
    upstream.add(reply("from beta"))
    assert client.responses.create(model="beta", input="x").output_text == "from beta"
    assert sent_texts(upstream)[0] == "b"


async def test_async_client(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    async with serve().async_client() as client:
        conv = await client.conversations.create()
        upstream.add(reply("one"), reply("two"))
        await client.responses.create(model="assistant", input="first", conversation=conv.id)
        answer = await client.responses.create(
            model="assistant", input="second", conversation=conv.id
        )
        assert answer.output_text == "two"
        assert sent_texts(upstream)[1:] == ["first", "one", "second"]


def test_an_output_that_answers_no_call_is_a_400_before_anything_is_stored(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    """A function_call_output whose call_id no stored or earlier call carries is refused at
    once (stored, it would be sent upstream unpaired, which providers refuse), streamed or
    not; an output that answers a call earlier in the same input is fine."""
    client = serve().client()
    conv = client.conversations.create(items=[{"role": "user", "content": "hi"}])
    orphan: Any = [{"type": "function_call_output", "call_id": "call_ghost", "output": "x"}]
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(
                model="assistant", input=orphan, conversation=conv.id, stream=stream
            )
        assert "call_ghost" in caught.value.message
        assert caught.value.param == "input[0]"
    with pytest.raises(openai.BadRequestError):  # no conversation: the input alone counts
        client.responses.create(model="assistant", input=orphan)
    assert upstream.requests == []
    assert [item.type for item in client.conversations.items.list(conv.id).data] == ["message"]

    upstream.add(reply("Noted."))
    paired: Any = [
        {"type": "function_call", "call_id": "c9", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c9", "output": "sunny"},
    ]
    done = client.responses.create(model="assistant", input=paired, conversation=conv.id)
    assert done.output_text == "Noted."


def test_an_answer_to_a_call_stored_long_ago_is_found(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    """The newest stored items are searched first; a call older than them is still found."""
    client = serve().client()
    conv = client.conversations.create()
    call = {"type": "function_call", "call_id": "c_old", "name": "get_weather", "arguments": "{}"}
    client.conversations.items.create(conv.id, items=[call])  # type: ignore[list-item]
    for start in range(0, 1010, 20):
        client.conversations.items.create(
            conv.id,
            items=[{"role": "user", "content": f"n{i}"} for i in range(start, start + 20)],
        )
    upstream.add(reply("Late answer noted."))
    done = client.responses.create(
        model="assistant",
        conversation=conv.id,
        input=[{"type": "function_call_output", "call_id": "c_old", "output": "sunny"}],
    )
    assert done.output_text == "Late answer noted."


@pytest.mark.parametrize("stream", [False, True])
def test_a_missing_conversation_is_a_404_that_writes_nothing(
    serve: Callable[..., Served], upstream: ScriptedServer, store_url: str, stream: bool
) -> None:
    import sqlite3

    client = serve().client()
    for _ in range(3):
        with pytest.raises(openai.NotFoundError) as missing:
            client.responses.create(
                model="assistant", input="x", conversation="conv_nope", stream=stream
            )
        assert missing.value.body["param"] == "conversation"  # type: ignore[index]
        assert "conv_nope" in missing.value.body["message"]  # type: ignore[index]
    # the conversation's existence is checked in the lease's own transaction, which writes
    # no lease row for a session that does not exist (random ids cannot fill the table)
    with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT count(*) FROM threadline_leases").fetchone() == (0,)
    assert upstream.requests == []


def test_a_conversation_on_a_store_without_the_one_job_lease_still_counts_and_404s(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    # the in-memory store uses the default lease_acquire_existing (session_info, then lease)
    upstream.add(reply("One."), reply("Two."))
    client = serve(store="memory://").client()
    conversation = client.conversations.create()
    first = client.responses.create(model="assistant", input="a", conversation=conversation.id)
    second = client.responses.create(model="assistant", input="b", conversation=conversation.id)
    assert [first.output_text, second.output_text] == ["One.", "Two."]
    assert sent_texts(upstream)[-3:] == ["a", "One.", "b"]
    items = client.conversations.items.list(conversation.id, order="asc")
    assert len(items.data) == 4
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="assistant", input="x", conversation="conv_nope")


def test_a_served_turn_is_a_lease_and_read_job_and_two_commits_the_last_ending_the_lease(
    serve: Callable[..., Served],
    upstream: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
    store_url: str,
) -> None:
    from .._engine_jobs import log_engine_jobs

    log = log_engine_jobs(monkeypatch)
    upstream.add(reply("One."), reply("Two."))
    served = serve()
    client = served.client()
    conversation = client.conversations.create()
    for text in ("a", "b"):  # (b would be a 409 had a's lease not been released)
        log.clear()
        client.responses.create(model="assistant", input=text, conversation=conversation.id)
        assert log == [
            # the run's lease (the 404 check and the count come with it) and its start read
            ("False", "acquire_lease_and_read"),
            ("soon", "add"),  # the input, before the upstream is called
            ("True", "add_and_release"),  # the reply, the response record, the lease's end
        ]

    async def holders() -> Any:
        async with open_store(store_url) as store:
            return await store.lease_holders([conversation.id])

    assert run(holders()) == {}  # as the store records it, from another connection


def test_only_the_step_that_ends_a_served_run_ends_its_lease(
    serve: Callable[..., Served], upstream: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .._engine_jobs import log_engine_jobs

    client = serve(agents=[_calculator(upstream)]).client()
    conversation = client.conversations.create()
    log = log_engine_jobs(monkeypatch)
    upstream.add(tool_calls(("add", {"a": 2, "b": 3})), reply("5"), reply("Still 5."))
    answer = client.responses.create(model="calc", input="2+3?", conversation=conversation.id)
    assert answer.output_text == "5"
    assert log == [
        ("False", "acquire_lease_and_read"),
        ("soon", "add"),
        ("True", "add"),  # the call and its output: the run goes on, under its lease
        ("True", "add_and_release"),
    ]
    again = client.responses.create(model="calc", input="And?", conversation=conversation.id)
    assert again.output_text == "Still 5."


def test_a_client_tool_call_keeps_the_lease_to_the_end_of_the_request(
    serve: Callable[..., Served], upstream: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .._engine_jobs import log_engine_jobs

    client = serve().client()
    conversation = client.conversations.create()
    log = log_engine_jobs(monkeypatch)
    upstream.add(tool_calls(("weather", {"city": "Oslo"})), reply("Cold."))
    tool = {"type": "function", "name": "weather", "parameters": {"type": "object"}}
    asked = client.responses.create(
        model="assistant",
        input="Weather?",
        conversation=conversation.id,
        tools=[tool],  # type: ignore[list-item]
    )
    call = asked.output[-1]
    assert call.type == "function_call"
    # the request holds the lease (a client tool may stop the run): the step waiting for
    # the client is stored after the run, under it, then the lease is released
    assert log == [
        ("False", "acquire_lease_existing"),
        ("read", "records_and_window_after_record"),
        ("soon", "add"),  # the input
        ("True", "put_records"),  # the run's pending-run record, as it stops
        ("True", "add"),  # the step waiting for the client, dropping that record
        ("False", "release_lease"),
    ]
    done = client.responses.create(
        model="assistant",
        conversation=conversation.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "-5C"}],  # type: ignore[union-attr]
        tools=[tool],  # type: ignore[list-item]
    )
    assert done.output_text == "Cold."


@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_leased_elsewhere_is_a_409_before_anything_is_sent(
    serve: Callable[..., Served], upstream: ScriptedServer, store_url: str, stream: bool
) -> None:
    import threading

    client = serve().client()
    conversation = client.conversations.create()
    held, done = threading.Event(), threading.Event()

    async def hold() -> None:  # another store object on the file: as another process would
        async with open_store(store_url) as store, store.session(conversation.id).lease():
            held.set()
            await asyncio.to_thread(done.wait)

    holder = threading.Thread(target=lambda: run(hold()))
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(openai.ConflictError) as caught:
            client.responses.create(
                model="assistant", input="x", conversation=conversation.id, stream=stream
            )
        assert caught.value.code == "conversation_busy"
    finally:
        done.set()
        holder.join()
    assert upstream.requests == []
    assert client.conversations.items.list(conversation.id).data == []
