"""Per-turn store time against stored items: threadline windowed, threadline full history and
the OpenAI Agents SDK's ``SQLiteSession`` (issue 14's picture).

A *store turn* is what a run asks of its session per turn (the definition of
``bench/scale.py``): the history read, the input append and the step append. Three sides, on
SQLite files with each library's own defaults (both WAL with ``synchronous=FULL``):

* **threadline windowed** — ``get_window(max_tokens=8000)``, the read a session with
  ``SessionSettings(max_tokens=8000)`` makes;
* **threadline full history** — ``get_items()``;
* **SDK** — openai-agents 0.24's ``SQLiteSession``: ``get_items()``, its default (the whole
  history).

Sessions of 1k, 10k, 100k and 1M items (turns of a ~120-byte user message and a ~490-byte
answer, ``bench/_items.py``) are seeded by bulk inserts into each library's schema
(``executemany``), cached under the temp dir (``$TMPDIR/threadline-history-scaling``), and
copied before each measurement, so that every run starts from the same files. Each point is
the median of several turns; the three sides take turns (rotating which goes first), so they
meet the same machine load.

    bench/.venv-long/bin/python bench/history_scaling.py           # a few minutes
    bench/.venv-long/bin/python bench/history_scaling.py --quick   # 1k-100k, fewer turns
    python3.11 -m venv bench/.venv-long && bench/.venv-long/bin/pip install -e . -r bench/requirements-long.txt

Writes ``bench/results/history_scaling.json``, its section of ``docs/benchmarks-long.md``
(between the ``history-scaling`` markers; ``long_conversation.py`` keeps it) and, with
matplotlib, ``docs/history-scaling.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

import _items  # noqa: E402

SESSION_ID = "bench-history"
MAX_TOKENS = 8000
COUNTS = (1_000, 10_000, 100_000, 1_000_000)
TURNS = {1_000: 40, 10_000: 30, 100_000: 15, 1_000_000: 7}
"""Rounds at each size: each round is one turn of each full-history side and
:data:`WINDOWED_TURNS` of the windowed side (the full-history reads of 1M items take seconds)."""
WINDOWED_TURNS = 5
"""Windowed turns per round: a turn of a few milliseconds, two of them durable commits whose
fsync latency on a shared disk varies by tens of milliseconds, needs more samples."""
CACHE = Path(tempfile.gettempdir()) / "threadline-history-scaling"
FORMAT = 1
PLOT = "history-scaling.png"
BEGIN, END = "<!-- history-scaling:begin -->", "<!-- history-scaling:end -->"
SIDES = ("windowed", "full", "sdk")
LABELS = {
    "windowed": f"threadline windowed (max_tokens={MAX_TOKENS})",
    "full": "threadline full history (get_items())",
    "sdk": "OpenAI Agents SDK 0.24 SQLiteSession (full history, its default)",
}


# ---------------------------------------------------------------------- seeding


def _seed_items(count: int) -> list[dict[str, Any]]:
    return _items.turns(count // 2, prefix="h")


def _stamp_ok(path: Path, key: dict[str, Any]) -> bool:
    stamp = path.with_suffix(".json")
    return path.exists() and stamp.exists() and json.loads(stamp.read_text()) == key


def _remove(path: Path) -> None:
    """Remove a database with its WAL files and its cache stamp."""
    for name in (f"{path}", f"{path}-wal", f"{path}-shm", f"{path.with_suffix('.json')}"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def seed_threadline(count: int) -> Path:
    """A threadline database holding one session of ``count`` items (cached)."""
    from threadline.sessions import SQLiteStore
    from threadline.sessions.codec import encode_items
    from threadline.sessions.sqlite._schema import SCHEMA_VERSION

    path = CACHE / f"threadline-v{SCHEMA_VERSION}-{count}.db"
    key = {"format": FORMAT, "schema": SCHEMA_VERSION, "count": count}
    if _stamp_ok(path, key):
        return path
    _remove(path)
    store = SQLiteStore(path)
    await store.session(SESSION_ID).add_items([_items.user_item("seed")])  # the session's row
    await store.aclose()
    rows = encode_items(_seed_items(count))
    conn = sqlite3.connect(path)
    with conn:
        (sid,) = conn.execute(
            "SELECT sid FROM threadline_sessions WHERE session_id = ?", (SESSION_ID,)
        ).fetchone()
        conn.execute("DELETE FROM threadline_items WHERE sid = ?", (sid,))
        conn.executemany(
            "INSERT INTO threadline_items (sid, seq, kind, call_id, tokens, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((sid, seq, r.kind, r.call_id, r.tokens, r.data) for seq, r in enumerate(rows)),
        )
        # every item counts as indexed for search: no catching up during the measurement
        conn.execute(
            "UPDATE threadline_sessions SET item_count = ?, indexed = ? WHERE sid = ?",
            (count, count, sid),
        )
    conn.close()
    _checkpoint(path)
    store = SQLiteStore(path)
    try:  # the store reads it back as it would its own writes
        session = store.session(SESSION_ID)
        window = await session.get_window(max_tokens=MAX_TOKENS)
        last = await session.get_items(limit=1)
        if not window or last != rows_tail(count):
            raise RuntimeError(f"the seeded threadline database {path} does not read back")
    finally:
        await store.aclose()
    path.with_suffix(".json").write_text(json.dumps(key))
    return path


def rows_tail(count: int) -> list[dict[str, Any]]:
    return _items.turn(f"h{count // 2 - 1}")[-1:]


async def seed_sdk(count: int) -> Path:
    """An SDK ``SQLiteSession`` database holding one session of ``count`` items (cached)."""
    import importlib.metadata

    from agents import SQLiteSession

    version = importlib.metadata.version("openai-agents")
    path = CACHE / f"sdk-{version}-{count}.db"
    key = {"format": FORMAT, "sdk": version, "count": count}
    if _stamp_ok(path, key):
        return path
    _remove(path)
    session = SQLiteSession(SESSION_ID, str(path))  # creates its tables and index
    await session.add_items([_items.user_item("seed")])  # the session's row
    session.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM agent_messages WHERE session_id = ?", (SESSION_ID,))
        conn.executemany(
            "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
            ((SESSION_ID, json.dumps(item)) for item in _seed_items(count)),
        )
    conn.close()
    _checkpoint(path)
    session = SQLiteSession(SESSION_ID, str(path))
    try:
        if await session.get_items(limit=1) != rows_tail(count):
            raise RuntimeError(f"the seeded SDK database {path} does not read back")
    finally:
        session.close()
    path.with_suffix(".json").write_text(json.dumps(key))
    return path


# ---------------------------------------------------------------------- measuring


Turn = Callable[[str], Awaitable[tuple[int, float]]]
"""One store turn: the items its read returned and the seconds the read took."""


async def measure(count: int, turns: int, work: Path) -> dict[str, Any]:
    """``turns`` rounds of store turns of each side on sessions of ``count`` items: their
    times, and the times of their history reads."""
    from agents import SQLiteSession

    from threadline.sessions import SQLiteStore

    started = time.perf_counter()
    tl_source, sdk_source = await seed_threadline(count), await seed_sdk(count)
    seeded = time.perf_counter() - started
    tl_path, sdk_path = work / "threadline.db", work / "sdk.db"
    for source, target in ((tl_source, tl_path), (sdk_source, sdk_path)):
        _remove(target)
        shutil.copyfile(source, target)
    store = SQLiteStore(tl_path)
    tl_session = store.session(SESSION_ID)
    sdk_session = SQLiteSession(SESSION_ID, str(sdk_path))

    async def windowed(marker: str) -> tuple[int, float]:
        began = time.perf_counter()
        read = await tl_session.get_window(max_tokens=MAX_TOKENS)
        took = time.perf_counter() - began
        await tl_session.add_items([_items.user_item(marker)])
        await tl_session.add_items(_items.turn(marker)[1:])
        return len(read), took

    async def full(marker: str) -> tuple[int, float]:
        began = time.perf_counter()
        read = await tl_session.get_items()
        took = time.perf_counter() - began
        await tl_session.add_items([_items.user_item(marker)])
        await tl_session.add_items(_items.turn(marker)[1:])
        return len(read), took

    async def sdk(marker: str) -> tuple[int, float]:
        began = time.perf_counter()
        read = await sdk_session.get_items()
        took = time.perf_counter() - began
        await sdk_session.add_items([_items.user_item(marker)])
        await sdk_session.add_items(_items.turn(marker)[1:])
        return len(read), took

    sides: dict[str, Turn] = {"windowed": windowed, "full": full, "sdk": sdk}
    times: dict[str, list[float]] = {name: [] for name in SIDES}
    reads: dict[str, list[float]] = {name: [] for name in SIDES}
    read: dict[str, int] = {}
    repeat = {"windowed": WINDOWED_TURNS, "full": 1, "sdk": 1}
    try:
        for name, turn in sides.items():  # one turn each to warm up, not counted
            read[name], _ = await turn(f"warm-{name}")
        for index in range(turns):
            order = SIDES[index % 3 :] + SIDES[: index % 3]
            for name in order:
                for again in range(repeat[name]):
                    gc.collect()  # the garbage of a full read is not the next side's time
                    began = time.perf_counter()
                    _, took = await sides[name](f"{name}-{index}-{again}")
                    times[name].append(time.perf_counter() - began)
                    reads[name].append(took)
    finally:
        await store.aclose()
        sdk_session.close()
        for target in (tl_path, sdk_path):
            _remove(target)
    expected = {"full": count, "sdk": count}
    for name, want in expected.items():
        if read[name] < want:  # (+2 per earlier turn of the same store)
            raise RuntimeError(f"{name} read {read[name]} items of {want}")
    return {
        "count": count,
        "turns": turns,
        "seed_seconds": round(seeded, 2),
        "window_items": read["windowed"],
        "times": times,
        "reads": reads,
    }


def summarise(count: int, passes: list[dict[str, Any]]) -> dict[str, Any]:
    """One point of the report: the medians of the turns of every pass over ``count``."""
    point: dict[str, Any] = {
        "count": count,
        "turns": sum(one["turns"] for one in passes),
        "seed_seconds": round(sum(one["seed_seconds"] for one in passes), 2),
        "window_items": passes[0]["window_items"],
    }
    for name in SIDES:
        times = [t for one in passes for t in one["times"][name]]
        reads = [t for one in passes for t in one["reads"][name]]
        point[name] = {
            "median": statistics.median(times),
            "read_median": statistics.median(reads),
            "all": times,
            "reads": reads,
        }
    return point


# ---------------------------------------------------------------------- reporting


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _git_commit() -> str:
    import subprocess

    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "?"
    return done.stdout.strip() or "?"


def section(points: list[dict[str, Any]], load: tuple[str, str], plot: str | None) -> str:
    """The markdown section of ``docs/benchmarks-long.md``, between its markers."""
    import importlib.metadata
    from datetime import datetime, timezone

    first, last = points[0], points[-1]
    flat = last["windowed"]["median"] / first["windowed"]["median"]
    lines = [
        BEGIN,
        "## Per-turn time against stored items",
        "",
        "Generated by `bench/history_scaling.py`; do not edit by hand (rerun it instead).",
        "",
        f"* Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; threadline git "
        f"{_git_commit()}, openai-agents {importlib.metadata.version('openai-agents')}; load "
        f"average {load[0]} at the start, {load[1]} at the end",
        "* A store turn (as `bench/scale.py` defines it): the history read, the input append and "
        "the step append, each append a durable commit; one session of N items (turns of a "
        "~120-byte user message and a ~490-byte answer) in a SQLite file, each library with "
        "its defaults (WAL, `synchronous=FULL`). Seeded by bulk inserts into each library's "
        "schema. The sides take turns in rounds (one turn of each full-history side and "
        f"{WINDOWED_TURNS} of the windowed one, rotating which goes first), in two passes (up "
        "the sizes, then down); each cell is the median of its side's turns (the rounds in "
        "brackets).",
        f"* threadline windowed: `get_window(max_tokens={MAX_TOKENS})` "
        f"(`SessionSettings(max_tokens={MAX_TOKENS})`; {first['window_items']} items read); "
        "threadline full history: `get_items()`; the SDK: `SQLiteSession.get_items()`, its "
        "default.",
        "",
        "| stored items | threadline windowed | threadline full history | SDK `SQLiteSession` "
        "(full history) | SDK ÷ threadline windowed |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for point in points:
        ratio = point["sdk"]["median"] / point["windowed"]["median"]
        lines.append(
            f"| {point['count']:,} ({point['turns']} rounds) | {_ms(point['windowed']['median'])} "
            f"| {_ms(point['full']['median'])} | {_ms(point['sdk']['median'])} | {ratio:,.1f}× |"
        )
    lines += [
        "",
        "Of which the history read alone (the rest is the two durable commits, whose fsync "
        "time on this shared disk varies most):",
        "",
        "| stored items | threadline `get_window` | threadline `get_items()` | SDK `get_items()` |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for point in points:
        lines.append(
            f"| {point['count']:,} | {_ms(point['windowed']['read_median'])} "
            f"| {_ms(point['full']['read_median'])} | {_ms(point['sdk']['read_median'])} |"
        )
    read_flat = last["windowed"]["read_median"] / first["windowed"]["read_median"]
    lines += [
        "",
        f"The windowed turn at {last['count']:,} items takes {flat:.2f}× its time at "
        f"{first['count']:,} (its read {read_flat:.2f}×); a full-history turn grows with the "
        "history "
        f"({last['full']['median'] / first['full']['median']:,.0f}× for threadline, "
        f"{last['sdk']['median'] / first['sdk']['median']:,.0f}× for the SDK).",
    ]
    if plot:
        lines += ["", f"![per-turn store time against stored items]({plot})"]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Put ``text`` into docs/benchmarks-long.md in place of the previous section (or last)."""
    page = ROOT / "docs" / "benchmarks-long.md"
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        updated = before + text + (("\n" + after) if after else "")
    else:
        updated = current.rstrip("\n") + ("\n\n" if current else "") + text
    page.write_text(updated, encoding="utf-8")


def draw(points: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib: pip install -r bench/requirements-long.txt for the plot")
        return False
    figure, axes = plt.subplots(figsize=(8, 4.6), dpi=110)
    counts = [point["count"] for point in points]
    for name, style in zip(SIDES, ("o-", "s-", "^--"), strict=True):
        values = [point[name]["median"] * 1e3 for point in points]
        axes.plot(counts, values, style, label=LABELS[name])
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("items stored in the session")
    axes.set_ylabel("per-turn store time (ms, median)")
    axes.set_title("Per-turn store time against stored items (SQLite file)")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k-100k items, a third the turns")
    parser.add_argument("--no-write", action="store_true", help="print, write no files")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    counts = COUNTS[:3] if args.quick else COUNTS
    for count in counts:  # seed (or find in the cache) before anything is timed
        await seed_threadline(count)
        await seed_sdk(count)
    start_load = _load()
    passes: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
    with tempfile.TemporaryDirectory(prefix="tl-history-") as folder:
        await measure(counts[0], 3, Path(folder))  # warm up (imports, threads): not counted
        # two passes, up the sizes then down, so that a drift of the machine's load does not
        # fall on the largest sessions only
        for ascending in (True, False):
            for count in counts if ascending else reversed(counts):
                rounds = max(3, TURNS[count] // 3) if args.quick else TURNS[count]
                rounds = (rounds + 1) // 2 if ascending else rounds // 2
                one = await measure(count, rounds, Path(folder))
                passes[count].append(one)
                print(
                    f"{count:>9,} items, {rounds} rounds: "
                    + ", ".join(
                        f"{name} {_ms(statistics.median(one['times'][name]))}" for name in SIDES
                    ),
                    flush=True,
                )
    load = (start_load, _load())
    points = [summarise(count, passes[count]) for count in counts]
    drawn = not args.no_write and draw(points, ROOT / "docs" / PLOT)
    text = section(points, load, PLOT if drawn else None)
    print(text)
    if not args.no_write:
        write_section(text)
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        (results / "history_scaling.json").write_text(
            json.dumps({"load": load, "points": points}), encoding="utf-8"
        )


if __name__ == "__main__":
    asyncio.run(main())
