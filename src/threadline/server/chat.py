"""``POST /v1/chat/completions``: stateless, or on a named conversation.

Without a conversation the request's messages are the whole history and nothing is stored.
With one (``"conversation": ID`` in the body, which the openai clients send as
``extra_body``, or the header ``X-Threadline-Conversation-Id``) the server compares the
messages with the stored history as a chat client sees it (its leading system messages
aside, which are the request's instructions; the steps of the agent's own tools hidden):

* the messages continue the stored transcript: only the new tail is stored and answered;
* they diverge from it (an edited message, a regenerated reply, a transcript the
  conversation has moved past): ``409 conversation_diverged``, never an overwrite, unless
  the request asks for a fork (header ``X-Threadline-On-Divergence: fork`` or
  ``"on_divergence": "fork"``): the conversation is forked where the transcripts part, the
  tail goes to the fork, and the answer names it in ``X-Threadline-Conversation-Id``.

Streaming sends OpenAI's ``chat.completion.chunk`` events and ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..agent import Agent
from ..items import Item, message_text
from ..models.settings import ModelSettings
from ..run import RunConfig
from ..run.events import RawResponsesStreamEvent, RunItemStreamEvent, StreamEvent
from ..sessions.lease import NoSuchSession
from ._agents import client_tools
from ._context import (
    ServerContext,
    ServerSession,
    api_route,
    context_of,
    conversation_session_id,
    lease_wait,
    route,
    tenant_of,
    writer,
)
from ._errors import ApiError, bad_request, not_found
from ._ids import new_conversation_id, stamp_id
from ._limits import read_json
from ._openapi import check_body
from ._turn import Turn, TurnOutcome, run_turn

__all__ = ["CONVERSATION_HEADER", "DIVERGENCE_HEADER", "routes", "transcript"]

CONVERSATION_HEADER = "x-threadline-conversation-id"
"""The request header naming the conversation (and the answer's, after a fork)."""

DIVERGENCE_HEADER = "x-threadline-on-divergence"
"""``fork``: fork a conversation whose stored transcript the messages diverge from."""

_SEPARATOR = "\n\n"
"""Between the texts of two assistant messages of one answer."""


# ---------------------------------------------------------------------- messages → items


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _user_content(content: object, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"'{where}.content' must be a string or an array of parts", where)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise bad_request(f"'{where}.content[{index}]' must be an object", where)
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "input_text", "text": part["text"]})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            url = part["image_url"].get("url")
            if not isinstance(url, str):
                raise bad_request(
                    f"'{where}.content[{index}].image_url.url' must be a string", where
                )
            shaped: dict[str, Any] = {"type": "input_image", "image_url": url}
            detail = part["image_url"].get("detail")
            shaped["detail"] = detail if detail in ("low", "high", "auto") else "auto"
            parts.append(shaped)
        else:
            raise bad_request(
                f"'{where}.content[{index}]': only text and image_url parts are supported", where
            )
    return parts


def messages_to_items(messages: object, max_items: int) -> tuple[str | None, list[Item]]:
    """The request's instructions (its leading system and developer messages) and the rest
    of its messages as stored items, ids stamped."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    if len(messages) > max_items:
        raise bad_request(
            f"'messages' holds {len(messages)} messages, more than the {max_items} this server "
            "accepts in one request",
            param="messages",
        )
    instructions: list[str] = []
    items: list[Item] = []
    leading = True
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"'{where}' must be an object", param=where)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            if not isinstance(content, (str, list)):
                raise bad_request(f"'{where}.content' must be a string or parts", param=where)
            if leading:
                instructions.append(_text_of(content))
            else:
                items.append(stamp_id({"role": role, "content": _text_of(content)}))
            continue
        leading = False
        if role == "user":
            items.append(stamp_id({"role": "user", "content": _user_content(content, where)}))
        elif role == "assistant":
            if content is not None and not isinstance(content, (str, list)):
                raise bad_request(f"'{where}.content' must be a string, parts or null", where)
            text = _text_of(content)
            if text:
                items.append(
                    stamp_id(
                        {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": text, "annotations": []}],
                            "status": "completed",
                        }
                    )
                )
            calls = message.get("tool_calls") or []
            if not isinstance(calls, list):
                raise bad_request(f"'{where}.tool_calls' must be an array", param=where)
            for number, call in enumerate(calls):
                function = call.get("function") if isinstance(call, dict) else None
                if (
                    not isinstance(call, dict)
                    or not isinstance(call.get("id"), str)
                    or not isinstance(function, dict)
                    or not isinstance(function.get("name"), str)
                ):
                    raise bad_request(
                        f"'{where}.tool_calls[{number}]' must have an id and a function name",
                        param=where,
                    )
                arguments = function.get("arguments")
                items.append(
                    stamp_id(
                        {
                            "type": "function_call",
                            "call_id": call["id"],
                            "name": function["name"],
                            "arguments": arguments if isinstance(arguments, str) else "{}",
                        }
                    )
                )
            if not text and not calls:
                items.append(
                    stamp_id(
                        {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": "", "annotations": []}],
                            "status": "completed",
                        }
                    )
                )
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise bad_request(f"'{where}.tool_call_id' must be a string", param=where)
            items.append(
                stamp_id(
                    {
                        "type": "function_call_output",
                        "call_id": call_id,
                        "output": _text_of(content),
                    }
                )
            )
        else:
            raise bad_request(
                f"'{where}.role' must be system, developer, user, assistant or tool, got {role!r}",
                param=f"{where}.role",
            )
    return (_SEPARATOR.join(instructions) if instructions else None), items


# ---------------------------------------------------------------------- the transcript


@dataclass(frozen=True)
class Entry:
    """One message of a transcript as a chat client sees it, and where its items start."""

    key: tuple[Any, ...]
    start: int

    @property
    def kind(self) -> str:
        return str(self.key[0])


def transcript(items: Sequence[Item], hidden: frozenset[str]) -> list[Entry]:
    """``items`` as the messages a chat client holds: user, system and developer messages;
    each run of assistant items as one assistant message (its texts joined, its calls to
    tools not in ``hidden``); the outputs of those calls. Calls to ``hidden`` tools (the
    agent's own) and their outputs are left out, as a chat client never sees them."""
    entries: list[Entry] = []
    hidden_calls: set[str] = set()
    segment: dict[str, Any] | None = None

    def close() -> None:
        nonlocal segment
        if segment is not None:
            key = ("assistant", _SEPARATOR.join(segment["texts"]), tuple(segment["calls"]))
            entries.append(Entry(key, segment["start"]))
            segment = None

    def open_at(index: int) -> dict[str, Any]:
        nonlocal segment
        if segment is None:
            segment = {"start": index, "texts": [], "calls": []}
        return segment

    for index, item in enumerate(items):
        kind = item.get("type")
        role = item.get("role")
        if kind in (None, "message") and role in ("user", "system", "developer"):
            close()
            entries.append(Entry(("message", role, message_text(item)), index))
        elif kind in (None, "message") and role == "assistant":
            text = message_text(item)
            current = open_at(index)
            if text:
                current["texts"].append(text)
        elif kind == "function_call":
            current = open_at(index)
            call_id = str(item.get("call_id"))
            if item.get("name") in hidden:
                hidden_calls.add(call_id)
            else:
                arguments = item.get("arguments")
                current["calls"].append(
                    (call_id, item.get("name"), arguments if isinstance(arguments, str) else "{}")
                )
        elif kind == "function_call_output" or (kind in (None, "message") and role == "tool"):
            call_id = str(item.get("call_id") if kind else item.get("tool_call_id"))
            if call_id in hidden_calls:
                open_at(index)
                continue
            close()
            output = item.get("output") if kind else item.get("content")
            entries.append(Entry(("tool", call_id, _text_of(output)), index))
        elif segment is not None:
            continue  # reasoning and the like, inside an answer
    close()
    return entries


def _hidden_tools(agent: Agent[Any]) -> frozenset[str]:
    names: set[str] = set()
    seen: set[int] = set()
    stack = [agent]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        names.update(tool.name for tool in current.tools)
        for handoff in current.get_handoffs():
            names.add(handoff.tool_name)
            stack.append(handoff.agent)
    return frozenset(names)


# ---------------------------------------------------------------------- the request


@dataclass
class _Chat:
    model: str
    instructions: str | None
    items: list[Item]
    stream: bool
    include_usage: bool
    tools: list[Any]
    settings: ModelSettings
    conversation: str | None
    fork: bool


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise bad_request(f"'{name}' must be a number from {low:g} to {high:g}", param=name)
    return float(value)


def _parse(request: Request, body: dict[str, Any], context: ServerContext) -> _Chat:
    model = body.get("model")
    context.agents.get(model)
    instructions, items = messages_to_items(body.get("messages"), context.limits.max_items)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false", param="stream")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_request("this server returns one choice: 'n' must be 1", param="n")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        raise bad_request("only text responses are supported by this server", "response_format")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise bad_request("'max_completion_tokens' must be an integer >= 1", "max_tokens")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4
    ):
        raise bad_request("'stop' must be a string or up to 4 strings", param="stop")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("'seed' must be an integer", param="seed")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise bad_request("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
    choice = body.get("tool_choice")
    tool_choice: str | None = None
    if choice in ("auto", "none", "required"):
        tool_choice = str(choice)
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        tool_choice = str(choice["function"].get("name") or "") or None
    elif choice is not None:
        raise bad_request("'tool_choice' must be auto, none, required or a function", "tool_choice")
    settings = ModelSettings(
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
        frequency_penalty=_number(body, "frequency_penalty", -2, 2),
        presence_penalty=_number(body, "presence_penalty", -2, 2),
        parallel_tool_calls=parallel,
        tool_choice=tool_choice,
    )
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    if conversation is None:  # the body wins over the header
        conversation = request.headers.get(CONVERSATION_HEADER)
    if conversation is not None and (not isinstance(conversation, str) or not conversation):
        raise bad_request("'conversation' must be a conversation id", param="conversation")
    if conversation is not None and not context.memory:
        raise bad_request(
            "this server keeps no state (started with --no-memory): no 'conversation'",
            param="conversation",
        )
    mode = body.get("on_divergence") or request.headers.get(DIVERGENCE_HEADER) or "reject"
    if mode not in ("reject", "fork"):
        raise bad_request("'on_divergence' must be 'reject' or 'fork'", param="on_divergence")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    return _Chat(
        model=str(model),
        instructions=instructions,
        items=items,
        stream=bool(stream),
        include_usage=include_usage,
        tools=list(tools or []),
        settings=settings,
        conversation=conversation,
        fork=mode == "fork",
    )


def _agent_for(context: ServerContext, chat: _Chat) -> tuple[Agent[Any], frozenset[str]]:
    agent = context.agents.get(chat.model)
    tools = client_tools(chat.tools, agent, chat=True)
    changes: dict[str, Any] = {}
    if tools:
        changes["tools"] = [*agent.tools, *tools]
    if chat.instructions is not None:
        changes["instructions"] = chat.instructions
    return (agent.clone(**changes) if changes else agent), frozenset(t.name for t in tools)


async def _tail(
    context: ServerContext,
    session: ServerSession,
    chat: _Chat,
    hidden: frozenset[str],
    request: Request,
) -> tuple[ServerSession, list[Item], str | None]:
    """The session to append to, the new tail of the messages, and the id of a fork (held
    under the caller's lease on ``session``); ``hidden`` names the served agent's own tools."""
    stored = await session.get_items()
    old, new = transcript(stored, hidden), transcript(chat.items, hidden)
    common = 0
    while common < min(len(old), len(new)) and old[common].key == new[common].key:
        common += 1
    if common == len(old) and len(new) > len(old):
        return session, chat.items[new[common].start :], None
    if common == len(old) == len(new):
        raise bad_request(
            "the messages hold nothing after what conversation "
            f"'{chat.conversation}' already holds: add a message",
            param="messages",
        )
    if not chat.fork:
        hint = ""
        if common == 0 and len(new) < len(old):  # most likely only the new message was sent
            hint = (
                f" (it holds {len(old)} messages: chat completions take the whole transcript "
                "each time; to send only the new message, use POST /v1/responses with "
                "'conversation')"
            )
        raise ApiError(
            409,
            f"the messages diverge from the stored transcript of conversation "
            f"'{chat.conversation}' at message {common + 1}{hint}; nothing was stored. Send "
            f"the header '{DIVERGENCE_HEADER}: fork' to continue in a fork of the conversation",
            code="conversation_diverged",
        )
    while 0 < common < len(old) and old[common].kind == "tool":
        common -= 1  # never cut a call from its output
    cut = old[common].start if common < len(old) else len(stored)
    visible = new_conversation_id()
    forked = context.session(tenant_of(request).session_id(visible))
    await session.fork(forked.session_id, at=cut)
    return forked, chat.items[new[common].start :] if common < len(new) else [], visible


def _message(outcome: TurnOutcome) -> tuple[dict[str, Any], str]:
    texts = [
        message_text(item)
        for item in outcome.output
        if item.get("type", "message") == "message" and item.get("role") == "assistant"
    ]
    text = _SEPARATOR.join(t for t in texts if t)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or (None if outcome.waiting else ""),
        "refusal": None,
        "annotations": [],
    }
    if outcome.waiting:
        message["tool_calls"] = [_tool_call(call) for call in outcome.waiting]
    return message, "tool_calls" if outcome.waiting else "stop"


def _tool_call(call: Item) -> dict[str, Any]:
    return {
        "id": str(call.get("call_id")),
        "type": "function",
        "function": {
            "name": str(call.get("name")),
            "arguments": str(call.get("arguments") or "{}"),
        },
    }


def _usage(outcome: TurnOutcome) -> dict[str, Any]:
    usage = outcome.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


_DONE = object()


@api_route
async def create_chat_completion(request: Request) -> Response:
    context = context_of(request)
    body = await read_json(request, context.limits)
    check_body("ChatCompletionCreate", body)
    chat = _parse(request, body, context)
    agent, client_names = _agent_for(context, chat)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    run_config = RunConfig(model_settings=chat.settings, tracing_disabled=True)
    wait = lease_wait(request)
    headers: dict[str, str] = {}

    async def place() -> tuple[ServerSession | None, Any]:
        if chat.conversation is None:
            return None, contextlib.nullcontext()
        session = context.session(conversation_session_id(request, chat.conversation))
        # found (or not) in the lease's own transaction: one store job, nothing written if not
        return session, writer(session, wait, existing=True)

    async def turn(on_event: Any = None) -> TurnOutcome:
        session, lease = await place()
        try:
            return await _under(session, lease, on_event)
        except NoSuchSession:  # (only the conversation's lease raises it)
            raise not_found(
                f"Conversation with id '{chat.conversation}' not found.", param="conversation"
            ) from None

    async def _under(session: ServerSession | None, lease: Any, on_event: Any) -> TurnOutcome:
        async with lease:
            items = chat.items
            target = session
            if session is not None:
                hidden = _hidden_tools(context.agents.get(chat.model))
                target, items, forked = await _tail(context, session, chat, hidden, request)
                if forked is not None:
                    headers[CONVERSATION_HEADER] = forked
            if target is not None and target is not session:
                async with writer(target, 0):
                    return await run_turn(_turn(agent, items, target), on_event)
            return await run_turn(_turn(agent, items, target), on_event)

    def _turn(agent: Agent[Any], items: list[Item], session: ServerSession | None) -> Turn:
        return Turn(
            agent=agent,
            input=items,
            session=session,
            client_tools=client_names,
            run_config=run_config,
            param="messages",
        )

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    if not chat.stream:
        outcome = await asyncio.shield(context.detach(turn()))
        message, finish = _message(outcome)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": chat.model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                ],
                "usage": _usage(outcome),
            },
            headers=headers,
        )

    queue: asyncio.Queue[Any] = asyncio.Queue()
    state = {"opened": False, "message": None, "texts": 0}

    def send(event: StreamEvent) -> None:
        delta: str | None = None
        if isinstance(event, RawResponsesStreamEvent):
            data = event.data
            if getattr(data, "type", None) == "response.output_text.delta":
                delta = str(getattr(data, "delta", ""))
                item_id = getattr(data, "item_id", None)
                if state["message"] != item_id:
                    if state["texts"]:
                        delta = _SEPARATOR + delta
                    state["message"] = item_id
                    state["texts"] = int(state["texts"] or 0) + 1
        elif isinstance(event, RunItemStreamEvent):
            raw = event.item.raw_item
            if (
                raw.get("type", "message") == "message"
                and raw.get("role") == "assistant"
                and state["message"] != raw.get("id")  # a message that was not streamed
            ):
                text = message_text(raw)
                if text:
                    delta = (_SEPARATOR if state["texts"] else "") + text
                    state["texts"] = int(state["texts"] or 0) + 1
                state["message"] = raw.get("id")
        if delta is None:
            return
        if not state["opened"]:
            state["opened"] = True
            queue.put_nowait(chunk({"role": "assistant", "content": ""}))
        queue.put_nowait(chunk({"content": delta}))

    async def streamed() -> None:
        try:
            outcome = await turn(send)
        except Exception as exc:
            if not state["opened"]:
                queue.put_nowait(exc)
                queue.put_nowait(_DONE)
                return
            from ._errors import from_exception, scrub

            error = from_exception(exc, context.secrets)
            queue.put_nowait(
                {
                    "error": {
                        "message": scrub(error.message, context.secrets),
                        "type": error.type,
                        "param": error.param,
                        "code": error.code,
                    }
                }
            )
            queue.put_nowait(_DONE)
            return
        if not state["opened"]:
            state["opened"] = True
            queue.put_nowait(chunk({"role": "assistant", "content": ""}))
        if outcome.waiting:
            calls = [
                {"index": index, **_tool_call(call)} for index, call in enumerate(outcome.waiting)
            ]
            queue.put_nowait(chunk({"tool_calls": calls}))
        queue.put_nowait(chunk({}, "tool_calls" if outcome.waiting else "stop"))
        if chat.include_usage:
            final = chunk({})
            final["choices"] = []
            final["usage"] = _usage(outcome)
            queue.put_nowait(final)
        queue.put_nowait(_DONE)

    context.detach(streamed())
    first = await queue.get()
    if isinstance(first, Exception):
        raise first

    async def lines() -> AsyncIterator[bytes]:
        event = first
        while event is not _DONE:
            yield b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"
            event = await queue.get()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(
        lines(),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def routes() -> list[Route]:
    """The Chat Completions route."""
    return [route("/v1/chat/completions", POST=create_chat_completion)]
