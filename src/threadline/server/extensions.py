"""Threadline's own routes, under ``/v1/threadline/`` (not part of OpenAI's API):

* ``GET /v1/threadline/conversations`` — the tenant's conversations, most recently updated
  first, paged by ``after`` (the previous page's ``next_cursor``), filtered by
  ``metadata.KEY=VALUE`` query parameters;
* ``GET /v1/threadline/search?q=…`` — items holding every word, across the tenant's
  conversations (``conversation=ID``: one of them);
* ``POST /v1/threadline/conversations/{id}/fork`` — a new conversation with a copy of the
  history, all of it or its first ``at_turn`` turns;
* ``POST /v1/threadline/conversations/{id}/undo`` — remove the last turn (the newest user
  message and everything after it);
* ``POST /v1/threadline/conversations/{id}/compact`` — summarise older turns now;
* ``GET /v1/threadline/conversations/{id}/window`` — the items the next request would send.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..context import RunContextWrapper
from ..errors import UserError
from ..items import repair_orphans
from ..run import RunConfig
from ..run.compaction import compact_session
from ..run.context_budget import default_history_budget
from ..sessions.store import search_terms
from ._context import api_route, context_of, lease_wait, route, tenant_of, writer
from ._errors import ApiError, bad_request, not_found
from ._ids import is_chain, new_conversation_id, with_ids
from ._items import api_item, metadata_of
from ._limits import read_json
from ._openapi import check_body
from .conversations import CONVERSATION_RECORD, conversation_object, existing

__all__ = ["routes"]


def _limit(request: Request, default: int = 20) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise bad_request(
            f"Invalid 'limit': integer between 1 and 100 expected, got {raw!r}.", "limit"
        )
    return value


@api_route
async def list_conversations(request: Request) -> Response:
    context = context_of(request)
    tenant = tenant_of(request)
    limit = _limit(request)
    wanted = {
        key[len("metadata.") :]: value
        for key, value in request.query_params.multi_items()
        if key.startswith("metadata.") and len(key) > len("metadata.")
    }
    after = request.query_params.get("after") or None
    try:
        page = await context.store.list_sessions(
            limit, after, metadata=wanted or None, with_metadata=True
        )
    except UserError as exc:  # a cursor this store never made
        raise not_found(str(exc).splitlines()[0], param="after") from None
    found: list[dict[str, Any]] = []
    for info in page.sessions:
        visible = tenant.visible_id(info.session_id)
        if visible is None or is_chain(visible):
            continue  # another tenant's, or a hidden response chain
        found.append(
            {
                **conversation_object(visible, info, info.metadata or {}),
                "updated_at": int(info.updated_at.timestamp()),
                "item_count": info.item_count,
                "title": info.title,
            }
        )
    cursor = page.next_cursor
    return JSONResponse(
        {
            "object": "list",
            "data": found,
            "has_more": cursor is not None,
            "next_cursor": cursor,
        }
    )


@api_route
async def search(request: Request) -> Response:
    context = context_of(request)
    tenant = tenant_of(request)
    text = request.query_params.get("q")
    if not text:
        raise bad_request("Missing required parameter: 'q'.", param="q")
    limit = _limit(request)
    conversation = request.query_params.get("conversation")
    session_id = None
    if conversation is not None:
        session, _ = await existing(request, conversation)
        session_id = session.session_id
    if not search_terms(text):  # no word to look for: nothing matches
        return JSONResponse({"object": "list", "data": []})
    try:
        hits = await context.store.search(
            text,
            limit=limit if tenant.name is None or session_id else 5 * limit,
            session_id=session_id,
        )
    except UserError as exc:
        raise bad_request(str(exc).splitlines()[0], param="q") from None
    data = []
    for hit in hits:
        visible = tenant.visible_id(hit.session_id)
        if visible is None or is_chain(visible):
            continue
        data.append(
            {
                "object": "threadline.search_hit",
                "conversation_id": visible,
                "position": hit.position,
                "snippet": hit.snippet,
                "item": api_item(next(iter(with_ids([hit.item])))[0], hit.item),
            }
        )
        if len(data) == limit:
            break
    return JSONResponse({"object": "list", "data": data})


@api_route
async def fork(request: Request) -> Response:
    context = context_of(request)
    body = await read_json(request, context.limits)
    check_body("Fork", body)
    at_turn = body.get("at_turn")
    if at_turn is not None and (isinstance(at_turn, bool) or not isinstance(at_turn, int)):
        raise bad_request("'at_turn' must be an integer (negative: from the end)", "at_turn")
    metadata = metadata_of(body.get("metadata"))
    session, _ = await existing(request, request.path_params["conversation_id"])
    visible = new_conversation_id()
    new_id = tenant_of(request).session_id(visible)
    try:
        forked = await session.fork(new_id, at_turn=at_turn)
    except UserError as exc:  # a turn the conversation does not have
        raise not_found(str(exc).splitlines()[0], param="at_turn") from None
    new = context.session(forked.session_id)
    records: dict[str, Any] = {CONVERSATION_RECORD: {"created_at": int(time.time())}}
    if metadata:
        records["metadata"] = metadata
    await new.put_records(records)
    info = await context.store.session_info(new_id)
    assert info is not None
    return JSONResponse(conversation_object(visible, info, metadata or {}))


@api_route
async def undo(request: Request) -> Response:
    session, _ = await existing(request, request.path_params["conversation_id"])
    async with writer(session, lease_wait(request)):
        popped = await session.pop_turn()
    data = [api_item(item_id, item) for item_id, item in with_ids(popped)]
    return JSONResponse({"object": "list", "data": data})


def _agent(request: Request, name: object) -> Any:
    context = context_of(request)
    return context.agents.get(name if name is not None else context.agents.default)


@api_route
async def compact(request: Request) -> Response:
    context = context_of(request)
    body = await read_json(request, context.limits)
    check_body("Compact", body)
    agent = _agent(request, body.get("model"))
    keep = body.get("keep_tokens")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise bad_request("'keep_tokens' must be an integer >= 1", param="keep_tokens")
    session, _ = await existing(request, request.path_params["conversation_id"])
    result = await compact_session(session, agent=agent, keep_tokens=keep)
    if result.status == "failed" and "busy" in result.reason:
        raise ApiError(
            409, "another request is writing to this conversation", code="conversation_busy"
        )
    summary = result.summary
    return JSONResponse(
        {
            "object": "threadline.compaction",
            "status": result.status,
            "reason": result.reason,
            "covered": list(result.covered),
            "summary": None if summary is None else summary.text,
        }
    )


@api_route
async def window(request: Request) -> Response:
    agent = _agent(request, request.query_params.get("model"))
    session, _ = await existing(request, request.path_params["conversation_id"])
    budget = await default_history_budget(agent, RunConfig(), RunContextWrapper(None), [])
    max_tokens = None if budget is None else budget.history_tokens
    items = repair_orphans(await session.get_window(max_tokens=max_tokens))
    data = [api_item(item_id, item) for item_id, item in with_ids(items)]
    return JSONResponse({"object": "list", "data": data, "max_tokens": max_tokens})


def routes() -> list[Route]:
    """The extension routes."""
    base = "/v1/threadline/conversations"
    return [
        route(base, GET=list_conversations),
        route("/v1/threadline/search", GET=search),
        route(base + "/{conversation_id}/fork", POST=fork),
        route(base + "/{conversation_id}/undo", POST=undo),
        route(base + "/{conversation_id}/compact", POST=compact),
        route(base + "/{conversation_id}/window", GET=window),
    ]
