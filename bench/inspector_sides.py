"""The inspector's sessions-list page against an earlier commit of itself, side by side.

    .venv/bin/python bench/inspector_sides.py BASE_COMMIT [--rounds 9] [--sessions 100000]

Seeds five SQLite stores once (with this checkout; the schema must be one both sides read):
1,000 and ``--sessions`` sessions of 4 items (bench/inspector.py's), 1,000 sessions whose
metadata holds 40 keys ("wide"), and 1,000 sessions of 62 items each with 30 function calls
("long": longer than the list's 20-item tail, so the whole-session pairing check runs), and
1,000 sessions plus the 10,000-item conversation of tests/ui/test_large.py, newest. The
base commit is checked out into a temporary git worktree; each side serves every store from
its own process (``PYTHONPATH`` at that side's ``src``) on 127.0.0.1. Each round fetches
``GET /v1/inspect/sessions?limit=50`` once per store and side, the sides alternating which goes
first; the first round warms up. Prints medians, min and max, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

from inspector import fill_big, fill_sessions  # noqa: E402

from threadline.sessions import open_store  # noqa: E402

SERVER = r"""
import socket, sys
import uvicorn
from threadline.server import create_app
from threadline.server.inspector import enable_inspector
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
app = enable_inspector(create_app(sys.argv[1]))
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"""


async def fill_wide(url: str, count: int) -> None:
    store = open_store(url)
    try:
        for index in range(count):
            metadata = {f"key{k:02d}": f"value {k} of session {index} " * 3 for k in range(40)}
            await store.session(f"w{index:06d}").add_items(
                [
                    {"role": "user", "content": f"question {index}"},
                    {"type": "message", "role": "assistant", "content": f"answer {index}"},
                ],
                records={"metadata": metadata},
            )
    finally:
        await store.aclose()


async def fill_long(url: str, count: int) -> None:
    store = open_store(url)
    try:
        for index in range(count):
            items: list[dict[str, object]] = [{"role": "user", "content": f"question {index}"}]
            for n in range(30):
                call_id = f"c{index}-{n}"
                items.append(
                    {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}
                )
                items.append({"type": "function_call_output", "call_id": call_id, "output": "ok"})
            items.append({"type": "message", "role": "assistant", "content": "done"})
            await store.session(f"l{index:06d}").add_items(items)
    finally:
        await store.aclose()


async def fill_small_and_big(url: str) -> None:
    await fill_sessions(url, 1_000)
    await fill_big(url)


def start(src: Path, url: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, url], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    root = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{root}/health", timeout=5).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, root


def get_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        body = json.loads(answer.read())
    elapsed = (time.perf_counter() - started) * 1000
    assert len(body["data"]) == 50, body
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sessions", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="threadline-inspector-sides-"))
    base_tree = folder / "base"
    processes: list[subprocess.Popen[str]] = []
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), args.base],
            check=True,
            capture_output=True,
        )
        stores = {
            "1,000 sessions": ("small", lambda url: fill_sessions(url, 1_000)),
            f"{args.sessions:,} sessions": ("large", lambda url: fill_sessions(url, args.sessions)),
            "1,000 sessions, 40-key metadata": ("wide", lambda url: fill_wide(url, 1_000)),
            "1,000 sessions of 62 items (30 calls)": ("long", lambda url: fill_long(url, 1_000)),
            "1,000 sessions + one of 10,000 items on page 1": ("big", fill_small_and_big),
        }
        urls = {}
        for label, (name, fill) in stores.items():
            url = f"sqlite:///{folder / f'{name}.db'}"
            started = time.perf_counter()
            asyncio.run(fill(url + "?synchronous=OFF"))
            took = time.perf_counter() - started
            print(f"seeded {label} in {took:.0f} s", file=sys.stderr)
            urls[label] = url
        sides = {"base": base_tree / "src", "this": ROOT / "src"}
        roots: dict[tuple[str, str], str] = {}
        for label, url in urls.items():
            for side, src in sides.items():
                process, root = start(src, url)
                processes.append(process)
                roots[label, side] = root
        times: dict[tuple[str, str], list[float]] = {key: [] for key in roots}
        for round_ in range(args.rounds + 1):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for label in urls:
                for side in order:
                    ms = get_ms(f"{roots[label, side]}/v1/inspect/sessions?limit=50")
                    if round_:
                        times[label, side].append(ms)
        load = os.getloadavg()
        print(
            f"\nbase {args.base[:12]} vs this tree; {args.rounds} rounds; load average "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, {os.cpu_count()} cores\n"
        )
        print("| list page 1 (50 rows) | base median | this median | ratio | this min / max |")
        print("|---|---|---|---|---|")
        for label in urls:
            base, this = times[label, "base"], times[label, "this"]
            ratio = statistics.median(this) / statistics.median(base)
            print(
                f"| {label} | {statistics.median(base):.0f} ms | {statistics.median(this):.0f} ms "
                f"| {ratio:.2f} | {min(this):.0f} / {max(this):.0f} ms |"
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
