"""The inspector's HTTP routes: threadline extensions under ``/v1/inspect`` that the web
inspector (``/ui``) uses, and that any client may use.

Every route is authenticated and tenant-scoped like the Conversations routes (a tenant sees
only its own sessions; another tenant's id is a 404) and answers failures in OpenAI's error
envelope. A session is named by the query parameter ``id`` (any session id, ``/`` included).
Routes that change a session answer ``403`` (``permission_error``, code ``read_only``) unless
the app was started with writes enabled (:func:`~threadline.server.inspector.enable_inspector`
with ``write=True``: ``threadline inspect --write``, ``threadline serve --ui --write``).

Reading (always allowed):

* ``GET /v1/inspect`` — the server: whether writes are enabled, the store, its capabilities
  and (for a key without a tenant) its session and item counts.
* ``GET /v1/inspect/sessions?limit=50&after=CURSOR&metadata.KEY=VALUE`` — sessions, most
  recently updated first, one cursor page at a time (``next_cursor``): id, title, preview,
  updated, items, turns, tokens in/out, metadata, badges (``busy``, ``compacted``,
  ``needs_repair``, ``corrupt``, ``pending_approval``, ``fork``). Each row reads a bounded
  amount of its session, so a page costs the same in a store of 100 or 100,000 sessions.
* ``GET /v1/inspect/search?q=TEXT&limit=20`` — items holding every word, with the snippet
  (``parts``: ``[text, matched]`` pairs) and the item's ``position`` to open it at.
* ``GET /v1/inspect/session?id=ID`` — one session's row plus its turn starts, usage per run,
  fork origin and compaction summary.
* ``GET /v1/inspect/session/items?id=ID&start=0&limit=2000`` — items by position, each with
  its token estimate; rows that cannot be decoded are listed in ``corrupt`` instead.
* ``GET /v1/inspect/session/context?id=ID[&max_tokens=N][&max_items=N][&model=NAME]`` — what
  the next request sends: the summary and the items it covers, the window's positions, and
  the budget split (summary, window, free). Without ``max_tokens`` the budget is the one the
  served agent's model fits (when its context window is known).
* ``GET /v1/inspect/session/health?id=ID`` — flags (a call without its output and the
  reverse, a corrupt row or record, a stale summary, a held lease, a run waiting for
  approvals) and the repair preview with its ``plan``.
* ``GET /v1/inspect/session/diff?id=FORK[&with=OTHER]`` — a fork beside its parent (or
  ``OTHER``), aligned on the shared prefix.
* ``GET /v1/inspect/session/export?id=ID&format=jsonl|markdown`` — the session as a file.

Writing (with writes enabled; each takes the session's writer lease like the Conversations
routes: busy is a ``409 conversation_busy`` unless ``X-Threadline-Lease-Wait`` is sent):

* ``POST /v1/inspect/session/metadata?id=ID`` ``{"metadata": {...}}`` — replace the
  metadata (its ``title`` renames the session).
* ``POST /v1/inspect/session/undo?id=ID`` — remove the last turn.
* ``POST /v1/inspect/session/fork?id=ID`` ``{"at_turn": K, "new_id": "..."}`` — a new
  session with the first ``K`` turns (all without ``at_turn``), the parent's metadata copied.
* ``POST /v1/inspect/session/compact?id=ID`` ``{"keep_tokens": N}`` — compact now with the
  served agent's model.
* ``POST /v1/inspect/session/repair?id=ID`` ``{"plan": "..."}`` — apply a repair preview
  (``409`` when the session changed since).
* ``DELETE /v1/inspect/session?id=ID`` — delete the session.
* ``POST /v1/inspect/import?id=ID&mode=refuse|append|replace`` with an export file as the
  body — import it (``id`` defaults to the file's).
"""

from __future__ import annotations

import asyncio
import bisect
import io
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import SessionError
from ..sessions._summary import read_summary
from ..sessions.base import SessionInfo
from ..sessions.codec import estimate_tokens
from ._context import api_route, context_of, route, tenant_of
from ._errors import bad_request, not_found
from ._ids import item_id_of
from ._inspect_context import agent_budget, fork_diff, next_request
from ._inspect_health import check_health
from ._inspect_http import Target, query_int, settings_of, target, visible_of
from ._inspect_markdown import conversation_markdown
from ._inspect_reads import SessionReader, lease_holders_of, list_summary, pairings_of

__all__ = ["PREFIX", "routes"]

PREFIX = "/v1/inspect"
"""Where the inspector's routes live."""

SCAN_LIMIT = 5000
"""The most sessions one list page looks through for the request's tenant before it returns
what it found (with the cursor to go on)."""

_MARK = re.compile(r"\*\*(.+?)\*\*")


def _records(store: Any) -> bool:
    return "records" in getattr(store, "capabilities", frozenset())


def _metadata_filter(request: Request) -> dict[str, str] | None:
    wanted = {
        key[len("metadata.") :]: value
        for key, value in request.query_params.multi_items()
        if key.startswith("metadata.") and len(key) > len("metadata.")
    }
    return wanted or None


@api_route
async def info(request: Request) -> Response:
    context = context_of(request)
    store = context.store
    stats = None
    if tenant_of(request).name is None:  # the whole store's counts are not a tenant's business
        counted = await store.stats()
        stats = {"sessions": counted.sessions, "items": counted.items}
    return JSONResponse(
        {
            "object": "inspect.server",
            "write": settings_of(request).write,
            "store": repr(store),
            "capabilities": sorted(getattr(store, "capabilities", frozenset())),
            "agents": context.agents.names,
            "stats": stats,
        }
    )


@api_route
async def list_sessions(request: Request) -> Response:
    store = context_of(request).store
    limit = query_int(request, "limit", 50, 1, 200)
    assert limit is not None
    cursor = request.query_params.get("after") or None
    wanted = _metadata_filter(request)
    if wanted and not _records(store):
        raise bad_request("this store keeps no metadata, so it cannot filter by it", "metadata")
    visible = visible_of(request)
    found: list[SessionInfo] = []
    scanned = 0
    while True:
        page = await store.list_sessions(
            limit - len(found), cursor, metadata=wanted, with_metadata=_records(store)
        )
        scanned += len(page) or 1
        found += [entry for entry in page if visible(entry.session_id) is not None]
        cursor = page.next_cursor
        if cursor is None or len(found) >= limit or scanned >= SCAN_LIMIT:
            break
    holders, pairings = await asyncio.gather(
        lease_holders_of(store, [entry.session_id for entry in found]), pairings_of(store, found)
    )
    data = await asyncio.gather(
        *(list_summary(store, entry, visible, holders, pairings) for entry in found)
    )
    return JSONResponse(
        {
            "object": "list",
            "data": list(data),
            "next_cursor": cursor,
            "has_more": cursor is not None,
        }
    )


def _snippet_parts(snippet: str) -> list[list[Any]]:
    parts: list[list[Any]] = []
    cursor = 0
    for match in _MARK.finditer(snippet):
        if match.start() > cursor:
            parts.append([snippet[cursor : match.start()], False])
        parts.append([match.group(1), True])
        cursor = match.end()
    if cursor < len(snippet):
        parts.append([snippet[cursor:], False])
    return parts


@api_route
async def search(request: Request) -> Response:
    store = context_of(request).store
    text = request.query_params.get("q", "")
    limit = query_int(request, "limit", 20, 1, 100)
    assert limit is not None
    if not text.strip():
        raise bad_request("Missing required query parameter: 'q'.", param="q")
    visible = visible_of(request)
    hits = [hit for hit in await store.search(text, limit=limit * 5) if visible(hit.session_id)]
    hits = hits[:limit]
    titles: dict[str, str | None] = {}
    for hit in hits:
        if hit.session_id not in titles:
            session = store.session(hit.session_id)
            titles[hit.session_id] = await session.title() if _records(store) else None
    data = [
        {
            "session_id": visible(hit.session_id),
            "title": titles.get(hit.session_id),
            "position": hit.position,
            "item_id": item_id_of(hit.item),
            "role": hit.item.get("role"),
            "type": hit.item.get("type", "message"),
            "snippet": hit.snippet,
            "parts": _snippet_parts(hit.snippet),
        }
        for hit in hits
    ]
    return JSONResponse({"object": "list", "data": data, "query": text})


def _turn_of(starts: list[int], start: int | None) -> int | None:
    """The index of the turn holding position ``start`` (``None``: the run has no start)."""
    if start is None:
        return None
    return max(0, bisect.bisect_right(starts, start) - 1)


@api_route
async def session_detail(request: Request) -> Response:
    store = context_of(request).store
    found = await target(request)
    visible = visible_of(request)
    holders, pairings = await asyncio.gather(
        lease_holders_of(store, [found.session_id]), pairings_of(store, [found.info])
    )
    body = await list_summary(store, found.info, visible, holders, pairings)
    reader = SessionReader(store, found.session_id, found.info.item_count)
    body["turn_starts"] = await reader.user_positions()
    body["runs"] = []
    body["origin"] = None
    body["summary"] = None
    if _records(store):
        session = store.session(found.session_id)
        usage = await session.usage()
        body["runs"] = [
            {
                "run": run.turn,
                "requests": run.requests,
                "input_tokens": run.input_tokens,
                "output_tokens": run.output_tokens,
                "time": run.time,
                "start": run.start,
                "turn_index": _turn_of(body["turn_starts"], run.start),
            }
            for run in usage.per_turn
        ]
        try:
            summary = await read_summary(session)
        except SessionError:
            summary = None  # damaged: the health check says so
        if summary is not None:
            body["summary"] = {
                "covers": [0, summary.end],
                "covered_tokens": summary.covered_tokens,
                "tokens": summary.tokens,
                "compactions": summary.compactions,
                "model": summary.model,
            }
        origin = await session.origin()
        if origin is not None:
            parent = origin.get("parent")
            body["origin"] = {
                "parent_id": visible(parent) if isinstance(parent, str) else None,
                "forked_at": origin.get("forked_at"),
                "at_turn": origin.get("at_turn"),
                "time": origin.get("time"),
            }
    body["write"] = settings_of(request).write
    return JSONResponse(body)


@api_route
async def session_items(request: Request) -> Response:
    store = context_of(request).store
    found = await target(request)
    count = found.info.item_count
    start = query_int(request, "start", 0, 0)
    limit = query_int(request, "limit", 2000, 1, 10000)
    assert start is not None and limit is not None
    read = await SessionReader(store, found.session_id, count).read(start, start + limit)
    return JSONResponse(
        {
            "object": "list",
            "id": found.visible_id,
            "total": count,
            "start": read.start,
            "stop": read.stop,
            "has_more": read.stop < count,
            "data": [
                {
                    "position": position,
                    "id": item_id_of(item),
                    "tokens": estimate_tokens(item),
                    "item": item,
                }
                for position, item in read.items
            ],
            "corrupt": [{"position": p, "reason": why} for p, why in read.corrupt],
        }
    )


@api_route
async def session_context(request: Request) -> Response:
    context = context_of(request)
    found = await target(request)
    max_tokens = query_int(request, "max_tokens", None, 1)
    max_items = query_int(request, "max_items", None, 1)
    name = request.query_params.get("model") or context.agents.default
    default_tokens, window = agent_budget(context.agents.get(name))
    body = await next_request(
        context.store,
        found.session_id,
        found.info.item_count,
        max_items=max_items,
        max_tokens=max_tokens,
        default_tokens=default_tokens,
        context_window=window,
    )
    body["id"] = found.visible_id
    body["agent"] = name
    return JSONResponse(body)


@api_route
async def session_health(request: Request) -> Response:
    found = await target(request)
    health = await check_health(context_of(request).store, found.info)
    body = dict(health.body)
    body["id"] = found.visible_id
    body["write"] = settings_of(request).write
    return JSONResponse(body)


@api_route
async def session_diff(request: Request) -> Response:
    store = context_of(request).store
    fork = await target(request)
    forked_at = None
    if request.query_params.get("with"):
        parent = await target(request, "with")
    else:
        origin = await store.session(fork.session_id).origin() if _records(store) else None
        parent_id = origin.get("parent") if isinstance(origin, dict) else None
        visible_parent = visible_of(request)(parent_id) if isinstance(parent_id, str) else None
        if visible_parent is None:
            raise bad_request(
                f"session '{fork.visible_id}' is not a fork: name the session to compare "
                "with as 'with'",
                param="with",
            )
        forked_at = origin.get("forked_at") if isinstance(origin, dict) else None
        info = await store.session_info(parent_id)
        if info is None:
            raise not_found(
                f"the parent '{visible_parent}' of session '{fork.visible_id}' was deleted",
                param="id",
            )
        parent = Target(visible_parent, str(parent_id), info)
    body = await fork_diff(
        store,
        (parent.session_id, parent.visible_id, parent.info.item_count),
        (fork.session_id, fork.visible_id, fork.info.item_count),
        forked_at if isinstance(forked_at, int) else None,
    )
    return JSONResponse(body)


def _filename(visible_id: str, suffix: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", visible_id).strip("._") or "session"
    return f"{safe[:100]}{suffix}"


@api_route
async def session_export(request: Request) -> Response:
    store = context_of(request).store
    found = await target(request)
    kind = request.query_params.get("format", "jsonl")
    if kind == "jsonl":
        if not hasattr(store, "export_jsonl"):
            raise bad_request("this store cannot export sessions", param="format")
        buffer = io.StringIO()
        await store.export_jsonl(found.session_id, buffer)
        text = buffer.getvalue()
        header_line, _, rest = text.partition("\n")
        header = json.loads(header_line)
        header["session_id"] = found.visible_id  # the id the tenant knows
        text = json.dumps(header, ensure_ascii=False, separators=(",", ":")) + "\n" + rest
        return Response(
            text,
            media_type="application/x-ndjson",
            headers={
                "content-disposition": f'attachment; filename="{_filename(found.visible_id, ".jsonl")}"'
            },
        )
    if kind != "markdown":
        raise bad_request(
            f"Invalid 'format': 'jsonl' or 'markdown' expected, got {kind!r}.", "format"
        )
    count = found.info.item_count
    read = await SessionReader(store, found.session_id, count).read(0, count)
    session = store.session(found.session_id)
    metadata = await session.get_metadata() if _records(store) else {}
    title = await session.title() if _records(store) else None
    text = conversation_markdown(found.visible_id, title, metadata, read.items, read.corrupt)
    return Response(
        text,
        media_type="text/markdown; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{_filename(found.visible_id, ".md")}"'
        },
    )


def routes() -> list[Route]:
    """The inspector's routes (reading here; writing in ``_inspect_write``)."""
    from . import _inspect_write as write

    return [
        route(PREFIX, GET=info),
        route(f"{PREFIX}/sessions", GET=list_sessions),
        route(f"{PREFIX}/search", GET=search),
        route(f"{PREFIX}/session", GET=session_detail, DELETE=write.delete_session),
        route(f"{PREFIX}/session/items", GET=session_items),
        route(f"{PREFIX}/session/context", GET=session_context),
        route(f"{PREFIX}/session/health", GET=session_health),
        route(f"{PREFIX}/session/diff", GET=session_diff),
        route(f"{PREFIX}/session/export", GET=session_export),
        route(f"{PREFIX}/session/metadata", POST=write.set_metadata),
        route(f"{PREFIX}/session/undo", POST=write.undo),
        route(f"{PREFIX}/session/fork", POST=write.fork),
        route(f"{PREFIX}/session/compact", POST=write.compact),
        route(f"{PREFIX}/session/repair", POST=write.repair),
        route(f"{PREFIX}/import", POST=write.import_session),
    ]
