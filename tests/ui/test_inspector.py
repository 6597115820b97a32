"""The web inspector in chromium: list, paging, filter, search, conversation, context, fork,
undo, export, import, delete, read-only refusal, health and repair, escaping, keyboard."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from threadline.sessions._summary import SUMMARY_RECORD, Summary, item_digest

from .conftest import Inspector, Watched

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


def _chat(
    session_id: str, metadata: dict[str, Any] | None = None, items: list[Any] | None = None
) -> Any:
    async def fill(store: Any) -> None:
        session = store.session(session_id)
        await session.add_items(list(items if items is not None else CHAT))
        if metadata:
            await session.set_metadata(metadata)

    return fill


def goto(page: Any, root: str, where: str = "") -> None:
    page.goto(f"{root}/ui/{where}")
    page.wait_for_function("() => document.getElementById('mode')?.textContent !== ''")


def filter_list(page: Any, text: str) -> None:
    page.fill("#filter", text)
    page.press("#filter", "Enter")
    page.wait_for_function(
        "() => !document.getElementById('list-status')?.textContent.startsWith('Loading')"
    )


def listed(page: Any) -> list[str]:
    return page.eval_on_selector_all("#session-list li", "els => els.map(e => e.dataset.id)")


def count_of(inspector: Inspector, session_id: str) -> int | None:
    async def read(store: Any) -> int | None:
        info = await store.session_info(session_id)
        return None if info is None else info.item_count

    return inspector.seed(read)  # type: ignore[no-any-return]


def test_the_list_shows_each_session_at_a_glance(page: Any, inspector: Inspector) -> None:
    async def fill(store: Any) -> None:
        await _chat("list-a", {"title": "Bridge trip", "test": "list", "user": "u1"})(store)
        session = store.session("list-a")
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
        fork = await session.fork("list-a-fork", at_turn=1)
        await fork.set_metadata({"test": "list"})
        await _chat("list-b", {"test": "list"}, CHAT[:2])(store)

    inspector.seed(fill)
    goto(page, inspector.root)
    filter_list(page, "test=list")
    assert listed(page) == ["list-b", "list-a-fork", "list-a"]  # most recently updated first
    row = page.locator("#session-list li[data-id='list-a']")
    assert row.locator(".title").inner_text() == "Bridge trip"
    assert row.locator(".preview").inner_text() == "California."
    assert row.locator(".counts").inner_text() == "2 turns · 6 items"
    assert row.locator(".tokens").inner_text() == "120 in / 30 out"
    assert "user=u1" in row.locator(".row3").inner_text()
    assert (
        page.locator("#session-list li[data-id='list-b'] .badge.bad").inner_text() == "needs repair"
    )
    assert (
        page.locator("#session-list li[data-id='list-a-fork'] .badge.fork").inner_text() == "fork"
    )
    assert "3 sessions" in page.inner_text("#list-status")


def test_paging_newest_first_with_a_metadata_filter(page: Any, inspector: Inspector) -> None:
    async def fill(store: Any) -> None:
        for index in range(120):
            await _chat(
                f"page-{index:03d}", {"test": "paging"}, [{"role": "user", "content": f"n{index}"}]
            )(store)
        for index in range(3):
            await _chat(f"other-{index}", {"test": "other"}, [{"role": "user", "content": "x"}])(
                store
            )

    inspector.seed(fill)
    goto(page, inspector.root)
    filter_list(page, "test=paging")
    page.wait_for_function("() => document.querySelectorAll('#session-list li').length >= 50")
    assert len(listed(page)) in (50, 100)  # a page, maybe two once the list's end shows
    for _ in range(5):  # scrolling to the end of the list loads the next page
        shown = len(listed(page))
        if shown == 120:
            break
        page.locator("#more").scroll_into_view_if_needed()
        page.wait_for_function(
            f"() => document.querySelectorAll('#session-list li').length > {shown}"
        )
    page.wait_for_function("() => document.getElementById('more').hidden")
    assert listed(page) == [f"page-{index:03d}" for index in reversed(range(120))]
    filter_list(page, "test=other")
    assert listed(page) == ["other-2", "other-1", "other-0"]


def test_search_opens_the_conversation_at_the_hit(page: Any, inspector: Inspector) -> None:
    items: list[dict[str, Any]] = []
    for turn in range(200):
        items.append({"role": "user", "content": f"question {turn}"})
        text = "the ferry to Zanzibar leaves at nine" if turn == 166 else f"answer {turn}"
        items.append({"type": "message", "role": "assistant", "content": text})
    inspector.seed(_chat("search-me", {"title": "Long trip"}, items))
    goto(page, inspector.root)
    page.fill("#search", "zanzibar")
    page.press("#search", "Enter")
    hit = page.locator("#session-list li.hit[data-id='search-me']")
    hit.wait_for()
    assert hit.locator("mark").inner_text() == "Zanzibar"
    assert hit.locator(".pos").inner_text() == "#333"
    hit.click()
    page.wait_for_function("() => location.hash.includes('at=333')")
    target = page.locator("#item-333.hit")
    target.wait_for()
    assert "Zanzibar" in target.inner_text()
    box = target.bounding_box()
    assert box is not None and 0 <= box["y"] <= 800 - box["height"]  # scrolled into view
    page.fill("#search", "")
    page.press("#search", "Escape")
    page.wait_for_function("() => !document.querySelector('#session-list li.hit')")


def test_the_conversation_view(page: Any, inspector: Inspector) -> None:
    long_text = "A very long answer. " * 160
    items = [
        {"role": "user", "content": "Book me a bridge tour and bill it."},
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "thinking about bridges"}],
        },
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "lookup",
            "arguments": '{"q": "golden gate", "n": 2}',
        },
        {"type": "function_call_output", "call_id": "c1", "output": '{"city": "San Francisco"}'},
        {
            "type": "function_call",
            "call_id": "h1",
            "name": "transfer_to_billing",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "h1", "output": '{"assistant": "billing"}'},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": long_text}],
        },
        {"role": "user", "content": "Thanks!"},
        {"type": "message", "role": "assistant", "content": "You're welcome."},
    ]

    async def fill(store: Any) -> None:
        await _chat("conv", {"title": "Tour"}, items)(store)
        await store.session("conv").put_records(
            {
                "usage": {
                    "requests": 3,
                    "input_tokens": 222,
                    "output_tokens": 44,
                    "total_tokens": 266,
                    "turns": 2,
                },
                "usage/00000001": {
                    "turn": 1,
                    "requests": 2,
                    "input_tokens": 111,
                    "output_tokens": 22,
                    "total_tokens": 133,
                    "time": "2026-01-01T00:00:00+00:00",
                },
                "usage/00000002": {
                    "turn": 2,
                    "requests": 1,
                    "input_tokens": 111,
                    "output_tokens": 22,
                    "total_tokens": 133,
                    "time": "2026-01-01T00:01:00+00:00",
                },
            }
        )

    inspector.seed(fill)
    goto(page, inspector.root, "#/s/conv")
    page.locator(".turn-head").first.wait_for()
    heads = page.locator(".turn-head")
    assert heads.count() == 2
    assert "Turn 1" in heads.nth(0).inner_text() and "111 in / 22 out" in heads.nth(0).inner_text()
    assert "items #0–#6" in heads.nth(0).inner_text()
    call = page.locator("#item-2")
    assert "Tool call lookup" in call.locator(".item-head").inner_text()
    assert '{\n  "q": "golden gate",\n  "n": 2\n}' in call.locator("pre.json").first.inner_text()
    assert '"city": "San Francisco"' in call.locator(".output").inner_text()  # paired
    assert page.locator("#row-3").evaluate("e => e.classList.contains('paired') && !e.offsetParent")
    assert page.locator("#item-4 .item-head .kind").inner_text() == "Handoff → billing"
    reasoning = page.locator("#item-1 details")
    assert reasoning.evaluate("e => !e.open")
    reasoning.locator("summary").click()
    assert "thinking about bridges" in reasoning.inner_text()
    answer = page.locator("#item-6")
    shown = answer.locator("pre").inner_text()
    assert len(shown) < len(long_text) and shown.endswith("…")
    answer.locator(".show-all").click()
    assert answer.locator("pre").inner_text().strip() == long_text.strip()
    assert page.locator("#item-0 .tok").inner_text().startswith("~")
    assert page.inner_text("#session-title") == "Tour"


def test_turn_usage_follows_each_runs_start(page: Any, inspector: Inspector) -> None:
    """Three runs over two turns (the second resumed after approvals): each run's recorded
    start puts it on its turn; the older rule (as many runs as turns) would show none."""
    items = [
        {"role": "user", "content": "first"},
        {"type": "message", "role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
        {"type": "function_call", "call_id": "a1", "name": "pay", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a1", "output": "paid"},
        {"type": "message", "role": "assistant", "content": "two"},
    ]

    def run(turn: int, start: int, got_in: int, got_out: int) -> dict[str, Any]:
        return {
            "turn": turn,
            "requests": 1,
            "input_tokens": got_in,
            "output_tokens": got_out,
            "total_tokens": got_in + got_out,
            "time": f"2026-01-01T00:0{turn}:00+00:00",
            "start": start,
        }

    async def fill(store: Any) -> None:
        await _chat("runs", {"title": "Runs"}, items)(store)
        await store.session("runs").put_records(
            {
                "usage/00000001": run(1, 0, 10, 1),
                "usage/00000002": run(2, 2, 20, 2),
                "usage/00000003": run(3, 4, 5, 1),  # resumed inside turn 2
            }
        )

    inspector.seed(fill)
    goto(page, inspector.root, "#/s/runs")
    page.locator(".turn-head").first.wait_for()
    heads = page.locator(".turn-head")
    assert heads.count() == 2
    assert "10 in / 1 out" in heads.nth(0).inner_text()
    assert "25 in / 3 out" in heads.nth(1).inner_text()
    assert "runs 2, 3" in (heads.nth(1).locator(".usage").get_attribute("title") or "")


def test_the_context_view(page: Any, inspector: Inspector) -> None:
    items: list[dict[str, Any]] = []
    for turn in range(6):
        items += [
            {"role": "user", "content": f"question {turn} " + "x" * 200},
            {"type": "message", "role": "assistant", "content": f"answer {turn} " + "y" * 200},
        ]

    async def fill(store: Any) -> None:
        await _chat("ctx", None, items)(store)
        summary = Summary(
            "They covered four questions.", 8, item_digest(items[7]), 480, 2, 1.0, "scripted"
        )
        await store.session("ctx").put_records({SUMMARY_RECORD: summary.to_record()})

    inspector.seed(fill)
    goto(page, inspector.root, "#/s/ctx/context")
    page.locator(".summary-box").wait_for()
    assert "Covers items #0–#7" in page.inner_text(".summary-box .covers")
    assert "2 compactions" in page.inner_text(".summary-box .covers")
    assert "the summary and 4 of 12 stored items (#8–#11)" in page.inner_text("#context-counts")
    page.fill("#budget-input", "200")
    page.press("#budget-input", "Enter")
    page.wait_for_function("() => location.hash.includes('max_tokens=200')")
    page.wait_for_function(
        "() => document.getElementById('context-counts')?.textContent.includes('2 of 12')"
    )
    widths = page.eval_on_selector_all(
        ".bar .segment", "els => els.map(e => parseFloat(e.style.width))"
    )
    assert len(widths) == 3 and all(width > 0 for width in widths) and abs(sum(widths) - 100) < 0.5
    assert "Budget 200" in page.inner_text(".budget .caption")
    page.click("#mode-stored")
    page.wait_for_function("() => location.hash.includes('mode=stored')")
    page.locator(".badge.state-summarised").first.wait_for()
    assert page.locator(".badge.state-summarised").count() == 8
    assert page.locator(".badge.state-sent").count() == 2
    assert page.locator(".badge.state-unsent").count() == 2


def test_fork_after_a_turn_then_diff(page: Any, inspector: Inspector) -> None:
    inspector.seed(_chat("to-fork", {"title": "Bridge"}))
    goto(page, inspector.write_root, "#/s/to-fork")
    page.locator(".fork-turn").first.click()
    assert page.input_value("#fork-turn") == "1"
    page.fill("#fork-id", "forked")
    page.click("#dialog-confirm")
    page.wait_for_function("() => location.hash === '#/s/forked'")
    page.locator(".origin").wait_for()
    assert "Fork of to-fork at item #4 (the first 1 turn)" in page.inner_text(".origin")
    assert page.inner_text("#session-title") == "Bridge"  # the metadata came along
    assert count_of(inspector, "forked") == 4
    page.click("#tab-diff")
    page.locator("#diff-shared").wait_for()
    assert "Shared prefix: 4 items (1 turn)" in page.inner_text("#diff-shared")
    grid = page.inner_text("#diff-grid")
    assert "What state is it in?" in grid and "California." in grid


def test_undo_the_last_turn(page: Any, inspector: Inspector) -> None:
    inspector.seed(_chat("undo-me"))
    goto(page, inspector.write_root, "#/s/undo-me")
    page.locator(".turn-head").first.wait_for()
    page.click("#act-undo")
    assert "Undo the last turn?" in page.inner_text("#dialog")
    page.click("#dialog-confirm")
    page.wait_for_function(
        "() => document.querySelector('.meta') && document.querySelector('.meta').textContent.includes('4 items')"
    )
    assert count_of(inspector, "undo-me") == 4
    assert page.locator(".turn-head").count() == 1


def test_export_jsonl_and_markdown(page: Any, inspector: Inspector, tmp_path: Path) -> None:
    inspector.seed(_chat("export-me", {"title": "Bridge"}))
    goto(page, inspector.root, "#/s/export-me")  # read-only: export still works
    page.locator(".turn-head").first.wait_for()
    with page.expect_download() as jsonl:
        page.click("#act-export-jsonl")
    path = tmp_path / "out.jsonl"
    jsonl.value.save_as(path)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["session_id"] == "export-me"
    assert [json.loads(line) for line in lines[1:]] == CHAT
    assert jsonl.value.suggested_filename == "export-me.jsonl"
    with page.expect_download() as markdown:
        page.click("#act-export-md")
    text = Path(markdown.value.path()).read_text()
    assert text.startswith("# Bridge") and "## Turn 2" in text and "California." in text


def test_import_jsonl(page: Any, inspector: Inspector, tmp_path: Path) -> None:
    export = tmp_path / "trip.jsonl"
    header = {
        "format": "threadline.session",
        "version": 1,
        "session_id": "trip",
        "item_count": len(CHAT),
        "metadata": {"title": "Imported trip"},
        "records": {},
    }
    export.write_text("\n".join(json.dumps(line) for line in [header, *CHAT]) + "\n")
    goto(page, inspector.write_root)
    page.set_input_files("#import-file", str(export))
    page.fill("#import-id", "imported-trip")
    page.click("#dialog-confirm")
    page.wait_for_function("() => location.hash === '#/s/imported-trip'")
    page.locator("#session-title").wait_for()
    assert page.inner_text("#session-title") == "Imported trip"
    assert count_of(inspector, "imported-trip") == 6


def test_delete_asks_first(page: Any, inspector: Inspector) -> None:
    inspector.seed(_chat("delete-me"))
    goto(page, inspector.write_root, "#/s/delete-me")
    page.locator(".turn-head").first.wait_for()
    page.click("#act-delete")
    assert "Delete this session?" in page.inner_text("#dialog")
    page.click("#dialog-cancel")
    assert count_of(inspector, "delete-me") == 6
    page.click("#act-delete")
    page.click("#dialog-confirm")
    page.wait_for_function("() => location.hash === '#/'")
    assert count_of(inspector, "delete-me") is None
    page.wait_for_function(
        "() => !document.querySelector(\"#session-list li[data-id='delete-me']\")"
    )


def test_read_only_refuses_writes(page: Any, inspector: Inspector, tmp_path: Path) -> None:
    inspector.seed(_chat("guarded"))
    goto(page, inspector.root, "#/s/guarded")
    page.locator(".turn-head").first.wait_for()
    assert page.inner_text("#mode") == "read-only"
    for button in ("#act-metadata", "#act-undo", "#act-fork", "#act-compact", "#act-delete"):
        assert page.is_disabled(button), button
    assert page.is_enabled("#act-export-jsonl")
    assert page.locator(".fork-turn").count() == 0
    refused = page.evaluate(
        """async () => {
            const r = await fetch('/v1/inspect/session/undo?id=guarded', {method: 'POST'});
            return [r.status, (await r.json()).error.message];
        }"""
    )
    assert refused[0] == 403 and "--write" in refused[1]
    export = tmp_path / "x.jsonl"
    export.write_text(json.dumps({"role": "user", "content": "hi"}) + "\n")
    page.set_input_files("#import-file", str(export))
    page.wait_for_function(
        "() => document.getElementById('toast')?.textContent.includes('read-only')"
    )
    assert count_of(inspector, "guarded") == 6


def test_health_flags_and_repair(page: Any, inspector: Inspector) -> None:
    items = [
        *CHAT,
        {"role": "user", "content": "And the length?"},
        {"type": "function_call", "call_id": "c2", "name": "measure", "arguments": "{}"},
    ]
    inspector.seed(_chat("sick", None, items))
    with sqlite3.connect(inspector.db) as conn:
        conn.execute(
            "UPDATE threadline_items SET data = 'not json' WHERE seq = 5 AND sid = "
            "(SELECT sid FROM threadline_sessions WHERE session_id = 'sick')"
        )
    goto(page, inspector.write_root, "#/s/sick/health")
    page.locator("#health-flags").wait_for()
    flags = page.inner_text("#health-flags")
    assert "Unreadable item" in flags and "item 5 cannot be read" in flags
    assert "Call without output" in flags and "measure" in flags
    assert "Writer lease: free" in page.inner_text(".lease")
    preview = page.inner_text("#repair-preview")
    assert "removes 2 items and keeps 6" in preview
    assert count_of(inspector, "sick") == 8  # a preview changes nothing
    page.click("#repair-apply")
    page.click("#dialog-confirm")
    page.wait_for_function(
        "() => document.getElementById('health-verdict') && document.getElementById('health-verdict')?.textContent.startsWith('Healthy')"
    )
    assert count_of(inspector, "sick") == 6


def test_stored_strings_are_shown_as_text(page: Any, inspector: Inspector) -> None:
    nasty = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    items = [
        {"role": "user", "content": f"xsscheck {nasty}"},
        {
            "type": "function_call",
            "call_id": "<b>c</b>",
            "name": "<b>bold</b>",
            "arguments": json.dumps({"html": nasty}),
        },
        {
            "type": "function_call_output",
            "call_id": "<b>c</b>",
            "output": "<iframe src=javascript:window.__xss=3></iframe>",
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": nasty}],
        },
    ]
    inspector.seed(_chat("xss", {"title": nasty, "test": "xss", "<i>key</i>": nasty}, items))
    goto(page, inspector.root)
    filter_list(page, "test=xss")
    assert page.inner_text("#session-list li[data-id='xss'] .title") == nasty
    page.click("#session-list li[data-id='xss']")
    page.locator(".turn-head").wait_for()
    assert page.inner_text("#session-title") == nasty
    assert nasty in page.inner_text("#item-0")
    assert "<b>bold</b>" in page.inner_text("#item-1 .item-head")
    assert "<iframe" in page.inner_text("#item-1 .output")
    page.fill("#search", "xsscheck")
    page.press("#search", "Enter")
    page.locator("#session-list li.hit").first.wait_for()
    assert "<script>" in page.inner_text("#session-list li.hit .snippet")
    dangerous = page.locator(
        "#view img, #view script, #view iframe, #view b, #session-list img, #session-list script, #session-list i"
    )
    assert dangerous.count() == 0
    assert page.evaluate("window.__xss") is None


def test_keyboard_navigation(page: Any, inspector: Inspector) -> None:
    async def fill(store: Any) -> None:
        for index in range(4):
            await _chat(
                f"key-{index}", {"test": "keys"}, [{"role": "user", "content": f"k{index}"}]
            )(store)

    inspector.seed(fill)
    goto(page, inspector.root)
    filter_list(page, "test=keys")
    assert listed(page) == ["key-3", "key-2", "key-1", "key-0"]
    page.focus("#session-list")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.id") == "key-1"
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.dataset.id") == "key-2"
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.dataset.id") == "key-0"
    page.keyboard.press("Home")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.hash === '#/s/key-2'")
    page.locator("#session-title").wait_for()
    page.wait_for_function("() => document.activeElement.id === 'main'")  # the session has focus
    assert page.get_attribute("#session-list li[data-id='key-2']", "aria-selected") == "true"
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"


def test_narrow_window_and_dark_theme(page: Any, inspector: Inspector) -> None:
    inspector.seed(_chat("narrow", {"title": "Narrow"}))
    page.set_viewport_size({"width": 600, "height": 800})
    goto(page, inspector.root)
    page.locator("#session-list li").first.wait_for()
    assert page.is_visible("#sidebar") and not page.is_visible("#main")
    goto(page, inspector.root, "#/s/narrow")
    page.locator(".turn-head").first.wait_for()
    assert page.is_visible("#main") and not page.is_visible("#sidebar")
    assert page.evaluate("document.documentElement.scrollWidth") <= 600
    page.click(".back")
    page.wait_for_function("() => location.hash === '#/'")
    assert page.is_visible("#sidebar")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light != dark and dark == "rgb(22, 23, 26)"


def test_compact_now(page: Any, inspector: Inspector) -> None:
    items: list[dict[str, Any]] = []
    for turn in range(12):
        items += [
            {"role": "user", "content": f"question {turn} " + "q" * 1500},
            {"type": "message", "role": "assistant", "content": f"answer {turn} " + "a" * 1500},
        ]
    inspector.seed(_chat("compact-me", None, items))
    goto(page, inspector.write_root, "#/s/compact-me")
    page.locator(".turn-head").first.wait_for()
    page.click("#act-compact")
    page.wait_for_function(
        "() => document.getElementById('toast')?.textContent.startsWith('compacted items')"
    )
    page.locator(".summary-line").wait_for()
    page.click("#tab-context")
    page.locator(".summary-box").wait_for()
    assert "They settled the bridge's city and state." in page.inner_text(".summary-box")


def test_an_api_key_is_asked_for_and_sent(watched: Watched, inspector: Inspector) -> None:
    from threadline.server import create_app
    from threadline.server.inspector import enable_inspector

    from .conftest import _start

    inspector.seed(_chat("keyed", {"title": "Behind a key", "test": "key"}))
    app = enable_inspector(
        create_app(f"sqlite:///{inspector.db}", api_keys={"sk-inspector-test": None})
    )
    server, thread, port = _start(app)
    root = f"http://127.0.0.1:{port}"
    watched.origins.append(root)
    page = watched.page
    try:
        page.goto(f"{root}/ui/")
        page.locator("#key-input").wait_for()  # the server refused: the page asks for a key
        page.fill("#key-input", "sk-inspector-test")
        page.click("#dialog-confirm")
        page.wait_for_function("() => document.getElementById('mode')?.textContent === 'read-only'")
        filter_list(page, "test=key")
        assert listed(page) == ["keyed"]
        assert (
            page.evaluate("() => sessionStorage.getItem('threadline.inspector.key')")
            == "sk-inspector-test"
        )
    finally:
        page.close()
        server.should_exit = True
        thread.join(30)
