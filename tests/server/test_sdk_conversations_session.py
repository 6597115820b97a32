"""The OpenAI Agents SDK's ``OpenAIConversationsSession`` with its client pointed at the server.

The SDK keeps a session's history in OpenAI's Conversations API; here that API is
``threadline serve`` (a subprocess over a SQLite file), so the same history is also a threadline
session in that file: the library reads what the SDK wrote and the other way round.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import agents  # openai-agents, a dev (test-only) dependency
import pytest

from tests.server.clients_harness import Served, requests_for, serve_scripted, upstream_messages
from threadline import open_store
from threadline.testing.server import reply, tool_calls


@pytest.fixture(autouse=True)
def sdk_tracing_off() -> Iterator[None]:
    agents.set_tracing_disabled(True)
    yield


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_scripted(tmp_path_factory.mktemp("sdk-session")) as running:
        yield running


class Clients:
    """Makes the AsyncOpenAI clients a test uses, and closes them all afterwards."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.made: list[Any] = []

    def client(self, base_url: str | None = None) -> Any:
        from openai import AsyncOpenAI

        made = AsyncOpenAI(
            api_key="sdk-test-key", base_url=base_url or self.served.base_url, max_retries=0
        )
        self.made.append(made)
        return made

    def session(self, conversation_id: str | None = None) -> Any:
        """An ``OpenAIConversationsSession`` whose client speaks to the server."""
        return agents.OpenAIConversationsSession(
            conversation_id=conversation_id, openai_client=self.client()
        )


@pytest.fixture
async def clients(served: Served) -> AsyncIterator[Clients]:
    made = Clients(served)
    yield made
    for client in made.made:
        await client.close()


def text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content or [])


def said(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role or type, text) of each item, the way both libraries' items can be compared."""
    return [(str(item.get("role") or item.get("type")), text_of(item)) for item in items]


def assistant(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


async def test_session_contract_through_the_server(clients: Clients) -> None:
    from openai import NotFoundError

    session = clients.session()
    assert await session.get_items() == []  # makes the conversation on the server
    conversation_id = session.session_id
    await session.add_items(
        [{"role": "user", "content": "one"}, assistant("two"), {"role": "user", "content": "three"}]
    )
    items = await session.get_items()
    assert said(items) == [("user", "one"), ("assistant", "two"), ("user", "three")]
    assert all(isinstance(item.get("id"), str) for item in items)
    assert said(await session.get_items(limit=2)) == [("assistant", "two"), ("user", "three")]
    popped = await session.pop_item()
    assert popped is not None and said([popped]) == [("user", "three")]
    assert said(await session.get_items()) == [("user", "one"), ("assistant", "two")]

    # more than one page (the SDK writes 20 items a request and reads 20 a page)
    many = [{"role": "user", "content": f"n{i}"} for i in range(45)]
    await session.add_items(many)
    everything = await session.get_items()
    assert [text for _, text in said(everything)] == ["one", "two"] + [f"n{i}" for i in range(45)]
    assert [text for _, text in said(await session.get_items(limit=23))] == [
        f"n{i}" for i in range(22, 45)
    ]

    # function calls and their outputs keep their fields
    await session.add_items(
        [
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city": "Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ]
    )
    call, output = (await session.get_items(limit=2))[-2:]
    assert (call["type"], call["call_id"], call["name"], call["arguments"]) == (
        "function_call",
        "call_1",
        "weather",
        '{"city": "Paris"}',
    )
    assert (output["type"], output["call_id"], output["output"]) == (
        "function_call_output",
        "call_1",
        "sunny",
    )

    await session.clear_session()  # the SDK deletes the conversation
    with pytest.raises(NotFoundError):
        await clients.client().conversations.retrieve(conversation_id)
    assert await session.pop_item() is None  # a fresh, empty conversation
    assert session.session_id != conversation_id


async def test_sdk_runner_remembers_through_the_server(served: Served, clients: Clients) -> None:
    upstream = served.upstream
    # The Responses model: with 0.24's chat-completions model the SDK strips the id of the
    # assistant messages it read from the Conversations API and its chat converter then refuses
    # them (an SDK limitation; the same happens against OpenAI's own API).
    model = agents.OpenAIResponsesModel(model="m", openai_client=clients.client(upstream.base_url))

    @agents.function_tool
    def weather(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    agent = agents.Agent(name="Assistant", instructions="Be brief.", model=model, tools=[weather])
    session = clients.session()
    turn1 = "What city is the Golden Gate Bridge in? [sdk-turn-1]"
    turn2 = "What state is it in, and the weather? [sdk-turn-2]"
    first = await agents.Runner.run(agent, turn1, session=session)
    assert first.final_output == f"echo: {turn1}"
    upstream.add(tool_calls(("weather", {"city": "San Francisco"})), reply("California, sunny."))
    second = await agents.Runner.run(agent, turn2, session=session)
    assert second.final_output == "California, sunny."

    (sent,) = requests_for(upstream, "[sdk-turn-2]")[:1]
    history = [(m["role"], m["text"]) for m in upstream_messages(sent) if m["role"] != "system"]
    assert history == [("user", turn1), ("assistant", f"echo: {turn1}"), ("user", turn2)]
    stored = await session.get_items()
    assert [item.get("role") or item.get("type") for item in stored] == [
        "user",
        "assistant",
        "user",
        "function_call",
        "function_call_output",
        "assistant",
    ]
    assert stored[4]["output"] == "sunny in San Francisco"
    assert stored[3]["call_id"] == stored[4]["call_id"]


async def test_library_and_sdk_share_one_conversation(served: Served, clients: Clients) -> None:
    store = open_store(served.store_url)
    try:
        # written through the server by the SDK, read by the library from the file
        sdk = clients.session()
        await sdk.add_items([{"role": "user", "content": "from the sdk"}, assistant("noted")])
        library = store.session(sdk.session_id)
        assert said(await library.get_items()) == [("user", "from the sdk"), ("assistant", "noted")]

        # written by the library, read by the SDK through the server
        await library.add_items([{"role": "user", "content": "from the library"}])
        assert said(await sdk.get_items()) == [
            ("user", "from the sdk"),
            ("assistant", "noted"),
            ("user", "from the library"),
        ]
        popped = await sdk.pop_item()
        assert popped is not None and text_of(popped) == "from the library"
        assert said(await library.get_items()) == [("user", "from the sdk"), ("assistant", "noted")]

        # a session only the library ever wrote is a conversation the SDK can open by its id
        own = store.session("made-by-the-library")
        await own.add_items([{"role": "user", "content": "hello"}, assistant("hi")])
        opened = clients.session("made-by-the-library")
        assert said(await opened.get_items()) == [("user", "hello"), ("assistant", "hi")]
    finally:
        await store.aclose()
