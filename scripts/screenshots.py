"""Screenshots of the web inspector for the docs: seed a demo store, open each main view in
chromium at 1280×800, save PNGs into docs/.

    python scripts/screenshots.py            # needs chromium and the dev extra (playwright)

The demo store holds a CLI-style chat with a tool call (run through the real runner with a
scripted model, so usage is recorded as it would be), a fork of it that went another way, a
compacted long conversation, a session left with a call and no output (as a crash mid-step
leaves it), and a few more for the list. Nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from threadline import Agent, Runner, function_tool  # noqa: E402
from threadline.run.compaction import compact_session  # noqa: E402
from threadline.sessions import open_store  # noqa: E402
from threadline.testing import ScriptedModel  # noqa: E402
from threadline.testing.scripted_model import call  # noqa: E402

VIEWS = {
    "list": "#/",
    "search": "#/",
    "conversation": "#/s/trip-to-sf",
    "context": "#/s/kyoto-itinerary/context?max_tokens=2500",
    "diff": "#/s/trip-to-sf-rainy/diff",
    "health": "#/s/crashed-mid-step/health",
}


@function_tool
def weather(city: str) -> str:
    """Today's weather in a city."""
    return json.dumps({"city": city, "temperature_c": 17, "sky": "fog until noon", "wind_kmh": 22})


async def _chat(
    store: Any, session_id: str, turns: list[tuple[str, list[Any]]], metadata: dict[str, Any]
) -> None:
    session = store.session(session_id)
    for question, steps in turns:
        model = ScriptedModel(steps)
        agent = Agent(
            name="assistant",
            instructions="You plan trips. Reply concisely.",
            model=model,
            tools=[weather],
        )
        await Runner.run(agent, question, session=session)
    await session.set_metadata(metadata)


async def seed(url: str) -> None:
    store = open_store(url)
    try:
        for index, (name, text) in enumerate(
            [
                ("groceries", "Make me a shopping list for a week of vegetarian dinners."),
                ("resume-review", "Can you tighten the summary paragraph of my résumé?"),
                ("sql-help", "Why does my LEFT JOIN return duplicate rows?"),
            ]
        ):
            await _chat(
                store,
                name,
                [(text, ["Sure — here is a first pass. Tell me what to change."])],
                {"user": ["ana", "ben"][index % 2], "app": "cli"},
            )
        await _chat(
            store,
            "kyoto-itinerary",
            [
                (
                    f"Day {day} in Kyoto: what should I see? "
                    + "I like temples, food and quiet gardens. " * 6,
                    [
                        f"Day {day}: start early at a temple, lunch in Nishiki market, then a garden walk. "
                        * 8
                    ],
                )
                for day in range(1, 9)
            ],
            {"title": "Kyoto, eight days", "user": "ana", "app": "cli"},
        )
        summariser = ScriptedModel(
            responder=lambda request: (
                "Ana is planning eight days in Kyoto. She likes temples, food "
                "and quiet gardens; each day so far starts early at a temple, has lunch in Nishiki "
                "market and ends with a garden walk. Days 1-5 are settled."
            )
        )
        await compact_session(store.session("kyoto-itinerary"), model=summariser, keep_tokens=900)
        await _chat(
            store,
            "trip-to-sf",
            [
                (
                    "I'm visiting San Francisco tomorrow. What's the weather like?",
                    [
                        [call("weather", {"city": "San Francisco"}, call_id="call_weather_1")],
                        "17 °C with fog until noon and a 22 km/h wind: bring a jacket for the morning.",
                    ],
                ),
                (
                    "Is the Golden Gate Bridge worth walking across?",
                    [
                        "Yes: the walk is about 2.7 km each way. Go after noon, when the fog has lifted."
                    ],
                ),
                (
                    "Where should I eat afterwards?",
                    ["Try the Ferry Building: lots of small vendors, and it is on the way back."],
                ),
            ],
            {"title": "Trip to San Francisco", "user": "ana", "app": "cli"},
        )
        fork = await store.session("trip-to-sf").fork("trip-to-sf-rainy", at_turn=2)
        await fork.set_metadata(
            {"title": "Trip to San Francisco (if it rains)", "user": "ana", "app": "cli"}
        )
        await Runner.run(
            Agent(
                name="assistant",
                instructions="You plan trips.",
                model=ScriptedModel(
                    [
                        "If it rains, skip the walk: the cable car and the Exploratorium are dry options."
                    ]
                ),
            ),
            "And if it rains instead?",
            session=fork,
        )
        crashed = store.session("crashed-mid-step")
        await crashed.add_items(
            [
                {"role": "user", "content": "Book a table for two at 8pm."},
                {
                    "type": "function_call",
                    "call_id": "call_book_7",
                    "name": "book_table",
                    "arguments": '{"people": 2, "time": "20:00"}',
                },
            ]
        )
        await crashed.set_metadata({"title": "Dinner booking", "user": "ben", "app": "support-bot"})
    finally:
        await store.aclose()


def _serve(url: str) -> tuple[Any, str]:
    import uvicorn

    from threadline.server import create_app
    from threadline.server.inspector import enable_inspector

    app = enable_inspector(create_app(url, model="gpt-4o-mini"), write=True)

    class Server(uvicorn.Server):
        def install_signal_handlers(self) -> None:
            """In a thread: leave the signals alone."""

    server = Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the PNGs go (docs/)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.gettempdir()) / "threadline-demo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    url = f"sqlite:///{folder / 'demo.db'}"
    asyncio.run(seed(url))
    server, root = _serve(url)
    out = Path(args.out)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                ],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, where in VIEWS.items():
                page.goto("about:blank")  # a fresh page for each view
                page.goto(f"{root}/ui/{where}")
                page.wait_for_function("() => document.getElementById('mode')?.textContent !== ''")
                page.wait_for_function(
                    "() => !document.querySelector('#view .placeholder') || location.hash === '#/'"
                )
                if name == "list":
                    page.focus("#session-list")
                    page.keyboard.press("ArrowDown")
                if name == "search":
                    page.fill("#search", "fog")
                    page.press("#search", "Enter")
                    page.locator("#session-list li.hit").first.wait_for()
                    page.locator("#session-list li.hit").first.click()
                    page.wait_for_function(
                        "() => document.querySelector('.hit article, article.hit, .output.hit')"
                    )
                time.sleep(0.4)
                target = out / f"inspect-{name}.png"
                page.screenshot(path=str(target))
                print(f"wrote {target}")
            browser.close()
    finally:
        server.should_exit = True
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
