"""Items <-> chat messages, the pure conversion functions behind OpenAIChatCompletionsModel."""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletionMessage

from threadline.errors import UserError
from threadline.items import function_call, function_call_output
from threadline.models._chat_convert import (
    chat_tool_choice,
    items_to_messages,
    output_items,
)
from threadline.models._chat_read import ChatStream


def test_instructions_come_first_and_developer_is_sent_as_system() -> None:
    messages = items_to_messages(
        [
            {"role": "developer", "content": "Use metric units."},
            {"type": "message", "role": "system", "content": "Reply in French."},
            {"role": "user", "content": "Hi"},
        ],
        "You are helpful.",
    )

    assert messages == [
        {"role": "system", "content": "You are helpful."},
        {"role": "system", "content": "Use metric units."},
        {"role": "system", "content": "Reply in French."},
        {"role": "user", "content": "Hi"},
    ]


def test_no_instructions_means_no_system_message() -> None:
    assert items_to_messages([{"role": "user", "content": "Hi"}], None) == [
        {"role": "user", "content": "Hi"}
    ]


def test_user_parts_become_chat_parts() -> None:
    [message] = items_to_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AAAA",
                        "detail": "low",
                    },
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,AA",
                        "filename": "a.pdf",
                    },
                ],
            }
        ],
        None,
    )

    assert message["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
        },
    ]


def test_assistant_refusal_part_becomes_refusal_field() -> None:
    [message] = items_to_messages(
        [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "I can't help with that."}],
            }
        ],
        None,
    )

    assert message == {"role": "assistant", "refusal": "I can't help with that."}


def test_calls_without_preceding_text_open_their_own_assistant_message() -> None:
    messages = items_to_messages(
        [
            {"role": "user", "content": "go"},
            function_call("a", "f", "{}"),
            function_call_output("a", "1"),
            function_call("b", "g", "{}"),
            function_call_output("b", [{"type": "input_text", "text": "2"}]),
        ],
        None,
    )

    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert "content" not in messages[1]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["a"]
    assert [c["id"] for c in messages[3]["tool_calls"]] == ["b"]
    assert messages[4]["content"] == [{"type": "text", "text": "2"}]


def test_user_message_between_calls_closes_the_assistant_message() -> None:
    messages = items_to_messages(
        [
            {"role": "assistant", "content": "thinking"},
            {"role": "user", "content": "also"},
            function_call("a", "f", "{}"),
        ],
        None,
    )

    assert messages[0] == {"role": "assistant", "content": "thinking"}
    assert messages[2]["tool_calls"][0]["id"] == "a"


@pytest.mark.parametrize(
    ("items", "pattern"),
    [
        (
            [{"type": "web_search_call", "id": "ws_1"}],
            r"item 0: chat completions cannot send item type 'web_search_call'",
        ),
        (
            [
                {"role": "user", "content": "x"},
                {"role": "user", "content": [{"type": "input_audio"}]},
            ],
            r"item 1 content part 0: .*'input_audio'",
        ),
        (
            [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}],
            r"item 0 content part 0: .*image_url",
        ),
        (
            [{"type": "function_call", "name": "f", "arguments": "{}"}],
            r"item 0 \(function_call\) needs a string 'call_id'",
        ),
        (
            [function_call_output("a", [{"type": "input_image", "image_url": "x"}])],
            r"item 0 output part 0: .*'input_image'",
        ),
        (
            [{"role": "assistant", "content": [{"type": "output_audio"}]}],
            r"item 0 content part 0: .*'output_audio'",
        ),
        (["not a dict"], r"item 0 must be a dict"),
    ],
)
def test_unsendable_input_names_the_item(items: list, pattern: str) -> None:
    with pytest.raises(UserError, match=pattern):
        items_to_messages(items, None)


def test_reasoning_items_are_skipped() -> None:
    messages = items_to_messages(
        [{"type": "reasoning", "id": "rs_1", "summary": []}, {"role": "user", "content": "hi"}],
        None,
    )

    assert messages == [{"role": "user", "content": "hi"}]


def test_tool_choice_forms() -> None:
    assert chat_tool_choice("auto") == "auto"
    assert chat_tool_choice("required") == "required"
    assert chat_tool_choice("none") == "none"
    assert chat_tool_choice("lookup") == {"type": "function", "function": {"name": "lookup"}}


def test_output_items_with_refusal_and_missing_call_id() -> None:
    message, call = output_items(None, "I won't.", [("", "f", "{}")], message_id="msg_x")

    assert message == {
        "type": "message",
        "role": "assistant",
        "id": "msg_x",
        "status": "completed",
        "content": [{"type": "refusal", "refusal": "I won't."}],
    }
    assert call["call_id"].startswith("call_")
    assert call["call_id"] != "call_"


def test_empty_reply_gives_no_items() -> None:
    assert output_items("", None, []) == []


def test_refusal_from_a_real_sdk_message_object() -> None:
    sdk_message = ChatCompletionMessage(role="assistant", content=None, refusal="Not allowed.")

    [item] = output_items(sdk_message.content, sdk_message.refusal, [])

    assert item["content"] == [{"type": "refusal", "refusal": "Not allowed."}]


def test_stream_state_tolerates_a_name_repeated_in_every_chunk() -> None:
    from openai.types.chat import ChatCompletionChunk

    state = ChatStream(message_id="msg_s")
    for piece, finish_reason in (('{"a"', None), (": 1}", "tool_calls")):
        state.add(
            ChatCompletionChunk.model_validate(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": "t1",
                                        "function": {"name": "f", "arguments": piece},
                                    }
                                ]
                            },
                            "finish_reason": finish_reason,
                        }
                    ],
                }
            )
        )

    [call] = state.response("http://127.0.0.1/v1/chat/completions", None).output
    assert (call["call_id"], call["name"], call["arguments"]) == ("t1", "f", '{"a": 1}')
