"""OpenAI's Responses routes: ``POST /v1/responses``, ``GET/DELETE /v1/responses/{id}`` and
``GET /v1/responses/{id}/input_items``.

Where a response is stored:

* with ``conversation``: in that conversation's session (the input, then each step);
* with ``previous_response_id``: in the hidden *response chain* session of that response when
  it is the chain's newest, else in a new chain holding a copy of the history up to it (so
  two responses continuing one response branch, as on OpenAI);
* with neither: in a new chain; with ``store: false``: nowhere (the history is read, nothing
  is written, and the response cannot be retrieved).

The response object itself (and its input items) is the session record
``threadline.response/<random part of the id>``; the response id names its session (see
:mod:`threadline.server._ids`), so ``GET /v1/responses/{id}`` is one record read.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import UserError
from ..items import Item, repair_orphans
from ..models.settings import ModelSettings
from ..run import RunConfig, RunHooks
from ..sessions.codec import RECORD_SIZE_LIMIT
from ..sessions.lease import NoSuchSession
from ._agents import client_tools
from ._auth import Tenant
from ._context import (
    ServerContext,
    ServerSession,
    api_route,
    context_of,
    lease_wait,
    route,
    session_id_for,
    tenant_of,
    writer,
)
from ._errors import ApiError, bad_request, from_exception, not_found, scrub
from ._ids import (
    decode_response_id,
    is_chain,
    new_chain_id,
    new_response_id,
    with_ids,
)
from ._items import api_item, input_items, metadata_of
from ._limits import read_json
from ._openapi import check_body
from ._sse import ResponseEvents, encode_event
from ._turn import ANSWER_KINDS, Turn, TurnOutcome, run_turn

__all__ = ["RESPONSE_RECORD_PREFIX", "routes", "usage_object"]

RESPONSE_RECORD_PREFIX = "threadline.response/"
"""Session records holding stored responses, by the random part of their id."""

_RANDOM = 24
_IGNORED = (
    "include",
    "reasoning",
    "truncation",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "user",
    "top_logprobs",
    "stream_options",
)
"""Request fields accepted without effect (hints that change nothing a client relies on)."""


def _record_key(response_id: str) -> str:
    return RESPONSE_RECORD_PREFIX + response_id[5 : 5 + _RANDOM]


def usage_object(usage: Any) -> dict[str, Any]:
    """OpenAI's ``ResponseUsage``."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


@dataclass
class _Request:
    """A parsed ``POST /v1/responses``."""

    model: str
    input: list[Item]
    instructions: str | None
    conversation: str | None
    previous_response_id: str | None
    store: bool
    stream: bool
    metadata: dict[str, str] | None
    tools: list[dict[str, Any]]
    tool_choice: Any
    settings: ModelSettings
    echo: dict[str, Any] = field(default_factory=dict)


def _conversation_id(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return str(value["id"])
    raise bad_request(
        "'conversation' must be a conversation id or an object with an 'id'", "conversation"
    )


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise bad_request(f"'{name}' must be a number from {low:g} to {high:g}", param=name)
    return float(value)


def _tool_choice(value: object) -> str | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return str(value)
    if isinstance(value, dict) and value.get("type") == "function":
        name = value.get("name")
        if not isinstance(name, str):
            function = value.get("function")
            name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return name
    raise bad_request(
        "'tool_choice' must be 'auto', 'none', 'required' or a function", param="tool_choice"
    )


def _parse(body: dict[str, Any], context: ServerContext) -> _Request:
    model = body.get("model")
    context.agents.get(model)  # 400 / 404 first, as OpenAI
    conversation = _conversation_id(body.get("conversation"))
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise bad_request("'previous_response_id' must be a string", "previous_response_id")
    if conversation is not None and previous is not None:  # (the schema refuses it first)
        raise bad_request(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    if not context.memory and (conversation is not None or previous is not None):
        raise bad_request(
            "this server keeps no state (started with --no-memory): 'conversation' and "
            "'previous_response_id' cannot be used",
            param="conversation" if conversation is not None else "previous_response_id",
        )
    store = body.get("store")
    if store is not None and not isinstance(store, bool):
        raise bad_request("'store' must be true or false", param="store")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false", param="stream")
    if body.get("background"):
        raise bad_request("background responses are not supported by this server", "background")
    text = body.get("text")
    if text is not None:
        if not isinstance(text, dict):
            raise bad_request("'text' must be an object", param="text")
        fmt = text.get("format")
        if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
            raise bad_request(
                "only text output is supported by this server (text.format.type 'text')",
                param="text.format",
            )
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("'instructions' must be a string", param="instructions")
    raw_input = body.get("input")
    if raw_input is None:
        if conversation is None and previous is None:
            raise bad_request("Missing required parameter: 'input'.", param="input")
        items: list[Item] = []
    else:
        items = input_items(raw_input, context.limits)
        if not items and conversation is None and previous is None:
            raise bad_request("'input' must hold at least one item", param="input")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    max_output = body.get("max_output_tokens")
    if max_output is not None and (
        isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 1
    ):
        raise bad_request("'max_output_tokens' must be an integer >= 1", "max_output_tokens")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise bad_request("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
    settings = ModelSettings(
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        max_tokens=max_output,
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=parallel,
    )
    return _Request(
        model=str(model),
        input=items,
        instructions=instructions,
        conversation=conversation,
        previous_response_id=previous,
        store=store is not False and context.memory,
        stream=bool(stream),
        metadata=metadata_of(body.get("metadata")),
        tools=list(tools or []),
        tool_choice=body.get("tool_choice") or "auto",
        settings=settings,
        echo={
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_output_tokens": max_output,
            "parallel_tool_calls": True if parallel is None else parallel,
        },
    )


@dataclass
class _Placed:
    """Where a response runs: its session (or none), the visible session id its id names,
    the history to send when there is no session, and the item count before it."""

    session: ServerSession | None
    visible_id: str | None
    history: list[Item] = field(default_factory=list)
    count: int = 0
    chain_head: ServerSession | None = None
    check_exists: bool = False
    """The conversation's existence and ``count`` are still to be read: with its lease."""

    def counted(self) -> int:
        """The item count before the response (read with the lease when the run took it)."""
        info = None if self.session is None else self.session.lease_info
        if self.check_exists and info is not None:
            self.count, self.check_exists = info.item_count, False
        return self.count


def _response_object(
    parsed: _Request,
    response_id: str,
    created_at: int,
    *,
    status: str,
    output: list[Item],
    usage: Any = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": None,
        "instructions": parsed.instructions,
        "max_output_tokens": parsed.echo["max_output_tokens"],
        "max_tool_calls": None,
        "model": parsed.model,
        "output": [api_item(item["id"], item) for item in output],
        "parallel_tool_calls": parsed.echo["parallel_tool_calls"],
        "previous_response_id": parsed.previous_response_id,
        "conversation": None if parsed.conversation is None else {"id": parsed.conversation},
        "reasoning": {"effort": None, "summary": None},
        "store": parsed.store,
        "temperature": parsed.echo["temperature"],
        "text": {"format": {"type": "text"}},
        "tool_choice": parsed.tool_choice,
        "tools": parsed.tools,
        "top_p": parsed.echo["top_p"],
        "truncation": "disabled",
        "usage": None if usage is None else usage_object(usage),
        "user": None,
        "metadata": parsed.metadata or {},
    }


async def _find_response(
    context: ServerContext, tenant: Tenant, response_id: str, param: str | None = None
) -> tuple[ServerSession, dict[str, Any]]:
    """The session and record of the tenant's stored response ``response_id``, or 404."""
    visible = decode_response_id(response_id)
    missing = not_found(f"Response with id '{response_id}' not found.", param=param)
    if visible is None or "records" not in context.store.capabilities:
        raise missing
    session = context.session(tenant.session_id(visible))
    try:
        record = await session.get_record(_record_key(response_id))
    except UserError:
        raise missing from None
    if not isinstance(record, dict) or record.get("response", {}).get("id") != response_id:
        raise missing
    return session, record


async def _place(context: ServerContext, tenant: Tenant, parsed: _Request) -> _Placed:
    """Find (or make) the session a response runs in; see the module docstring."""
    if not context.memory or (
        not parsed.store and parsed.conversation is None and parsed.previous_response_id is None
    ):
        return _Placed(None, None)
    if parsed.conversation is not None:
        visible = parsed.conversation
        session_id = session_id_for(tenant, visible, "conversation")
        session = context.session(session_id)
        session.readonly = not parsed.store
        if parsed.store:  # found (or not) and counted when its lease is taken: one store job
            return _Placed(session, visible, check_exists=True)
        info = await context.store.session_info(session_id)
        if info is None:
            raise _no_conversation(visible)
        return _Placed(session, visible, count=info.item_count)
    if parsed.previous_response_id is None:
        visible = new_chain_id()
        return _Placed(context.session(tenant.session_id(visible)), visible)
    previous, record = await _find_response(
        context, tenant, parsed.previous_response_id, "previous_response_id"
    )
    end = record.get("end")
    visible_previous = tenant.visible_id(previous.session_id) or ""
    if is_chain(visible_previous) and isinstance(end, int):
        # the chain's newest response: continue in place (checked again under its lease)
        info = await context.store.session_info(previous.session_id)
        if info is not None and info.item_count == end:
            previous.readonly = not parsed.store
            return _Placed(previous, visible_previous, count=end, chain_head=previous)
    history = await _history_until(previous, record)
    if not parsed.store:
        return _Placed(None, None, history=repair_orphans(history))
    visible = new_chain_id()
    session = context.session(tenant.session_id(visible))
    return _Placed(session, visible, history=history)


def _no_conversation(visible: str) -> Exception:
    return not_found(f"Conversation with id '{visible}' not found.", param="conversation")


async def _history_until(session: ServerSession, record: dict[str, Any]) -> list[Item]:
    """The session's items up to the end of the response ``record`` describes."""
    items = await session.get_items()
    last = record.get("last_id")
    if isinstance(last, str):
        for position, (item_id, _) in enumerate(with_ids(items)):
            if item_id == last:
                return items[: position + 1]
    end = record.get("end")
    return items[:end] if isinstance(end, int) else items


def _run_config(parsed: _Request) -> RunConfig:
    return RunConfig(model_settings=parsed.settings, tracing_disabled=True)


def _turn_for(
    context: ServerContext, parsed: _Request, placed: _Placed, hooks: RunHooks[Any]
) -> Turn:
    agent = context.agents.get(parsed.model)
    tools = client_tools(parsed.tools, agent)
    changes: dict[str, Any] = {}
    if tools:
        changes["tools"] = [*agent.tools, *tools]
    if parsed.instructions is not None:
        changes["instructions"] = parsed.instructions
    if changes:
        agent = agent.clone(**changes)
    return Turn(
        agent=agent,
        input=placed.history + parsed.input if placed.session is None else parsed.input,
        session=placed.session,
        client_tools=frozenset(tool.name for tool in tools),
        run_config=_run_config(parsed),
        hooks=hooks,
    )


class _Recorder(RunHooks[Any]):
    """The stored record of one response (``threadline.response/…``).

    It rides with the write of each step of the run (see ``ServerSession.step_records``), so
    the step that completes the response also stores it, in one transaction; :meth:`finish`
    writes it only when the last step's copy is not the final one (a failure, a run that
    ended without a step). As run hooks it sees the run's usage as it grows.
    """

    def __init__(self, placed: _Placed, parsed: _Request, response_id: str, created_at: int):
        self.placed = placed
        self.parsed = parsed
        self.response_id = response_id
        self.created_at = created_at
        self.usage: Any = None
        self.output: list[Item] = []
        self.last: dict[str, Any] | None = None
        session = placed.session
        self.active = (
            session is not None and not session.readonly and "records" in session.capabilities
        )
        if self.active and session is not None:
            session.input_ids = frozenset(item["id"] for item in parsed.input)
            session.step_records = self.step

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        self.usage = context.usage

    def response(self, output: list[Item], usage: Any) -> dict[str, Any]:
        """The completed response object."""
        return _response_object(
            self.parsed,
            self.response_id,
            self.created_at,
            status="completed",
            output=output,
            usage=usage,
        )

    def _record(self, response: dict[str, Any]) -> dict[str, Any]:
        parsed = self.parsed
        end = self.placed.counted() + len(parsed.input) + len(self.output)
        last = self.output[-1]["id"] if self.output else None
        if last is None and parsed.input:
            last = parsed.input[-1]["id"]
        record: dict[str, Any] = {
            "response": response,
            "input": [api_item(item["id"], item) for item in parsed.input],
            "end": end,
            "last_id": last,
        }
        if len(json.dumps(record, ensure_ascii=False)) > RECORD_SIZE_LIMIT * 9 // 10:
            record["input"] = None  # too large for a record: keep the response without it
        return record

    def step(self, items: list[Item]) -> dict[str, Any]:
        inputs = self.placed.session.input_ids if self.placed.session is not None else ()
        self.output += [item for item in items if item["id"] not in inputs]
        self.last = self._record(self.response(list(self.output), self.usage))
        return {_record_key(self.response_id): self.last}

    async def finish(self, response: dict[str, Any]) -> None:
        """Store ``response`` unless the last step already stored exactly it (when that step
        ended the lease, this write goes unfenced: the record is this response's own key)."""
        session = self.placed.session
        if not self.active or session is None:
            return
        session.step_records = None
        if self.last is not None and self.last["response"] == response:
            return
        record = self._record(response)
        try:
            await session.put_records({_record_key(self.response_id): record})
        except UserError:  # still too large: keep the response without its input
            record["input"] = None
            await session.put_records({_record_key(self.response_id): record})


async def _in_session(
    context: ServerContext,
    tenant: Tenant,
    parsed: _Request,
    wait: float,
    body: Any,
) -> Any:
    """Place the response, hold its session's lease, and run ``body(placed)``."""
    placed = await _place(context, tenant, parsed)
    session = placed.session
    if session is None or session.readonly:
        return await body(placed)
    chain_wait = context.limits.max_lease_wait if placed.chain_head is not None else wait
    try:
        if placed.check_exists and not parsed.tools and not _answers(parsed):
            # nothing to write before the run nor after it (no client tool can stop it): its
            # lease is the request's, taken (only on a conversation that exists, counted
            # with it) by its start read, in one store job
            session.run_lease_wait = wait
            return await body(placed)
        async with writer(session, chain_wait, existing=placed.check_exists) as lease:
            if placed.check_exists:
                await _count(context, placed, lease)
            return await _under_lease(context, tenant, parsed, placed, body)
    except NoSuchSession as missing:  # (the conversation's lease, taken either way)
        if missing.session_id != session.session_id:
            raise
        raise _no_conversation(str(placed.visible_id)) from None


def _answers(parsed: _Request) -> bool:
    """Whether the input answers client-side tool calls (written, and checked against the
    stored calls, before the run)."""
    return any(item.get("type") in ANSWER_KINDS for item in parsed.input)


async def _count(context: ServerContext, placed: _Placed, lease: Any) -> None:
    """The conversation's item count, from its lease (read with it), else read now."""
    session = placed.session
    assert session is not None
    info = getattr(lease, "info", None) or await context.store.session_info(session.session_id)
    if info is None:
        raise NoSuchSession(session.session_id)
    placed.count, placed.check_exists = info.item_count, False


async def _under_lease(
    context: ServerContext, tenant: Tenant, parsed: _Request, placed: _Placed, body: Any
) -> Any:
    """Run ``body`` in the placed session, whose lease the caller holds."""
    session = placed.session
    assert session is not None
    if placed.chain_head is not None:
        info = await context.store.session_info(session.session_id)
        if info is None or info.item_count != placed.count:
            # another response continued it meanwhile: branch off a copy
            _, record = await _find_response(
                context, tenant, str(parsed.previous_response_id), "previous_response_id"
            )
            history = await _history_until(session, record)
            visible = new_chain_id()
            placed = _Placed(context.session(tenant.session_id(visible)), visible, history)
            return await _fresh_chain(placed, body)
    if placed.history:
        return await _fresh_chain(placed, body)
    return await body(placed)


async def _fresh_chain(placed: _Placed, body: Any) -> Any:
    """Copy the history into the new chain session, then run ``body`` there."""
    session = placed.session
    assert session is not None
    async with writer(session, 0):
        await session.add_items([dict(item) for item in placed.history])
        count = len(placed.history)
        placed = _Placed(session, placed.visible_id, count=count)
        return await body(placed)


# ---------------------------------------------------------------------- the routes


@api_route
async def create_response(request: Request) -> Response:
    context = context_of(request)
    body = await read_json(request, context.limits)
    check_body("ResponseCreate", body)
    for name in _IGNORED:
        body.pop(name, None)
    parsed = _parse(body, context)
    tenant = tenant_of(request)
    wait = lease_wait(request)
    created_at = int(time.time())
    if parsed.stream:
        return await _streamed(context, tenant, parsed, wait, created_at)

    async def body_of(placed: _Placed) -> dict[str, Any]:
        recorder = _Recorder(placed, parsed, _new_id(placed), created_at)
        outcome = await run_turn(_turn_for(context, parsed, placed, recorder))
        response = recorder.response(outcome.output, outcome.usage)
        await recorder.finish(response)
        return response

    task = context.detach(_in_session(context, tenant, parsed, wait, body_of))
    response = await asyncio.shield(task)
    return JSONResponse(response)


def _new_id(placed: _Placed) -> str:
    if placed.session is None or placed.session.readonly or placed.visible_id is None:
        return f"resp_{uuid.uuid4().hex[:_RANDOM]}"
    return new_response_id(placed.visible_id)


_DONE = object()


async def _streamed(
    context: ServerContext, tenant: Tenant, parsed: _Request, wait: float, created_at: int
) -> Response:
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def body_of(placed: _Placed) -> None:
        response_id = _new_id(placed)
        recorder = _Recorder(placed, parsed, response_id, created_at)
        events = ResponseEvents()
        skeleton = _response_object(
            parsed, response_id, created_at, status="in_progress", output=[]
        )
        opened = False

        def send(run_event: Any) -> None:
            nonlocal opened
            produced = events.on_run_event(run_event)
            if produced and not opened:
                opened = True
                for event in events.opening(skeleton):
                    queue.put_nowait(event)
            for event in produced:
                queue.put_nowait(event)

        try:
            outcome: TurnOutcome = await run_turn(
                _turn_for(context, parsed, placed, recorder), send
            )
        except Exception as exc:
            if not opened:
                raise
            error = from_exception(exc, context.secrets)
            message = scrub(error.message, context.secrets)
            failed = _response_object(
                parsed,
                response_id,
                created_at,
                status="failed",
                output=events.output,
                error={"code": error.code or "server_error", "message": message},
            )
            for event in events.finish() + events.failed(failed, error.code, message):
                queue.put_nowait(event)
            await recorder.finish(failed)
            return
        if not opened:
            for event in events.opening(skeleton):
                queue.put_nowait(event)
        for event in events.finish():
            queue.put_nowait(event)
        response = recorder.response(outcome.output, outcome.usage)
        queue.put_nowait(events.completed(response))
        await recorder.finish(response)

    async def turn() -> None:
        try:
            await _in_session(context, tenant, parsed, wait, body_of)
        except Exception as exc:
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(_DONE)

    context.detach(turn())
    first = await queue.get()
    if isinstance(first, Exception):
        raise first
    if first is _DONE:  # pragma: no cover - a turn always opens its stream or fails
        raise ApiError(500, "the response ended before it began")

    async def stream() -> AsyncIterator[bytes]:
        event = first
        while event is not _DONE:
            if isinstance(event, Exception):  # pragma: no cover - failures become events
                break
            yield encode_event(event)
            event = await queue.get()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@api_route
async def get_response(request: Request) -> Response:
    context = context_of(request)
    if not context.memory:
        raise not_found(f"Response with id '{request.path_params['response_id']}' not found.")
    if request.query_params.get("stream") in ("true", "1"):
        raise bad_request("replaying a response as a stream is not supported", param="stream")
    _, record = await _find_response(
        context, tenant_of(request), request.path_params["response_id"]
    )
    return JSONResponse(record["response"])


@api_route
async def delete_response(request: Request) -> Response:
    context = context_of(request)
    response_id = request.path_params["response_id"]
    if not context.memory:
        raise not_found(f"Response with id '{response_id}' not found.")
    session, _ = await _find_response(context, tenant_of(request), response_id)
    await session.put_records({_record_key(response_id): None})
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


@api_route
async def list_input_items(request: Request) -> Response:
    from .conversations import page_of

    context = context_of(request)
    response_id = request.path_params["response_id"]
    if not context.memory:
        raise not_found(f"Response with id '{response_id}' not found.")
    _, record = await _find_response(context, tenant_of(request), response_id)
    stored = record.get("input")
    if not isinstance(stored, list):
        raise ApiError(404, f"the input items of response '{response_id}' were too large to keep")
    entries = [(item["id"], item) for item in stored]
    return JSONResponse(page_of(request, entries, default_order="desc"))


def routes(memory: bool) -> list[Route]:
    """The Responses routes."""
    return [
        route("/v1/responses", POST=create_response),
        route("/v1/responses/{response_id}", GET=get_response, DELETE=delete_response),
        route("/v1/responses/{response_id}/input_items", GET=list_input_items),
    ]
