"""Items the OpenAI Agents SDK stores, on every backend, under a run (issue 9, difference 6).

A session keeps them as given; a run reads them back and sends the model what it can read,
converted where the Responses format has a spelling for it and left out (logged) otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from openai import AsyncOpenAI

from threadline import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner
from threadline.errors import InvalidItemError, UserError
from threadline.items import assistant_message, user_message
from threadline.testing import ScriptedServer, reply

STORED: list[dict[str, Any]] = [
    user_message("earlier"),
    {"type": "function_call", "call_id": "call_a", "name": "lookup"},  # no arguments
    {"type": "function_call_output", "call_id": "call_a", "output": None},
    {"role": "assistant", "content": None},
    {"app_metadata": {"source": "crm"}},
    {"type": "sdk_future_item", "x": 1},
    {"type": "function_call", "call_id": "call_b", "name": "lookup", "arguments": "{}"},
    {"role": "tool", "tool_call_id": "call_b", "content": "42"},
    assistant_message("done"),
]


def _model(server: ScriptedServer, api: str) -> Any:
    client = AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
    if api == "chat":
        return OpenAIChatCompletionsModel(model="m", openai_client=client)
    return OpenAIResponsesModel(model="m", openai_client=client)


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_history_of_sdk_items_runs_on_every_backend(
    store: Any, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = store.session("sdk-history")
    await session.add_items(STORED)
    assert await session.get_items() == STORED
    caplog.set_level(logging.DEBUG, logger="threadline.models")
    with ScriptedServer() as server:
        server.add(reply("fine"))
        result = await Runner.run(
            Agent(name="A", model=_model(server, api)), "next", session=session
        )
        body = server.requests[0].body
    assert result.final_output == "fine"
    if api == "chat":
        assert body["messages"] == [
            {"role": "user", "content": "earlier"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": ""},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_b", "content": "42"},
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "next"},
        ]
    else:
        assert body["input"] == [
            user_message("earlier"),
            {"type": "function_call", "call_id": "call_a", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": ""},
            STORED[6],
            {"type": "function_call_output", "call_id": "call_b", "output": "42"},
            assistant_message("done"),
            user_message("next"),
        ]
    skipped = [r.getMessage() for r in caplog.records if "is not sent to the model" in r.message]
    assert len(skipped) == 3 and "item 3 (assistant)" in skipped[0]
    assert "item 5 (sdk_future_item)" in skipped[2]
    # the session keeps every item as given, then the run's input and answer
    stored = await session.get_items()
    assert stored[: len(STORED)] == STORED
    assert stored[len(STORED) :][0] == user_message("next")


async def test_an_unserialisable_batch_is_a_type_error_and_writes_nothing(store: Any) -> None:
    session = store.session("refused")
    with pytest.raises(InvalidItemError, match="item 1 is not JSON-serialisable") as caught:
        await session.add_items([user_message("a"), {"role": "user", "content": {1, 2}}])
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, UserError)
    with pytest.raises(InvalidItemError, match="item 0 a function_call_output item needs"):
        await session.add_items([{"type": "function_call_output", "output": "orphan"}])
    assert await session.get_items() == []


async def test_a_run_input_the_model_cannot_read_is_refused() -> None:
    """Stored, such an item is kept; as a run's input it would never reach the model."""
    agent = Agent(name="A", model="unused")
    with pytest.raises(InvalidItemError, match="input item 0 has neither a 'type' nor a 'role'"):
        await Runner.run(agent, [{"app_metadata": 1}])


async def test_a_file_the_sdk_wrote_with_such_items_opens_with_them(tmp_path: Any) -> None:
    """The real SDK stores these items; the adopted history holds them unchanged."""
    from agents import SQLiteSession as SdkSession

    from threadline.sessions import SQLiteSession

    path = tmp_path / "sdk.db"
    sdk = SdkSession("user_1", str(path))
    await sdk.add_items(STORED)
    sdk.close()
    session = SQLiteSession("user_1", path)
    try:
        assert await session.get_items() == STORED
    finally:
        session.close()


def test_items_no_model_reads_are_classified_other() -> None:
    from threadline.sessions.codec import (
        KIND_CALL,
        KIND_OTHER,
        KIND_OUTPUT,
        KIND_USER,
        encode_items,
    )

    kinds = [row.kind for row in encode_items(STORED)]
    assert kinds == [
        KIND_USER,
        KIND_CALL,
        KIND_OUTPUT,
        KIND_OTHER,  # content None
        KIND_OTHER,  # metadata
        KIND_OTHER,  # unknown type
        KIND_CALL,
        KIND_OTHER,  # chat-style tool result
        KIND_OTHER,  # assistant message
    ]


async def test_windows_keep_them_and_still_start_at_a_user_turn(store: Any) -> None:
    session = store.session("window")
    later = [user_message("second"), {"role": "assistant", "content": None}]
    await session.add_items([*STORED, *later])
    assert await session.get_window(max_items=7) == later  # no user turn among the last 7
    assert await session.get_window(max_items=len(STORED) + 2) == [*STORED, *later]
