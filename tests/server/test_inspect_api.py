"""The inspector's routes under /v1/inspect, over HTTP (the browser tests are in tests/ui)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline.server import create_app
from threadline.server._auth import Tenant
from threadline.server.inspector import CONTENT_SECURITY_POLICY, enable_inspector
from threadline.sessions import open_store
from threadline.sessions._summary import SUMMARY_RECORD, Summary, item_digest
from threadline.testing import ScriptedModel

from .conftest import Reply, _Server, _start, http

Seed = Callable[..., Any]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "inspect.db"


@pytest.fixture
def seed(db: Path) -> Seed:
    """Run ``fn(store)`` (a coroutine function) on a store of its own over the test's file."""

    def run(fn: Callable[[Any], Any]) -> Any:
        async def go() -> Any:
            store = open_store(f"sqlite:///{db}?synchronous=NORMAL")
            try:
                return await fn(store)
            finally:
                await store.aclose()

        return asyncio.run(go())

    return run


@pytest.fixture
def start(db: Path) -> Iterator[Callable[..., str]]:
    """Start an inspector app on the test's file; returns its root URL."""
    running: list[tuple[_Server, threading.Thread]] = []

    def go(*, write: bool = False, ui: bool = True, **options: Any) -> str:
        options.setdefault("model", ScriptedModel(responder=lambda request: "A short summary."))
        app = enable_inspector(create_app(f"sqlite:///{db}", **options), write=write, ui=ui)
        server, thread, port = _start(app)
        running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield go
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=30)


def call(
    root: str, method: str, path: str, body: Any = None, key: str | None = None, **params: Any
) -> Reply:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return http(method, f"{root}/v1/inspect{path}{query}", body, headers=headers)


def ok(reply: Reply) -> Any:
    assert reply.status == 200, reply.body
    return reply.json()


CHAT = [
    {"role": "user", "content": "What city is the Golden Gate Bridge in?"},
    {
        "type": "function_call",
        "call_id": "c1",
        "name": "lookup",
        "arguments": '{"q": "golden gate"}',
    },
    {"type": "function_call_output", "call_id": "c1", "output": '{"city": "San Francisco"}'},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "San Francisco."}],
    },
    {"role": "user", "content": "What state is it in?"},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "California."}],
    },
]


async def _chat(
    store: Any, session_id: str = "chat", metadata: dict[str, Any] | None = None
) -> None:
    session = store.session(session_id)
    await session.add_items(CHAT)
    if metadata:
        await session.set_metadata(metadata)


def test_list_rows_have_title_preview_counts_usage_tags_and_badges(
    start: Callable[..., str], seed: Seed
) -> None:
    async def fill(store: Any) -> None:
        await _chat(store, "chat", {"title": "Bridge", "user": "u1"})
        session = store.session("chat")
        await session.put_records(
            {
                "usage": {
                    "requests": 3,
                    "input_tokens": 120,
                    "output_tokens": 30,
                    "total_tokens": 150,
                    "turns": 2,
                }
            }
        )
        await session.fork("chat-fork", at_turn=1)
        await store.session("broken").add_items(
            [
                {"role": "user", "content": "hi"},
                {"type": "function_call", "call_id": "x", "name": "f", "arguments": "{}"},
            ]
        )

    seed(fill)
    root = start()
    page = ok(call(root, "GET", "/sessions"))
    rows = {row["id"]: row for row in page["data"]}
    assert list(rows) == ["broken", "chat-fork", "chat"]  # newest first
    chat = rows["chat"]
    assert (chat["title"], chat["preview"], chat["items"], chat["turns"]) == (
        "Bridge",
        "California.",
        6,
        2,
    )
    assert chat["usage"] == {
        "requests": 3,
        "input_tokens": 120,
        "output_tokens": 30,
        "total_tokens": 150,
        "runs": 2,
    }
    assert chat["metadata"] == {"title": "Bridge", "user": "u1"}
    assert not any(chat["badges"].values())
    fork = rows["chat-fork"]
    assert fork["title"] == "What city is the Golden Gate Bridge in?"  # derived: no metadata
    assert (fork["badges"]["fork"], fork["parent_id"], fork["items"]) == (True, "chat", 4)
    assert rows["broken"]["badges"]["needs_repair"] is True
    filtered = ok(call(root, "GET", "/sessions", **{"metadata.user": "u1"}))
    assert [row["id"] for row in filtered["data"]] == ["chat"]


def test_paging_is_exact_newest_first(start: Callable[..., str], seed: Seed) -> None:
    async def fill(store: Any) -> None:
        for index in range(7):
            await store.session(f"s{index}").add_items([{"role": "user", "content": f"n{index}"}])

    seed(fill)
    root = start()
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = ok(call(root, "GET", "/sessions", limit=3, **({"after": cursor} if cursor else {})))
        assert len(page["data"]) <= 3
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert seen == [f"s{index}" for index in reversed(range(7))]
    assert call(root, "GET", "/sessions", limit=0).status == 400
    assert call(root, "GET", "/sessions", after="garbage").status == 400


def test_items_by_position_step_around_a_corrupt_row(
    start: Callable[..., str], seed: Seed, db: Path
) -> None:
    seed(lambda store: _chat(store))
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE threadline_items SET data = 'not json' WHERE seq = 2 AND sid = "
            "(SELECT sid FROM threadline_sessions WHERE session_id = 'chat')"
        )
    root = start()
    page = ok(call(root, "GET", "/session/items", id="chat"))
    assert [row["position"] for row in page["data"]] == [0, 1, 3, 4, 5]
    assert page["corrupt"][0]["position"] == 2 and "JSON" in page["corrupt"][0]["reason"]
    assert all(row["tokens"] >= 1 for row in page["data"])
    part = ok(call(root, "GET", "/session/items", id="chat", start=4, limit=1))
    assert ([row["position"] for row in part["data"]], part["has_more"]) == ([4], True)
    health = ok(call(root, "GET", "/session/health", id="chat"))
    kinds = {flag["kind"] for flag in health["flags"]}
    # the call at #1 lost its output with row 2
    assert {"corrupt_item", "call_without_output"} <= kinds
    assert [drop["position"] for drop in health["repair"]["drop"]] == [1, 2]
    row = ok(call(root, "GET", "/sessions"))["data"][0]
    assert row["badges"]["corrupt"] is True


def test_health_repair_preview_then_apply(start: Callable[..., str], seed: Seed) -> None:
    async def fill(store: Any) -> None:
        await store.session("orphans").add_items(
            [
                {"role": "user", "content": "q"},
                {"type": "function_call_output", "call_id": "ghost", "output": "?"},
                {"type": "message", "role": "assistant", "content": "a"},
                {"role": "user", "content": "again"},
                {"type": "function_call", "call_id": "c9", "name": "f", "arguments": "{}"},
            ]
        )

    seed(fill)
    root = start(write=True)
    health = ok(call(root, "GET", "/session/health", id="orphans"))
    assert [flag["kind"] for flag in health["flags"]] == [
        "call_without_output",
        "output_without_call",
    ]
    assert health["lease"]["held"] is False
    plan = health["repair"]["plan"]
    assert [drop["position"] for drop in health["repair"]["drop"]] == [1, 4]
    assert call(root, "POST", "/session/repair", {"plan": "stale"}, id="orphans").status == 409
    done = ok(call(root, "POST", "/session/repair", {"plan": plan}, id="orphans"))
    assert (done["dropped"], done["items"]) == (2, 3)
    assert ok(call(root, "GET", "/session/health", id="orphans"))["healthy"] is True
    assert call(root, "POST", "/session/repair", {"plan": plan}, id="orphans").status == 409


def test_a_held_lease_is_flagged(start: Callable[..., str], seed: Seed, db: Path) -> None:
    seed(lambda store: _chat(store))
    root = start()
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        async def go() -> None:
            store = open_store(f"sqlite:///{db}")
            async with store.session("chat").lease(ttl=30):
                held.set()
                await asyncio.to_thread(release.wait, 30)
            await store.aclose()

        asyncio.run(go())

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        health = ok(call(root, "GET", "/session/health", id="chat"))
        assert health["lease"]["held"] is True
        assert any(flag["kind"] == "lease_held" for flag in health["flags"])
    finally:
        release.set()
        thread.join(10)
    assert ok(call(root, "GET", "/session/health", id="chat"))["healthy"] is True


def test_context_shows_the_summary_window_and_split(start: Callable[..., str], seed: Seed) -> None:
    async def fill(store: Any) -> None:
        session = store.session("long")
        items: list[dict[str, Any]] = []
        for turn in range(6):
            items += [
                {"role": "user", "content": f"question {turn} " + "x" * 200},
                {"type": "message", "role": "assistant", "content": f"answer {turn} " + "y" * 200},
            ]
        await session.add_items(items)
        summary = Summary(
            text="They talked about six things.",
            end=8,
            anchor=item_digest(items[7]),
            covered_tokens=480,
            compactions=2,
            created_at=1.0,
            model="scripted",
        )
        await session.put_records({SUMMARY_RECORD: summary.to_record()})

    seed(fill)
    root = start()
    whole = ok(call(root, "GET", "/session/context", id="long"))
    assert whole["summary"]["covers"] == [0, 8] and whole["summary"]["sent"] is True
    assert whole["summary"]["compactions"] == 2 and whole["summary"]["holds"] is True
    assert whole["window"]["positions"] == [8, 9, 10, 11]
    assert whole["budget"]["source"] == "none" and whole["split"]["free"] is None
    tight = ok(call(root, "GET", "/session/context", id="long", max_tokens=200))
    assert tight["window"]["positions"] == [10, 11]
    split = tight["split"]
    assert split["summary"] == whole["split"]["summary"] > 0
    assert split["summary"] + split["window"] + split["free"] == 200
    assert tight["budget"]["source"] == "request"
    detail = ok(call(root, "GET", "/session", id="long"))
    assert detail["summary"]["covers"] == [0, 8] and detail["badges"]["compacted"] is True


def test_diff_aligns_a_fork_on_the_shared_prefix(start: Callable[..., str], seed: Seed) -> None:
    async def fill(store: Any) -> None:
        await _chat(store)
        fork = await store.session("chat").fork("other", at_turn=1)
        await fork.add_items([{"role": "user", "content": "And its length?"}])

    seed(fill)
    root = start()
    diff = ok(call(root, "GET", "/session/diff", id="other"))
    assert (diff["shared"], diff["shared_turns"], diff["forked_at"]) == (4, 1, 4)
    assert [row["position"] for row in diff["parent"]["data"]] == [4, 5]
    assert [row["item"]["content"] for row in diff["fork"]["data"]] == ["And its length?"]
    assert call(root, "GET", "/session/diff", id="chat").status == 400  # not a fork
    assert ok(call(root, "GET", "/session/diff", id="chat", **{"with": "other"}))["shared"] == 4


def test_search_gives_snippets_and_positions(start: Callable[..., str], seed: Seed) -> None:
    seed(lambda store: _chat(store, metadata={"title": "Bridge"}))
    root = start()
    found = ok(call(root, "GET", "/search", q="california"))
    hit = found["data"][0]
    assert (hit["session_id"], hit["position"], hit["title"]) == ("chat", 5, "Bridge")
    assert ["California", True] in hit["parts"]
    assert call(root, "GET", "/search").status == 400


def test_exports_jsonl_and_markdown(start: Callable[..., str], seed: Seed) -> None:
    async def fill(store: Any) -> None:
        await _chat(store, metadata={"title": "Bridge", "user": "u1"})
        await store.session("chat").add_items(
            [
                {"role": "user", "content": "code?"},
                {"type": "message", "role": "assistant", "content": "```py\nx = 1\n```"},
            ]
        )

    seed(fill)
    root = start()
    jsonl = call(root, "GET", "/session/export", id="chat", format="jsonl")
    assert jsonl.status == 200 and "attachment" in jsonl.headers["content-disposition"]
    lines = jsonl.body.decode().splitlines()
    header = json.loads(lines[0])
    assert (header["session_id"], header["item_count"], header["metadata"]["user"]) == (
        "chat",
        8,
        "u1",
    )
    assert [json.loads(line) for line in lines[1:7]] == CHAT
    markdown = call(root, "GET", "/session/export", id="chat", format="markdown")
    text = markdown.body.decode()
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert text.startswith("# Bridge\n") and "## Turn 3" in text
    assert "````text\n```py\nx = 1\n```\n````" in text  # a longer fence around the stored one
    assert call(root, "GET", "/session/export", id="chat", format="pdf").status == 400


def test_writes_are_refused_when_read_only(start: Callable[..., str], seed: Seed) -> None:
    seed(lambda store: _chat(store))
    root = start(write=False)
    info = ok(call(root, "GET", ""))
    assert info["write"] is False
    for method, path, body in [
        ("POST", "/session/metadata", {"metadata": {"title": "x"}}),
        ("POST", "/session/undo", {}),
        ("POST", "/session/fork", {}),
        ("POST", "/session/compact", {}),
        ("POST", "/session/repair", {"plan": "x"}),
        ("DELETE", "/session", None),
    ]:
        reply = call(root, method, path, body, id="chat")
        assert reply.status == 403, (path, reply.body)
        error = reply.json()["error"]
        assert error["code"] == "read_only" and "--write" in error["message"]
        assert error["type"] == "permission_error"
    imported = http(
        "POST",
        f"{root}/v1/inspect/import",
        raw=b"{}\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert imported.status == 403
    assert ok(call(root, "GET", "/session", id="chat"))["items"] == 6  # nothing changed
    assert call(root, "PUT", "/session", {}, id="chat").status == 405


def test_write_actions(start: Callable[..., str], seed: Seed) -> None:
    seed(lambda store: _chat(store, metadata={"user": "u1"}))
    root = start(write=True)
    saved = ok(
        call(
            root,
            "POST",
            "/session/metadata",
            {"metadata": {"title": "Renamed", "user": "u2"}},
            id="chat",
        )
    )
    assert saved["metadata"] == {"title": "Renamed", "user": "u2"}
    assert ok(call(root, "GET", "/session", id="chat"))["title"] == "Renamed"
    assert (
        call(root, "POST", "/session/metadata", {"metadata": {"title": 3}}, id="chat").status == 400
    )
    fork = ok(call(root, "POST", "/session/fork", {"at_turn": 1, "new_id": "branch"}, id="chat"))
    assert (fork["id"], fork["items"], fork["parent_id"]) == ("branch", 4, "chat")
    branch = ok(call(root, "GET", "/session", id="branch"))
    assert branch["origin"]["parent_id"] == "chat" and branch["metadata"]["user"] == "u2"
    assert (
        call(root, "POST", "/session/fork", {"new_id": "branch"}, id="chat").status == 400
    )  # taken
    undone = ok(call(root, "POST", "/session/undo", id="chat"))
    assert (undone["removed"], undone["items"]) == (2, 4)
    exported = call(root, "GET", "/session/export", id="chat", format="jsonl").body
    imported = ok(http("POST", f"{root}/v1/inspect/import?id=copy", raw=exported))
    assert (imported["id"], imported["items"]) == ("copy", 4)
    again = http("POST", f"{root}/v1/inspect/import?id=copy", raw=exported)
    assert again.status == 400 and "exists" in again.json()["error"]["message"]
    assert (
        ok(http("POST", f"{root}/v1/inspect/import?id=copy&mode=append", raw=exported))["items"]
        == 4
    )
    bad = http(
        "POST",
        f"{root}/v1/inspect/import?id=bad",
        raw=b'{"role": "user", "content": "x"}\nnot json\n',
    )
    assert bad.status == 400
    compacted = ok(call(root, "POST", "/session/compact", {"keep_tokens": 0}, id="copy"))
    assert compacted["status"] in ("compacted", "skipped", "rejected"), compacted
    deleted = ok(call(root, "DELETE", "/session", id="branch"))
    assert deleted["deleted"] is True
    assert call(root, "GET", "/session", id="branch").status == 404


def test_tenants_see_only_their_own_sessions(start: Callable[..., str], seed: Seed) -> None:
    async def fill(store: Any) -> None:
        await _chat(store, Tenant("acme").session_id("mine"))
        await _chat(store, Tenant("globex").session_id("theirs"))

    seed(fill)
    root = start(write=True, api_keys={"key-for-acme-1": "acme", "key-for-globex": "globex"})
    assert call(root, "GET", "/sessions").status == 401
    mine = ok(call(root, "GET", "/sessions", key="key-for-acme-1"))
    assert [row["id"] for row in mine["data"]] == ["mine"]
    assert call(root, "GET", "/session", key="key-for-acme-1", id="theirs").status == 404
    assert (
        call(
            root, "GET", "/session", key="key-for-acme-1", id=Tenant("globex").session_id("theirs")
        ).status
        == 404
    )
    hits = ok(call(root, "GET", "/search", key="key-for-acme-1", q="california"))["data"]
    assert {hit["session_id"] for hit in hits} == {"mine"}
    exported = call(root, "GET", "/session/export", key="key-for-acme-1", id="mine").body
    assert json.loads(exported.splitlines()[0])["session_id"] == "mine"  # no tenant prefix
    assert call(root, "DELETE", "/session", key="key-for-globex", id="mine").status == 404
    page = http("GET", f"{root}/ui/")  # the page itself is public: it holds no data
    assert page.status == 200


def test_the_page_is_served_with_a_strict_policy(start: Callable[..., str]) -> None:
    root = start()
    page = http("GET", f"{root}/ui/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    html = page.body.decode()
    assert "<script>" not in html and " style=" not in html and "onclick" not in html
    assert 'src="js/app.js"' in html and "http" not in html.replace("http-equiv", "")
    script = http("GET", f"{root}/ui/js/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    redirected = http("GET", f"{root}/ui")  # 307 to /ui/ (urllib follows it)
    assert redirected.status == 200 and redirected.body == page.body
    assert http("GET", f"{root}/ui/../pyproject.toml").status == 404
    assert http("POST", f"{root}/ui/", {}).status == 405
    assert http("GET", f"{root}/ui/missing.js").status == 404


def test_without_the_page_the_routes_still_answer(start: Callable[..., str]) -> None:
    root = start(ui=False)
    assert http("GET", f"{root}/ui/").status in (401, 404)
    assert ok(call(root, "GET", ""))["write"] is False


ODD = [
    "",
    "0",
    "-1",
    "999999999999",
    "x",
    "%",
    "\ud7ff",
    "a" * 600,
    "responses:abc",
    "../chat",
    "1e9",
]


def test_odd_input_is_a_4xx_never_a_5xx(start: Callable[..., str], seed: Seed) -> None:
    seed(lambda store: _chat(store))
    root = start(write=True)
    gets = [
        ("/sessions", ["limit", "after", "metadata.user"]),
        ("/search", ["q", "limit"]),
        ("/session", ["id"]),
        ("/session/items", ["id", "start", "limit"]),
        ("/session/context", ["id", "max_tokens", "max_items", "model"]),
        ("/session/health", ["id"]),
        ("/session/diff", ["id", "with"]),
        ("/session/export", ["id", "format"]),
    ]
    for path, names in gets:
        for name in names:
            for value in ODD:
                params = {"id": "chat", name: value}
                reply = call(root, "GET", path, **params)
                assert reply.status < 500, (path, name, value, reply.body)
    bodies: list[Any] = [
        {"at_turn": "x"},
        {"at_turn": -99},
        {"at_turn": 10**9},
        {"new_id": ""},
        {"new_id": 5},
        {"metadata": []},
        {"metadata": {"title": "x" * 20000}},
        {"keep_tokens": -1},
        {"plan": 3},
        [],
        "text",
    ]
    for path in ("/session/fork", "/session/metadata", "/session/compact", "/session/repair"):
        for body in bodies:
            reply = call(
                root,
                "POST",
                path,
                body,
                id="chat",
            )
            assert reply.status < 500, (path, body, reply.body)
    for raw in [
        b"",
        b"\xff\xfe",
        b"[]\n",
        b'{"format": "threadline.session", "version": 99}\n',
        b"null\n",
    ]:
        reply = http("POST", f"{root}/v1/inspect/import?id=odd", raw=raw)
        assert reply.status < 500, (raw, reply.body)


def test_the_openapi_fragment_names_every_route() -> None:
    from starlette.routing import Route

    from threadline.server._inspect_openapi import openapi_paths
    from threadline.server.inspect_api import routes

    served = {
        (route.path, method.lower())
        for route in routes()
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    described = {(path, method) for path, item in openapi_paths().items() for method in item}
    assert described == served
    for item in openapi_paths().values():
        for operation in item.values():
            assert operation["operationId"].startswith("inspect")
            assert "threadline extensions" in operation["tags"]


def test_a_writer_of_this_server_shows_as_busy(seed: Seed, db: Path) -> None:
    seed(lambda store: _chat(store))
    app = enable_inspector(create_app(f"sqlite:///{db}"))
    server, thread, port = _start(app)
    root = f"http://127.0.0.1:{port}"
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        async def go() -> None:
            async with app.state.threadline.store.session("chat").lease(ttl=30):
                held.set()
                await asyncio.to_thread(release.wait, 30)

        asyncio.run(go())

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        row = ok(call(root, "GET", "/sessions"))["data"][0]
        assert row["badges"]["busy"] is True
        lease = ok(call(root, "GET", "/session/health", id="chat"))["lease"]
        assert lease == {"held": True, "holder": "a request of this server", "expires_in": None}
    finally:
        release.set()
        holder.join(10)
        server.should_exit = True
        thread.join(30)


def test_a_lease_held_by_another_store_shows_as_busy_with_its_holder(
    seed: Seed, db: Path, start: Callable[..., str]
) -> None:
    """Another store object on the same file (as another process would hold it): the list's
    busy badge and the health view read the holder from the store, not this process."""
    seed(lambda store: _chat(store))
    root = start()
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        async def go() -> None:
            store = open_store(f"sqlite:///{db}")
            try:
                async with store.session("chat").lease(ttl=30):
                    held.set()
                    await asyncio.to_thread(release.wait, 30)
            finally:
                await store.aclose()

        asyncio.run(go())

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        row = ok(call(root, "GET", "/sessions"))["data"][0]
        assert row["badges"]["busy"] is True
        assert row["lease"]["holder"].startswith("pid ") and row["lease"]["checked"] == "store"
        assert 0 < row["lease"]["expires_in"] <= 30
        lease = ok(call(root, "GET", "/session/health", id="chat"))["lease"]
        assert lease["held"] is True and lease["holder"] == row["lease"]["holder"]
    finally:
        release.set()
        holder.join(10)
    row = ok(call(root, "GET", "/sessions"))["data"][0]
    assert row["badges"]["busy"] is False and row["lease"]["holder"] is None
    assert ok(call(root, "GET", "/session/health", id="chat"))["lease"]["held"] is False


def test_runs_name_the_turn_their_usage_belongs_to(start: Callable[..., str], seed: Seed) -> None:
    """A run record's ``start`` places it in its turn; one without (older threadline) has
    no turn index."""

    async def fill(store: Any) -> None:
        await _chat(store)
        run = {"requests": 1, "input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
        await store.session("chat").put_records(
            {
                "usage/00000001": {"turn": 1, **run, "time": "t1"},  # written before start
                "usage/00000002": {"turn": 2, **run, "time": "t2", "start": 4},
                "usage/00000003": {"turn": 3, **run, "time": "t3", "start": 5},  # resumed
            }
        )

    seed(fill)
    detail = ok(call(start(), "GET", "/session", id="chat"))
    assert detail["turn_starts"] == [0, 4]
    assert [(r["run"], r["start"], r["turn_index"]) for r in detail["runs"]] == [
        (1, None, None),
        (2, 4, 1),
        (3, 5, 1),
    ]


def test_needs_repair_covers_function_calls_in_the_whole_session(
    start: Callable[..., str], seed: Seed
) -> None:
    def pair(n: int) -> list[dict[str, Any]]:
        return [
            {"type": "function_call", "call_id": f"k{n}", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": f"k{n}", "output": "ok"},
        ]

    long_tail = [item for n in range(25) for item in pair(n)]  # 50 healthy items after it

    async def fill(store: Any) -> None:
        lone = {"type": "function_call", "call_id": "lost", "name": "f", "arguments": "{}"}
        await store.session("old-orphan").add_items([CHAT[0], lone, *long_tail])
        await store.session("long-healthy").add_items([CHAT[0], *long_tail])
        await _chat(store, "short")

    seed(fill)
    root = start()
    rows = {row["id"]: row for row in ok(call(root, "GET", "/sessions"))["data"]}
    assert rows["old-orphan"]["badges"]["needs_repair"] is True  # item 1, far before the tail
    assert rows["old-orphan"]["repair_checked"] == "function_calls"
    assert rows["long-healthy"]["badges"]["needs_repair"] is False
    assert rows["long-healthy"]["repair_checked"] == "function_calls"
    assert rows["short"]["repair_checked"] == "all"

    async def answer(store: Any) -> None:  # the lost call gets its (late) output
        output = {"type": "function_call_output", "call_id": "lost", "output": "late"}
        await store.session("old-orphan").add_items([output])

    seed(answer)
    again = {row["id"]: row for row in ok(call(root, "GET", "/sessions"))["data"]}
    assert again["old-orphan"]["badges"]["needs_repair"] is False  # read again, not kept
    assert again["long-healthy"]["badges"]["needs_repair"] is False


def test_every_route_documents_the_one_error_schema(start: Callable[..., str]) -> None:
    """serve's routes and the inspector's extensions share ERROR_SCHEMA, which is what an
    error body holds (every key it requires is present)."""
    from threadline.server._errors import ERROR_SCHEMA

    root = start()
    document = http("GET", f"{root}/openapi.json").json()
    schemas = [
        operation["responses"]["default"]["content"]["application/json"]["schema"]
        for path, item in document["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
    inspector = [path for path in document["paths"] if path.startswith("/v1/inspect")]
    assert inspector and len(schemas) > len(inspector)
    assert all(schema == ERROR_SCHEMA for schema in schemas)
    body = call(root, "GET", "/session", id="nobody").json()
    assert set(body["error"]) == set(ERROR_SCHEMA["properties"]["error"]["required"])
