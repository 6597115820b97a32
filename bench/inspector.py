"""The web inspector at scale: a sessions-list page at 1,000 and at 100,000 sessions, and the
first paint of a 10,000-item conversation in chromium.

* List: ``GET /v1/inspect/sessions?limit=50`` (title, preview, counts, usage, badges per row),
  the first page and a page deep in the listing (after half the sessions), on a SQLite store of
  1,000 sessions and one of 100,000 (each 4 items with metadata), measured side by side in the
  same run (alternating), over HTTP on 127.0.0.1. A page reads a bounded amount per row, so
  both sizes should cost the same.
* Conversation: the in-page time from opening the session (the route change) to the frame after
  its first rows are drawn, fetches included (the number ``tests/ui/test_large.py`` holds to
  the issue's 1 s), over several fresh page loads.

    .venv/bin/python bench/inspector.py [--sessions 100000] [--runs 7]

Prints a Markdown table with medians and the load average (docs/inspect.md quotes it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from threadline.sessions import open_store  # noqa: E402


async def fill_sessions(url: str, count: int) -> None:
    store = open_store(url)
    try:
        for index in range(count):
            session = store.session(f"s{index:06d}")
            await session.add_items(
                [
                    {"role": "user", "content": f"question {index} about the bridge"},
                    {
                        "type": "function_call",
                        "call_id": f"c{index}",
                        "name": "lookup",
                        "arguments": "{}",
                    },
                    {
                        "type": "function_call_output",
                        "call_id": f"c{index}",
                        "output": '{"ok": true}',
                    },
                    {"type": "message", "role": "assistant", "content": f"answer {index}"},
                ],
                records={"metadata": {"user": f"u{index % 10}", "app": "bench"}},
            )
    finally:
        await store.aclose()


async def fill_big(url: str) -> None:
    from tests.ui.test_large import ten_thousand

    store = open_store(url)
    try:
        items = ten_thousand()
        session = store.session("big")
        for start in range(0, len(items), 2000):
            await session.add_items(items[start : start + 2000])
    finally:
        await store.aclose()


def serve(url: str) -> tuple[Any, str]:
    import uvicorn

    from threadline.server import create_app
    from threadline.server.inspector import enable_inspector

    app = enable_inspector(create_app(url))

    class Server(uvicorn.Server):
        def install_signal_handlers(self) -> None:
            """In a thread: leave the signals alone."""

    server = Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def get(url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        body = json.loads(answer.read())
    return (time.perf_counter() - started) * 1000, body


def deep_cursor(root: str, sessions: int) -> str:
    cursor = None
    seen = 0
    while seen < sessions // 2:
        query = "limit=200" + (f"&after={urllib.parse.quote(cursor)}" if cursor else "")
        _, page = get(f"{root}/v1/inspect/sessions?{query}")
        seen += len(page["data"])
        cursor = page["next_cursor"]
    assert cursor is not None
    return cursor


def paint_times(root: str, runs: int, chromium: str) -> list[float]:
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{root}/ui/")
            page.locator("#session-list li[data-id='big']").click()
            page.wait_for_function("() => document.body.dataset.conversationMs !== undefined")
            found.append(float(page.evaluate("() => window.threadlineInspector.timings.at(-1).ms")))
            page.close()
        browser.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="threadline-inspector-bench-"))
    try:
        urls = {}
        for size in (args.small, args.sessions):
            url = f"sqlite:///{folder / f'{size}.db'}?synchronous=OFF"
            started = time.perf_counter()
            asyncio.run(fill_sessions(url, size))
            print(
                f"seeded {size} sessions in {time.perf_counter() - started:.0f} s", file=sys.stderr
            )
            urls[size] = url.split("?")[0]
        asyncio.run(fill_big(urls[args.small] + "?synchronous=OFF"))
        servers = {size: serve(url) for size, url in urls.items()}
        cursors = {size: deep_cursor(root, size) for size, (_, root) in servers.items()}
        first: dict[int, list[float]] = {size: [] for size in servers}
        deep: dict[int, list[float]] = {size: [] for size in servers}
        for _ in range(args.runs + 1):  # the first round warms up
            for size, (_, root) in servers.items():
                ms, page = get(f"{root}/v1/inspect/sessions?limit=50")
                assert len(page["data"]) == 50
                first[size].append(ms)
                after = urllib.parse.quote(cursors[size])
                ms, page = get(f"{root}/v1/inspect/sessions?limit=50&after={after}")
                assert len(page["data"]) == 50
                deep[size].append(ms)
        paints = paint_times(servers[args.small][1], args.runs, args.chromium)
        load = os.getloadavg()
        print(
            f"\nload average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, {os.cpu_count()} cores\n"
        )
        print("| | median | min | max |\n|---|---|---|---|")
        for size in servers:
            for label, values in (
                (f"list page 1, {size:,} sessions", first[size][1:]),
                (f"list page after {size // 2:,}, {size:,} sessions", deep[size][1:]),
            ):
                print(
                    f"| {label} | {statistics.median(values):.0f} ms | {min(values):.0f} ms | {max(values):.0f} ms |"
                )
        print(
            f"| 10,000-item conversation, first paint | {statistics.median(paints):.0f} ms | {min(paints):.0f} ms | {max(paints):.0f} ms |"
        )
        for _, (server, _) in servers.items():
            server.should_exit = True
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
