"""The inspector's routes that change sessions (see :mod:`threadline.server.inspect_api`).

Each one is refused with a 403 unless the app enables writes, then goes through the library
API the CLI uses: ``set_metadata``, ``pop_turn``, ``fork``, ``compact_session``,
``replace_items`` (repair), ``delete_session``, ``import_jsonl``, under the session's writer
lease (busy: ``409 conversation_busy``, or a wait the ``X-Threadline-Lease-Wait`` header asks
for).
"""

from __future__ import annotations

import io
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import UserError
from ..run.compaction import compact_session
from ..sessions._metadata import check_metadata
from ._context import api_route, context_of, conversation_session_id, lease_wait, writer
from ._errors import ApiError, bad_request
from ._ids import new_conversation_id
from ._inspect_health import check_health
from ._inspect_http import require_write, target
from ._limits import read_json

__all__ = [
    "compact",
    "delete_session",
    "fork",
    "import_session",
    "repair",
    "set_metadata",
    "undo",
]


def _records(store: Any) -> None:
    if "records" not in getattr(store, "capabilities", frozenset()):
        raise bad_request("this store keeps no session records (metadata, usage, summaries)")


@api_route
async def set_metadata(request: Request) -> Response:
    require_write(request)
    context = context_of(request)
    _records(context.store)
    found = await target(request)
    body = await read_json(request, context.limits)
    if not isinstance(body.get("metadata"), dict):
        raise bad_request("'metadata' must be an object", param="metadata")
    metadata = check_metadata(body["metadata"], found.visible_id)
    session = context.session(found.session_id)
    async with writer(session, lease_wait(request)):
        await session.set_metadata(metadata)
    return JSONResponse(
        {"id": found.visible_id, "object": "inspect.metadata", "metadata": metadata}
    )


@api_route
async def undo(request: Request) -> Response:
    require_write(request)
    context = context_of(request)
    found = await target(request)
    session = context.session(found.session_id)
    async with writer(session, lease_wait(request)):
        removed = await session.pop_turn()
    info = await context.store.session_info(found.session_id)
    return JSONResponse(
        {
            "id": found.visible_id,
            "object": "inspect.undo",
            "removed": len(removed),
            "items": 0 if info is None else info.item_count,
        }
    )


@api_route
async def fork(request: Request) -> Response:
    require_write(request)
    context = context_of(request)
    store = context.store
    found = await target(request)
    body = await read_json(request, context.limits)
    at_turn = body.get("at_turn")
    if at_turn is not None and (isinstance(at_turn, bool) or not isinstance(at_turn, int)):
        raise bad_request("'at_turn' must be an integer (a turn number from 0) or null", "at_turn")
    new_id = body.get("new_id") or new_conversation_id()
    if not isinstance(new_id, str):
        raise bad_request("'new_id' must be a string", param="new_id")
    new_session_id = conversation_session_id(request, new_id)
    if await store.session_info(new_session_id) is not None:
        raise bad_request(f"a session '{new_id}' exists already: pick another id", "new_id")
    parent = context.session(found.session_id)
    forked = await parent.fork(new_session_id, at_turn=at_turn)
    if "records" in store.capabilities:
        metadata = await parent.get_metadata()
        if metadata:
            await forked.update_metadata(metadata)
    info = await store.session_info(new_session_id)
    return JSONResponse(
        {
            "id": new_id,
            "object": "inspect.fork",
            "parent_id": found.visible_id,
            "at_turn": at_turn,
            "items": 0 if info is None else info.item_count,
        }
    )


@api_route
async def compact(request: Request) -> Response:
    require_write(request)
    context = context_of(request)
    found = await target(request)
    body = await read_json(request, context.limits)
    keep = body.get("keep_tokens")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise bad_request("'keep_tokens' must be an integer >= 0 or null", "keep_tokens")
    agent = context.agents.get(context.agents.default)
    session = context.store.session(found.session_id)
    result = await compact_session(session, agent=agent, keep_tokens=keep)
    summary = result.summary
    return JSONResponse(
        {
            "id": found.visible_id,
            "object": "inspect.compaction",
            "status": result.status,
            "reason": result.reason,
            "message": result.describe(),
            "covered": list(result.covered),
            "summary_covers": None if summary is None else [0, summary.end],
        }
    )


@api_route
async def repair(request: Request) -> Response:
    require_write(request)
    context = context_of(request)
    found = await target(request)
    body = await read_json(request, context.limits)
    plan = body.get("plan")
    if not isinstance(plan, str) or not plan:
        raise bad_request("'plan' must be the plan of a repair preview (GET …/health)", "plan")
    session = context.session(found.session_id)
    async with writer(session, lease_wait(request)):
        info = await context.store.session_info(found.session_id)
        health = (
            None if info is None else await check_health(context.store, info, probe_lease=False)
        )
        if health is None or health.plan != plan or health.kept is None:
            raise ApiError(
                409,
                "the session changed since this repair was previewed: preview it again",
                code="repair_outdated",
            )
        dropped = len(health.body["repair"]["drop"])
        await session.replace_items(health.kept)
    return JSONResponse(
        {
            "id": found.visible_id,
            "object": "inspect.repair",
            "dropped": dropped,
            "items": len(health.kept),
        }
    )


@api_route
async def delete_session(request: Request) -> Response:
    require_write(request)
    context = context_of(request)
    found = await target(request)
    session = context.session(found.session_id)
    async with writer(session, lease_wait(request)):
        await context.store.delete_session(found.session_id)
    return JSONResponse({"id": found.visible_id, "object": "inspect.deleted", "deleted": True})


async def _body_text(request: Request) -> str:
    limit = context_of(request).limits.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413,
                f"the file is larger than this server accepts in one request ({limit} bytes)",
                code="request_too_large",
            )
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the file to import is not UTF-8 text") from None


@api_route
async def import_session(request: Request) -> Response:
    require_write(request)
    context = context_of(request)
    store = context.store
    if not hasattr(store, "import_jsonl"):
        raise bad_request("this store cannot import sessions")
    mode = request.query_params.get("mode", "refuse")
    if mode not in ("refuse", "append", "replace"):
        raise bad_request(
            f"Invalid 'mode': refuse, append or replace expected, got {mode!r}.", "mode"
        )
    text = await _body_text(request)
    if not text.strip():
        raise bad_request("the file to import is empty")
    visible_id = request.query_params.get("id") or None
    if visible_id is None:
        try:
            header = json.loads(text.partition("\n")[0])
        except ValueError:
            header = None
        named = header.get("session_id") if isinstance(header, dict) else None
        if not isinstance(named, str) or "format" not in header:
            raise bad_request(
                "the file names no session (the old plain format): give the id to import into",
                param="id",
            )
        visible_id = named
    session_id = conversation_session_id(request, visible_id)
    try:
        result = await store.import_jsonl(io.StringIO(text), session_id, mode)
    except UserError as exc:
        message = str(exc).replace(session_id, visible_id) if session_id != visible_id else str(exc)
        raise bad_request(message.splitlines()[0]) from None
    return JSONResponse(
        {
            "id": visible_id,
            "object": "inspect.import",
            "items": result.items,
            "records": result.records,
            "mode": result.mode,
        }
    )
