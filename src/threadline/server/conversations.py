"""OpenAI's Conversations routes: ``/v1/conversations[/{id}]`` and ``…/items[/{item_id}]``.

A conversation is a session of the store (its id is the session id, within the tenant's
prefix); an empty conversation exists because it holds the ``threadline.conversation``
record. Items are listed newest first by default, paged by item id (``after``), 1 to 100 at
a time (default 20). Deleting an item that is not the newest rewrites the history without it
(``replace_items``, under the conversation's lease).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..sessions.base import SessionInfo
from ._context import (
    ServerSession,
    api_route,
    context_of,
    conversation_session_id,
    lease_wait,
    route,
    tenant_of,
    writer,
)
from ._errors import bad_request, not_found
from ._ids import new_conversation_id, with_ids
from ._items import api_item, input_items, metadata_of
from ._limits import read_json
from ._openapi import check_body

__all__ = ["CONVERSATION_RECORD", "conversation_object", "page_of", "routes"]

CONVERSATION_RECORD = "threadline.conversation"
"""The session record a conversation made through the server holds (so an empty one exists)."""


def conversation_object(
    visible_id: str, info: SessionInfo, metadata: dict[str, Any]
) -> dict[str, Any]:
    """OpenAI's ``Conversation`` object."""
    return {
        "id": visible_id,
        "object": "conversation",
        "created_at": int(info.created_at.timestamp()),
        "metadata": metadata,
    }


async def existing(request: Request, visible_id: str) -> tuple[ServerSession, SessionInfo]:
    """The handle and listing entry of the tenant's conversation ``visible_id``, or 404."""
    context = context_of(request)
    session_id = conversation_session_id(request, visible_id)
    info = await context.store.session_info(session_id)
    if info is None:
        raise not_found(f"No conversation found with id '{visible_id}'.")
    return context.session(session_id), info


async def _metadata(session: ServerSession) -> dict[str, Any]:
    if "records" not in session.capabilities:
        return {}
    return await session.get_metadata()


@api_route
async def create_conversation(request: Request) -> Response:
    context = context_of(request)
    body = await read_json(request, context.limits)
    check_body("ConversationCreate", body)
    metadata = metadata_of(body.get("metadata"))
    raw_items = body.get("items")
    items = [] if raw_items is None else input_items(raw_items, context.limits, "items")
    visible_id = new_conversation_id()
    session = context.session(tenant_of(request).session_id(visible_id))
    records: dict[str, Any] = {CONVERSATION_RECORD: {"created_at": int(time.time())}}
    if metadata:
        records["metadata"] = metadata
    if items:
        await session.add_items(items, records=records)
    else:
        await session.put_records(records)
    info = await context.store.session_info(session.session_id)
    assert info is not None
    return JSONResponse(conversation_object(visible_id, info, metadata or {}))


@api_route
async def get_conversation(request: Request) -> Response:
    visible_id = request.path_params["conversation_id"]
    session, info = await existing(request, visible_id)
    return JSONResponse(conversation_object(visible_id, info, await _metadata(session)))


@api_route
async def update_conversation(request: Request) -> Response:
    context = context_of(request)
    visible_id = request.path_params["conversation_id"]
    body = await read_json(request, context.limits)
    check_body("ConversationUpdate", body)
    if "metadata" not in body:
        raise bad_request("Missing required parameter: 'metadata'.", param="metadata")
    metadata = metadata_of(body.get("metadata")) or {}
    session, info = await existing(request, visible_id)
    await session.set_metadata(metadata)
    return JSONResponse(conversation_object(visible_id, info, metadata))


@api_route
async def delete_conversation(request: Request) -> Response:
    context = context_of(request)
    visible_id = request.path_params["conversation_id"]
    session, _ = await existing(request, visible_id)
    async with writer(session, lease_wait(request)):
        await context.store.delete_session(session.session_id)
    return JSONResponse({"id": visible_id, "object": "conversation.deleted", "deleted": True})


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise bad_request(
            f"Invalid 'limit': integer between 1 and 100 expected, got {raw!r}.", param="limit"
        )
    return limit


def _order(request: Request, default: str = "desc") -> str:
    order = request.query_params.get("order", default)
    if order not in ("asc", "desc"):
        raise bad_request(f"Invalid 'order': 'asc' or 'desc' expected, got {order!r}.", "order")
    return order


def page_of(
    request: Request, entries: list[tuple[str, dict[str, Any]]], default_order: str = "desc"
) -> dict[str, Any]:
    """One cursor page of ``entries`` (``(id, api item)``, oldest first) as OpenAI's list
    object, by the request's ``after``, ``limit`` and ``order``."""
    limit, order = _limit(request), _order(request, default_order)
    ordered = entries if order == "asc" else entries[::-1]
    start = 0
    after = request.query_params.get("after")
    if after:
        position = next((i for i, (item_id, _) in enumerate(ordered) if item_id == after), None)
        if position is None:
            raise not_found(f"No item found with id '{after}' (from 'after').", param="after")
        start = position + 1
    data = [item for _, item in ordered[start : start + limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(ordered),
    }


async def _entries(session: ServerSession) -> list[tuple[str, dict[str, Any]]]:
    items = await session.get_items()
    return [(item_id, api_item(item_id, item)) for item_id, item in with_ids(items)]


@api_route
async def list_items(request: Request) -> Response:
    session, _ = await existing(request, request.path_params["conversation_id"])
    return JSONResponse(page_of(request, await _entries(session)))


@api_route
async def create_items(request: Request) -> Response:
    context = context_of(request)
    body = await read_json(request, context.limits)
    check_body("ItemsCreate", body)
    if "items" not in body:
        raise bad_request("Missing required parameter: 'items'.", param="items")
    items = input_items(body["items"], context.limits, "items")
    if not items:
        raise bad_request("'items' must hold at least one item", param="items")
    session, _ = await existing(request, request.path_params["conversation_id"])
    async with writer(session, lease_wait(request)):
        await session.add_items(items)
    data = [api_item(item["id"], item) for item in items]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"],
            "last_id": data[-1]["id"],
            "has_more": False,
        }
    )


@api_route
async def get_item(request: Request) -> Response:
    item_id = request.path_params["item_id"]
    session, _ = await existing(request, request.path_params["conversation_id"])
    for found_id, item in await _entries(session):
        if found_id == item_id:
            return JSONResponse(item)
    raise not_found(f"No item found with id '{item_id}'.")


@api_route
async def delete_item(request: Request) -> Response:
    visible_id = request.path_params["conversation_id"]
    item_id = request.path_params["item_id"]
    session, info = await existing(request, visible_id)
    async with writer(session, lease_wait(request)):
        items = await session.get_items()
        ids = [found for found, _ in with_ids(items)]
        if item_id not in ids:
            raise not_found(f"No item found with id '{item_id}'.")
        position = ids.index(item_id)
        if position == len(items) - 1:
            await session.pop_item()
        else:
            await session.replace_items(items[:position] + items[position + 1 :])
    return JSONResponse(conversation_object(visible_id, info, await _metadata(session)))


def routes() -> list[Route]:
    """The Conversations routes."""
    return [
        route("/v1/conversations", POST=create_conversation),
        route(
            "/v1/conversations/{conversation_id}",
            GET=get_conversation,
            POST=update_conversation,
            DELETE=delete_conversation,
        ),
        route("/v1/conversations/{conversation_id}/items", GET=list_items, POST=create_items),
        route(
            "/v1/conversations/{conversation_id}/items/{item_id}", GET=get_item, DELETE=delete_item
        ),
    ]
