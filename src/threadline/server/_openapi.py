"""The OpenAPI document at ``/openapi.json``, and the request validation it describes.

The request body schemas here are the ones the routes validate with (:func:`check_body`), so
the published document and the server cannot disagree about what a valid request is: a body
the schema accepts is never a 400, one it refuses always is. Responses are described as the
routes make them; every operation's other statuses carry OpenAI's error envelope.
"""

from __future__ import annotations

import functools
from typing import Any

from ._errors import ERROR_SCHEMA, bad_request

__all__ = ["check_body", "openapi_document", "request_schemas"]

MAX_ITEMS = 1000  # Limits.max_items (the published bound; a smaller configured one also holds)

_ID = {"type": "string", "minLength": 1}
_NULLABLE_STRING = {"type": ["string", "null"]}
_METADATA = {
    "type": "object",
    "maxProperties": 16,
    "propertyNames": {"maxLength": 64},
    "additionalProperties": {"type": "string", "maxLength": 512},
    "description": "At most 16 pairs; keys up to 64 characters, string values up to 512.",
}
_NULLABLE_METADATA = {"anyOf": [{"type": "null"}, _METADATA]}
_STATUS = {"enum": ["in_progress", "completed", "incomplete"]}

# ---------------------------------------------------------------------- Responses input items

_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {
        "type": {"enum": ["input_text", "output_text", "text"]},
        "text": {"type": "string"},
    },
}
_IMAGE_PART = {
    "type": "object",
    "required": ["type", "image_url"],
    "properties": {
        "type": {"const": "input_image"},
        "image_url": {"type": "string"},
        "detail": {"enum": ["low", "high", "auto"]},
    },
}
_REFUSAL_PART = {
    "type": "object",
    "required": ["type", "refusal"],
    "properties": {"type": {"const": "refusal"}, "refusal": {"type": "string"}},
}
_INPUT_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"enum": ["user", "system", "developer"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"anyOf": [_TEXT_PART, _IMAGE_PART]}},
            ]
        },
        "id": _ID,
        "status": _STATUS,
    },
}
_ASSISTANT_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"anyOf": [_TEXT_PART, _REFUSAL_PART]}},
            ]
        },
        "id": _ID,
        "status": _STATUS,
    },
}
_FUNCTION_CALL = {
    "type": "object",
    "required": ["type", "call_id", "name", "arguments"],
    "properties": {
        "type": {"const": "function_call"},
        "call_id": {"type": "string"},
        "name": {"type": "string"},
        "arguments": {"type": "string"},
        "id": _ID,
        "status": _STATUS,
    },
}
_FUNCTION_CALL_OUTPUT = {
    "type": "object",
    "required": ["type", "call_id", "output"],
    "properties": {
        "type": {"const": "function_call_output"},
        "call_id": {"type": "string"},
        "output": {"type": "string"},
        "id": _ID,
        "status": _STATUS,
    },
}
_INPUT_ITEM = {"anyOf": [_INPUT_MESSAGE, _ASSISTANT_MESSAGE, _FUNCTION_CALL, _FUNCTION_CALL_OUTPUT]}
_ITEMS = {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": _INPUT_ITEM}

_TOOL_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
_RESPONSES_TOOL = {
    "type": "object",
    "required": ["type", "name"],
    "properties": {
        "type": {"const": "function"},
        "name": _TOOL_NAME,
        "description": _NULLABLE_STRING,
        "parameters": {"type": ["object", "null"]},
        "strict": {"type": ["boolean", "null"]},
    },
}

_RESPONSE_CREATE = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "description": "A served agent's name (GET /v1/models)."},
        "input": {"anyOf": [{"type": "string"}, _ITEMS]},
        "instructions": _NULLABLE_STRING,
        "conversation": {
            "anyOf": [
                {"type": "null"},
                _ID,
                {"type": "object", "required": ["id"], "properties": {"id": _ID}},
            ]
        },
        "previous_response_id": {"anyOf": [{"type": "null"}, _ID]},
        "store": {"type": ["boolean", "null"]},
        "stream": {"type": ["boolean", "null"]},
        "metadata": _NULLABLE_METADATA,
        "tools": {"type": "array", "maxItems": 128, "items": _RESPONSES_TOOL},
        "tool_choice": {
            "anyOf": [
                {"enum": ["auto", "none", "required"]},
                {
                    "type": "object",
                    "required": ["type", "name"],
                    "properties": {"type": {"const": "function"}, "name": _TOOL_NAME},
                },
            ]
        },
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "max_output_tokens": {"type": ["integer", "null"], "minimum": 1},
        "parallel_tool_calls": {"type": ["boolean", "null"]},
        "background": {"enum": [False, None]},
        "text": {
            "type": "object",
            "properties": {
                "format": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"const": "text"}},
                }
            },
        },
        "include": {"type": ["array", "null"], "items": {"type": "string"}},
        "reasoning": {"type": ["object", "null"]},
        "truncation": {"enum": ["auto", "disabled", None]},
        "user": {"type": "string"},
        "prompt_cache_key": {"type": "string"},
        "safety_identifier": {"type": "string"},
        "service_tier": _NULLABLE_STRING,
        "top_logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
        "stream_options": {"type": ["object", "null"]},
        "prompt": {"type": "null", "description": "Prompt templates are not supported."},
    },
    "not": {"required": ["conversation", "previous_response_id"]},
    "description": "`conversation` and `previous_response_id` exclude each other.",
}

# ---------------------------------------------------------------------- Chat Completions

_CHAT_TEXT = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
}
_CHAT_IMAGE = {
    "type": "object",
    "required": ["type", "image_url"],
    "properties": {
        "type": {"const": "image_url"},
        "image_url": {
            "type": "object",
            "required": ["url"],
            "properties": {"url": {"type": "string"}, "detail": {"enum": ["low", "high", "auto"]}},
        },
    },
}
_TEXT_CONTENT = {"anyOf": [{"type": "string"}, {"type": "array", "items": _CHAT_TEXT}]}
_CHAT_MESSAGE = {
    "anyOf": [
        {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"enum": ["system", "developer"]},
                "content": _TEXT_CONTENT,
                "name": {"type": "string"},
            },
        },
        {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"const": "user"},
                "content": {
                    "anyOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"anyOf": [_CHAT_TEXT, _CHAT_IMAGE]}},
                    ]
                },
                "name": {"type": "string"},
            },
        },
        {
            "type": "object",
            "required": ["role"],
            "properties": {
                "role": {"const": "assistant"},
                "content": {"anyOf": [{"type": "null"}, _TEXT_CONTENT]},
                "refusal": _NULLABLE_STRING,
                "name": {"type": "string"},
                "tool_calls": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "type", "function"],
                        "properties": {
                            "id": {"type": "string"},
                            "type": {"const": "function"},
                            "function": {
                                "type": "object",
                                "required": ["name", "arguments"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "arguments": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
        {
            "type": "object",
            "required": ["role", "content", "tool_call_id"],
            "properties": {
                "role": {"const": "tool"},
                "content": _TEXT_CONTENT,
                "tool_call_id": {"type": "string"},
            },
        },
    ]
}
_CHAT_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": _TOOL_NAME,
                "description": _NULLABLE_STRING,
                "parameters": {"type": ["object", "null"]},
                "strict": {"type": ["boolean", "null"]},
            },
        },
    },
}
_CHAT_CREATE = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "description": "A served agent's name (GET /v1/models)."},
        "messages": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": _CHAT_MESSAGE},
        "stream": {"type": ["boolean", "null"]},
        "stream_options": {
            "type": ["object", "null"],
            "properties": {"include_usage": {"type": "boolean"}},
        },
        "tools": {"type": "array", "maxItems": 128, "items": _CHAT_TOOL},
        "tool_choice": {
            "anyOf": [
                {"enum": ["auto", "none", "required"]},
                {
                    "type": "object",
                    "required": ["type", "function"],
                    "properties": {
                        "type": {"const": "function"},
                        "function": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": _TOOL_NAME},
                        },
                    },
                },
            ]
        },
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "max_tokens": {"type": ["integer", "null"], "minimum": 1},
        "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
        "n": {"enum": [1, None]},
        "stop": {
            "anyOf": [
                {"type": "null"},
                {"type": "string"},
                {"type": "array", "maxItems": 4, "items": {"type": "string"}},
            ]
        },
        "seed": {"type": ["integer", "null"]},
        "frequency_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2},
        "presence_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2},
        "parallel_tool_calls": {"type": ["boolean", "null"]},
        "response_format": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"const": "text"}},
        },
        "user": {"type": "string"},
        "store": {"type": ["boolean", "null"]},
        "metadata": _NULLABLE_METADATA,
        "conversation": {
            "anyOf": [
                {"type": "null"},
                _ID,
                {"type": "object", "required": ["id"], "properties": {"id": _ID}},
            ],
            "description": "threadline: the conversation to continue (the openai clients send "
            "it as extra_body); the header X-Threadline-Conversation-Id does the same.",
        },
        "on_divergence": {
            "enum": ["reject", "fork"],
            "description": "threadline: what a transcript diverging from the stored one gets "
            "(a 409, or a fork); the header X-Threadline-On-Divergence does the same.",
        },
    },
}

# ---------------------------------------------------------------------- other bodies

_CONVERSATION_CREATE = {
    "type": "object",
    "properties": {
        "items": {
            "anyOf": [
                {"type": "null"},
                {"type": "array", "maxItems": MAX_ITEMS, "items": _INPUT_ITEM},
            ]
        },
        "metadata": _NULLABLE_METADATA,
    },
}
_CONVERSATION_UPDATE = {
    "type": "object",
    "required": ["metadata"],
    "properties": {"metadata": _NULLABLE_METADATA},
}
_ITEMS_CREATE = {"type": "object", "required": ["items"], "properties": {"items": _ITEMS}}
_FORK = {
    "type": "object",
    "properties": {
        "at_turn": {
            "type": ["integer", "null"],
            "description": "Keep the first N turns (negative: all but the last -N); "
            "default: everything.",
        },
        "metadata": _NULLABLE_METADATA,
    },
}
_COMPACT = {
    "type": "object",
    "properties": {
        "model": {**_NULLABLE_STRING, "description": "The served agent whose model summarises."},
        "keep_tokens": {"type": ["integer", "null"], "minimum": 1},
    },
}
_EMPTY = {"type": "object"}


def request_schemas() -> dict[str, dict[str, Any]]:
    """The request body schemas by name."""
    return {
        "ResponseCreate": _RESPONSE_CREATE,
        "ChatCompletionCreate": _CHAT_CREATE,
        "ConversationCreate": _CONVERSATION_CREATE,
        "ConversationUpdate": _CONVERSATION_UPDATE,
        "ItemsCreate": _ITEMS_CREATE,
        "Fork": _FORK,
        "Compact": _COMPACT,
        "Empty": _EMPTY,
    }


@functools.cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = request_schemas()[name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_body(name: str, body: dict[str, Any]) -> None:
    """A 400 naming the first field of ``body`` that the schema ``name`` refuses."""
    error = next(iter(_validator(name).iter_errors(body)), None)
    if error is None:
        return
    best = _best(error)
    where = "".join(
        f"[{part}]" if isinstance(part, int) else (f".{part}" if index else str(part))
        for index, part in enumerate(best.absolute_path)
    )
    if best.validator == "not" and not best.absolute_path:
        raise bad_request(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    if best.validator == "required" and not where:
        missing = str(best.message).split("'")[1] if "'" in best.message else best.message
        raise bad_request(f"Missing required parameter: '{missing}'.", param=missing)
    raise bad_request(f"Invalid value for '{where or 'body'}': {_say(best)}", param=where or None)


def _best(error: Any) -> Any:
    """The error that says what is wrong: inside an ``anyOf``/``oneOf``, the deepest error of a
    branch whose type the value has (a metadata object with 17 keys is "too many properties",
    not "is not of type 'null'"); the alternatives error itself when no branch fits the type."""
    while error.context:
        fitting = [
            branch
            for branch in error.context
            if not (branch.validator == "type" and not branch.relative_path)
        ]
        if not fitting:
            break
        error = max(fitting, key=lambda branch: len(branch.absolute_path))
    return error


_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _say(error: Any) -> str:
    """A short message for ``error``, without echoing a large value back."""
    limit, value = error.validator_value, error.instance
    size = len(value) if isinstance(value, (str, list, dict)) else None
    match error.validator:
        case "maxProperties":
            return f"expected an object with at most {limit} properties, got {size}."
        case "maxLength" if "propertyNames" in error.absolute_schema_path:
            shown = repr(value[:40]) + ("…" if len(value) > 40 else "")
            return f"key {shown} too long: expected at most {limit} characters, got {size}."
        case "maxLength":
            return f"string too long: expected at most {limit} characters, got {size}."
        case "minLength":
            return f"string too short: expected at least {limit} characters, got {size}."
        case "maxItems":
            return f"array too long: expected at most {limit} items, got {size}."
        case "minItems":
            noun = "item" if limit == 1 else "items"
            return f"array too short: expected at least {limit} {noun}, got {size}."
        case "type":
            return f"expected {_type_words(limit)}, got {_json_type(value)}."
        case "anyOf" | "oneOf" if all(
            branch.validator == "type" and not branch.relative_path for branch in error.context
        ):
            return f"expected {_type_words(_branch_types(limit))}, got {_json_type(value)}."
    message = str(error.message)
    return message if len(message) < 300 else message[:300] + "…"


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _branch_types(branches: Any) -> list[str]:
    found: list[str] = []
    for branch in branches if isinstance(branches, list) else []:
        kind = branch.get("type") if isinstance(branch, dict) else None
        for name in kind if isinstance(kind, list) else [kind]:
            if isinstance(name, str) and name not in found:
                found.append(name)
    return found


def _type_words(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types or [])
    words = {
        "object": "an object",
        "array": "an array",
        "string": "a string",
        "boolean": "a boolean",
        "integer": "an integer",
        "number": "a number",
        "null": "null",
    }
    spelled = [words.get(str(name), str(name)) for name in names]
    if not spelled:
        return "a different value"
    return spelled[0] if len(spelled) == 1 else ", ".join(spelled[:-1]) + " or " + spelled[-1]


# ---------------------------------------------------------------------- the document

_ITEM = {
    "type": "object",
    "required": ["id", "type"],
    "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
    "description": "A conversation item (message, function_call, function_call_output, …).",
}
_ITEM_LIST = {
    "type": "object",
    "required": ["object", "data", "first_id", "last_id", "has_more"],
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": _ITEM},
        "first_id": _NULLABLE_STRING,
        "last_id": _NULLABLE_STRING,
        "has_more": {"type": "boolean"},
    },
}
_CONVERSATION = {
    "type": "object",
    "required": ["id", "object", "created_at", "metadata"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "conversation"},
        "created_at": {"type": "integer"},
        "metadata": {"type": "object"},
    },
}
_CONVERSATION_DELETED = {
    "type": "object",
    "required": ["id", "object", "deleted"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "conversation.deleted"},
        "deleted": {"type": "boolean"},
    },
}
_USAGE = {
    "type": "object",
    "required": ["input_tokens", "output_tokens", "total_tokens"],
    "properties": {
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
}
_RESPONSE = {
    "type": "object",
    "required": ["id", "object", "created_at", "status", "model", "output", "tools"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response"},
        "created_at": {"type": "integer"},
        "status": {"enum": ["completed", "failed", "in_progress", "incomplete"]},
        "model": {"type": "string"},
        "output": {"type": "array", "items": _ITEM},
        "usage": {"anyOf": [{"type": "null"}, _USAGE]},
        "error": {"type": ["object", "null"]},
        "conversation": {
            "anyOf": [
                {"type": "null"},
                {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
            ]
        },
        "previous_response_id": _NULLABLE_STRING,
        "instructions": _NULLABLE_STRING,
        "metadata": {"type": "object"},
        "tools": {"type": "array"},
    },
}
_RESPONSE_DELETED = {
    "type": "object",
    "required": ["id", "object", "deleted"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response"},
        "deleted": {"const": True},
    },
}
_CHAT_COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason"],
                "properties": {
                    "index": {"type": "integer"},
                    "message": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {
                            "role": {"const": "assistant"},
                            "content": _NULLABLE_STRING,
                            "tool_calls": {"type": "array"},
                        },
                    },
                    "finish_reason": {"enum": ["stop", "tool_calls", "length"]},
                },
            },
        },
        "usage": {
            "type": "object",
            "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
            "properties": {
                "prompt_tokens": {"type": "integer"},
                "completion_tokens": {"type": "integer"},
                "total_tokens": {"type": "integer"},
            },
        },
    },
}
_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}
_MODEL_LIST = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _MODEL}},
}
_CONVERSATION_ENTRY = {
    "type": "object",
    "required": ["id", "object", "created_at", "updated_at", "item_count", "metadata"],
    "properties": {
        **_CONVERSATION["properties"],  # type: ignore[dict-item]
        "updated_at": {"type": "integer"},
        "item_count": {"type": "integer"},
        "title": _NULLABLE_STRING,
    },
}
_CONVERSATION_PAGE = {
    "type": "object",
    "required": ["object", "data", "has_more", "next_cursor"],
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": _CONVERSATION_ENTRY},
        "has_more": {"type": "boolean"},
        "next_cursor": _NULLABLE_STRING,
    },
}
_SEARCH = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["conversation_id", "position", "snippet", "item"],
                "properties": {
                    "conversation_id": {"type": "string"},
                    "position": {"type": "integer"},
                    "snippet": {"type": "string"},
                    "item": _ITEM,
                },
            },
        },
    },
}
_PLAIN_ITEMS = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ITEM}},
}
_WINDOW = {
    "type": "object",
    "required": ["object", "data", "max_tokens"],
    "properties": {
        "object": {"const": "list"},
        "data": {"type": "array", "items": _ITEM},
        "max_tokens": {"type": ["integer", "null"]},
    },
}
_COMPACTION = {
    "type": "object",
    "required": ["object", "status", "reason", "covered", "summary"],
    "properties": {
        "object": {"const": "threadline.compaction"},
        "status": {"enum": ["compacted", "skipped", "failed", "rejected"]},
        "reason": {"type": "string"},
        "covered": {"type": "array", "items": {"type": "integer"}},
        "summary": _NULLABLE_STRING,
    },
}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
}
_ORDER = {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}}
_AFTER = {"name": "after", "in": "query", "schema": {"type": "string"}}
_WAIT = {
    "name": "X-Threadline-Lease-Wait",
    "in": "header",
    "description": "threadline: seconds to wait for a busy conversation (default 0: a 409 "
    "conversation_busy at once).",
    "schema": {"type": "number", "minimum": 0},
}
_CHAT_HEADERS = [
    {
        "name": "X-Threadline-Conversation-Id",
        "in": "header",
        "description": "threadline: the conversation to continue.",
        "schema": {"type": "string", "minLength": 1},
    },
    {
        "name": "X-Threadline-On-Divergence",
        "in": "header",
        "description": "threadline: 'fork' to continue a diverging transcript in a fork.",
        "schema": {"enum": ["reject", "fork"]},
    },
]


_SSE_EVENT: dict[str, Any] = {
    "description": (
        "One server-sent event: `data` is one JSON event (Responses: its `type` is also the "
        "SSE `event` name) or, for chat completions, one chunk and finally `[DONE]`."
    ),
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}


def _op(
    operation_id: str,
    summary: str,
    ok: dict[str, Any] | None,
    *,
    links: dict[str, dict[str, str]] | None = None,
    body: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    stream: bool = False,
    extension: bool = False,
) -> dict[str, Any]:
    content: dict[str, Any] = {} if ok is None else {"application/json": {"schema": ok}}
    if stream:
        content["text/event-stream"] = {"schema": _SSE_EVENT}
    success: dict[str, Any] = {"description": "OK", "content": content}
    if links:
        success["links"] = {
            target: {"operationId": target, "parameters": parameters}
            for target, parameters in links.items()
        }
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {
            "200": success,
            "default": {
                "description": "OpenAI's error envelope (400, 401, 404, 405, 409, 413, 429, 5xx)",
                "content": {"application/json": {"schema": ERROR_SCHEMA}},
            },
        },
    }
    if extension:
        operation["tags"] = ["threadline extensions"]
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": body not in ("Empty", "Fork", "Compact", "ConversationCreate"),
            "content": {"application/json": {"schema": request_schemas()[body]}},
        }
    return operation


def openapi_document(*, memory: bool, auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes this app serves (``memory=False``: no
    conversation or extension routes)."""
    conv = _path_param("conversation_id")
    response_id = _path_param("response_id")
    paths: dict[str, Any] = {
        "/v1/models": {"get": _op("listModels", "List the served agents", _MODEL_LIST)},
        "/v1/models/{model}": {
            "get": _op(
                "retrieveModel",
                "Retrieve a served agent",
                _MODEL,
                parameters=[_path_param("model")],
            )
        },
        "/v1/responses": {
            "post": _op(
                "createResponse",
                "Create a response",
                _RESPONSE,
                body="ResponseCreate",
                parameters=[_WAIT],
                stream=True,
                links={
                    name: {"response_id": "$response.body#/id"}
                    for name in ("retrieveResponse", "deleteResponse", "listInputItems")
                },
            )
        },
        "/v1/responses/{response_id}": {
            "get": _op(
                "retrieveResponse", "Retrieve a response", _RESPONSE, parameters=[response_id]
            ),
            "delete": _op(
                "deleteResponse", "Delete a response", _RESPONSE_DELETED, parameters=[response_id]
            ),
        },
        "/v1/responses/{response_id}/input_items": {
            "get": _op(
                "listInputItems",
                "List a response's input items",
                _ITEM_LIST,
                parameters=[response_id, _LIMIT, _ORDER, _AFTER],
            )
        },
        "/v1/chat/completions": {
            "post": _op(
                "createChatCompletion",
                "Create a chat completion",
                _CHAT_COMPLETION,
                body="ChatCompletionCreate",
                parameters=[_WAIT, *_CHAT_HEADERS],
                stream=True,
            )
        },
    }
    if memory:
        from ._inspect_openapi import openapi_paths

        paths.update(openapi_paths())
    if memory:
        base = "/v1/threadline/conversations/{conversation_id}"
        paths.update(
            {
                "/v1/conversations": {
                    "post": _op(
                        "createConversation",
                        "Create a conversation",
                        _CONVERSATION,
                        body="ConversationCreate",
                        links={
                            name: {"conversation_id": "$response.body#/id"}
                            for name in (
                                "retrieveConversation",
                                "updateConversation",
                                "deleteConversation",
                                "listItems",
                                "createItems",
                                "forkConversation",
                                "undoTurn",
                                "compactConversation",
                                "conversationWindow",
                            )
                        },
                    )
                },
                "/v1/conversations/{conversation_id}": {
                    "get": _op(
                        "retrieveConversation",
                        "Retrieve a conversation",
                        _CONVERSATION,
                        parameters=[conv],
                    ),
                    "post": _op(
                        "updateConversation",
                        "Update a conversation's metadata",
                        _CONVERSATION,
                        body="ConversationUpdate",
                        parameters=[conv],
                    ),
                    "delete": _op(
                        "deleteConversation",
                        "Delete a conversation",
                        _CONVERSATION_DELETED,
                        parameters=[conv, _WAIT],
                    ),
                },
                "/v1/conversations/{conversation_id}/items": {
                    "get": _op(
                        "listItems",
                        "List a conversation's items",
                        _ITEM_LIST,
                        parameters=[conv, _LIMIT, _ORDER, _AFTER],
                    ),
                    "post": _op(
                        "createItems",
                        "Add items to a conversation",
                        _ITEM_LIST,
                        links={
                            name: {
                                "conversation_id": "$request.path.conversation_id",
                                "item_id": "$response.body#/first_id",
                            }
                            for name in ("retrieveItem", "deleteItem")
                        },
                        body="ItemsCreate",
                        parameters=[conv, _WAIT],
                    ),
                },
                "/v1/conversations/{conversation_id}/items/{item_id}": {
                    "get": _op(
                        "retrieveItem",
                        "Retrieve an item",
                        _ITEM,
                        parameters=[conv, _path_param("item_id")],
                    ),
                    "delete": _op(
                        "deleteItem",
                        "Delete an item",
                        _CONVERSATION,
                        parameters=[conv, _path_param("item_id"), _WAIT],
                    ),
                },
                "/v1/threadline/conversations": {
                    "get": _op(
                        "listConversations",
                        "List conversations (threadline); filter with metadata.KEY=VALUE",
                        _CONVERSATION_PAGE,
                        parameters=[_LIMIT, _AFTER],
                        extension=True,
                    )
                },
                "/v1/threadline/search": {
                    "get": _op(
                        "searchItems",
                        "Search items (threadline)",
                        _SEARCH,
                        parameters=[
                            {
                                "name": "q",
                                "in": "query",
                                "required": True,
                                "schema": {"type": "string", "minLength": 1},
                            },
                            _LIMIT,
                            {"name": "conversation", "in": "query", "schema": {"type": "string"}},
                        ],
                        extension=True,
                    )
                },
                base + "/fork": {
                    "post": _op(
                        "forkConversation",
                        "Fork a conversation (threadline)",
                        _CONVERSATION,
                        body="Fork",
                        parameters=[conv],
                        extension=True,
                    )
                },
                base + "/undo": {
                    "post": _op(
                        "undoTurn",
                        "Remove the last turn (threadline)",
                        _PLAIN_ITEMS,
                        parameters=[conv, _WAIT],
                        extension=True,
                    )
                },
                base + "/compact": {
                    "post": _op(
                        "compactConversation",
                        "Summarise older turns now (threadline)",
                        _COMPACTION,
                        body="Compact",
                        parameters=[conv],
                        extension=True,
                    )
                },
                base + "/window": {
                    "get": _op(
                        "conversationWindow",
                        "The items the next request would send (threadline)",
                        _WINDOW,
                        parameters=[
                            conv,
                            {"name": "model", "in": "query", "schema": {"type": "string"}},
                        ],
                        extension=True,
                    )
                },
            }
        )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "threadline serve",
            "version": "1",
            "description": "OpenAI's Conversations, Responses and Chat Completions routes over a "
            "threadline store, and threadline's own routes under /v1/threadline/.",
        },
        "paths": paths,
    }
    if auth:
        document["components"] = {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
        document["security"] = [{"bearer": []}]
    return document
