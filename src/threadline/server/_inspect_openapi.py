"""The inspector's routes as OpenAPI 3.1 path items (see :func:`openapi_paths`), tagged as
threadline extensions, to publish beside the app's other routes."""

from __future__ import annotations

from typing import Any

from ._errors import ERROR_SCHEMA

__all__ = ["openapi_paths"]

_ID = {"name": "id", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}}
_WAIT = {
    "name": "X-Threadline-Lease-Wait",
    "in": "header",
    "description": "seconds to wait for a busy session (default 0: a 409 at once)",
    "schema": {"type": "number", "minimum": 0},
}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        found["description"] = description
    return found


def _count(low: int, high: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return schema


def _op(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    *,
    body: dict[str, Any] | None = None,
    content: str = "application/json",
    write: bool = False,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK", "content": {content: {"schema": {"type": "object"}}}}
    if content != "application/json":
        ok["content"] = {content: {"schema": {"type": "string"}}}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["threadline extensions", "inspector"],
        "parameters": parameters + ([_WAIT] if write else []),
        "responses": {
            "200": ok,
            "default": {
                "description": "OpenAI's error envelope (403 read_only without --write, 404, "
                "409 busy or outdated, …)",
                "content": {"application/json": {"schema": ERROR_SCHEMA}},
            },
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def openapi_paths(prefix: str = "/v1/inspect") -> dict[str, Any]:
    """Path item objects of every inspector route, by path."""
    empty = {"type": "object"}
    session = f"{prefix}/session"
    return {
        prefix: {"get": _op("inspectServer", "The inspector's server: write switch, store", [])},
        f"{prefix}/sessions": {
            "get": _op(
                "inspectListSessions",
                "Sessions, most recently updated first, with titles, previews and badges",
                [
                    _query("limit", _count(1, 200)),
                    _query("after", {"type": "string"}, "the previous page's next_cursor"),
                ],
            )
        },
        f"{prefix}/search": {
            "get": _op(
                "inspectSearch",
                "Items holding every word, with snippets and positions",
                [
                    {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
                    _query("limit", _count(1, 100)),
                ],
            )
        },
        session: {
            "get": _op("inspectSession", "One session: row, turn starts, runs, origin", [_ID]),
            "delete": _op("inspectDeleteSession", "Delete the session", [_ID], write=True),
        },
        f"{session}/items": {
            "get": _op(
                "inspectItems",
                "Items by position with token estimates",
                [_ID, _query("start", _count(0)), _query("limit", _count(1, 10000))],
            )
        },
        f"{session}/context": {
            "get": _op(
                "inspectContext",
                "What the next request sends: summary, window, budget split",
                [
                    _ID,
                    _query("max_tokens", _count(1)),
                    _query("max_items", _count(1)),
                    _query("model", {"type": "string"}, "a served agent (default: the first)"),
                ],
            )
        },
        f"{session}/health": {
            "get": _op("inspectHealth", "Health flags and the repair preview", [_ID])
        },
        f"{session}/diff": {
            "get": _op(
                "inspectDiff",
                "A fork beside its parent (or another session)",
                [_ID, _query("with", {"type": "string"}, "the session to compare with")],
            )
        },
        f"{session}/export": {
            "get": _op(
                "inspectExport",
                "The session as a JSON lines export or as Markdown",
                [_ID, _query("format", {"enum": ["jsonl", "markdown"]})],
                content="application/x-ndjson",
            )
        },
        f"{session}/metadata": {
            "post": _op(
                "inspectSetMetadata",
                "Replace the metadata (its title renames the session)",
                [_ID],
                body={
                    "type": "object",
                    "required": ["metadata"],
                    "properties": {"metadata": empty},
                },
                write=True,
            )
        },
        f"{session}/undo": {"post": _op("inspectUndo", "Remove the last turn", [_ID], write=True)},
        f"{session}/fork": {
            "post": _op(
                "inspectFork",
                "A new session with the first at_turn turns",
                [_ID],
                body={
                    "type": "object",
                    "properties": {
                        "at_turn": {"type": ["integer", "null"]},
                        "new_id": {"type": ["string", "null"]},
                    },
                },
                write=True,
            )
        },
        f"{session}/compact": {
            "post": _op(
                "inspectCompact",
                "Compact now with the served agent's model",
                [_ID],
                body={
                    "type": "object",
                    "properties": {"keep_tokens": {"type": ["integer", "null"], "minimum": 0}},
                },
                write=True,
            )
        },
        f"{session}/repair": {
            "post": _op(
                "inspectRepair",
                "Apply a repair preview (409 when the session changed since)",
                [_ID],
                body={
                    "type": "object",
                    "required": ["plan"],
                    "properties": {"plan": {"type": "string"}},
                },
                write=True,
            )
        },
        f"{prefix}/import": {
            "post": {
                **_op(
                    "inspectImport",
                    "Import a JSON lines export (the request body)",
                    [
                        _query("id", {"type": "string"}, "the session to import into"),
                        _query("mode", {"enum": ["refuse", "append", "replace"]}),
                    ],
                    write=True,
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                },
            }
        },
    }
