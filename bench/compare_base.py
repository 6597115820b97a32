"""threadline against an earlier commit of itself, in one run, plus the store-layer workloads.

    python bench/compare_base.py BASE_COMMIT [--rounds N] [--out docs/benchmarks-store.md]

The base commit is checked out into a temporary git worktree and measured by this checkout's
``worker.py`` with ``PYTHONPATH`` pointing at that worktree's ``src``; the current tree is
measured the same way. Every measurement is a fresh process; the two sides alternate which
goes first each round. Each cell is the median over rounds of each round's median. Then the
store-only workloads (``store.search``, ``list_sessions``) run on the current tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (key, workload, params, how to read one number out of the result, unit)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("runner_10k", "runner_turn", {"items": 10_000, "warmup": 1, "turns": 20}, "times"),
    ("runner_1k", "runner_turn", {"items": 1_000, "warmup": 2, "turns": 40}, "times"),
    ("get_all_100k", "get_all", {"items": 100_000, "repeat": 4}, "times"),
    (
        "get_limit_100k",
        "get_limit",
        {"sizes": [100_000], "limit": 20, "warmup": 20, "calls": 600},
        "times_by_size.100000",
    ),
    ("add_turn", "add_turn", {"warmup": 20, "calls": 1000}, "times"),
    ("many_sessions", "many_sessions", {"tasks": 50, "turns": 200}, "turns_per_s"),
]
HIGHER_IS_BETTER = {"many_sessions"}


def _run(src: Path, workload: str, params: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{HERE}"}
    done = subprocess.run(
        [sys.executable, str(HERE / "worker.py"), workload, "threadline", json.dumps(params)],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{workload} on {src} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _pick(result: dict[str, Any], path: str) -> float:
    value: Any = result
    for part in path.split("."):
        value = value[part]
    if isinstance(value, list):
        return float(statistics.median(value))
    if path == "turns_per_s" and not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def _throughput(result: dict[str, Any]) -> float:
    for key in ("turns_per_s", "throughput"):
        if key in result:
            return float(result[key])
    turns, seconds = result.get("turns"), result.get("seconds") or result.get("elapsed")
    return float(turns) / float(seconds)  # type: ignore[arg-type]


def _fmt(seconds: float) -> str:
    if seconds >= 0.1:
        return f"{seconds * 1000:.0f} ms"
    if seconds >= 1e-3:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-store.md"))
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    started = time.time()
    head_sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    rows: list[str] = []
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="threadline-base-") as tmp:
        worktree = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.base],
            check=True,
            capture_output=True,
        )
        try:
            sides = {"base": worktree / "src", "head": ROOT / "src"}
            for key, workload, params, path in CASES:
                if only and key not in only:
                    continue
                per: dict[str, list[float]] = {"base": [], "head": []}
                for round_number in range(args.rounds):
                    order = ["base", "head"] if round_number % 2 == 0 else ["head", "base"]
                    for side in order:
                        result = _run(sides[side], workload, params)
                        value = (
                            _throughput(result) if key in HIGHER_IS_BETTER else _pick(result, path)
                        )
                        per[side].append(value)
                raw[key] = per
                base, head = statistics.median(per["base"]), statistics.median(per["head"])
                if key in HIGHER_IS_BETTER:
                    change = base / head  # > 1: head slower
                    cells = f"{base:,.0f} /s | {head:,.0f} /s"
                else:
                    change = head / base
                    cells = f"{_fmt(base)} | {_fmt(head)}"
                verdict = "ok" if change <= 1.05 else "SLOWER"
                rows.append(f"| {key} | {cells} | {change:.3f} | {verdict} |")
                print(rows[-1], flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                capture_output=True,
            )
    store_rows: list[str] = []
    if not only or "store" in only:
        search = [
            statistics.median(
                _run(ROOT / "src", "store_search", {"items": 100_000, "warmup": 10, "calls": 200})[
                    "times"
                ]
            )
            for _ in range(args.rounds)
        ]
        raw["store_search_100k"] = search
        value = statistics.median(search)
        store_rows.append(
            f"| `store.search` of a rare word, 100k items | {_fmt(value)} | < 20 ms | "
            f"{'met' if value < 0.020 else 'NOT met'} |"
        )
        listing = [
            _run(
                ROOT / "src",
                "list_sessions",
                {"sizes": [1_000, 100_000], "limit": 50, "warmup": 20, "calls": 400},
            )["times_by_size"]
            for _ in range(args.rounds)
        ]
        raw["list_sessions"] = listing
        small = statistics.median(statistics.median(r["1000"]) for r in listing)
        large = statistics.median(statistics.median(r["100000"]) for r in listing)
        store_rows.append(
            f"| `list_sessions(limit=50)`, 100k sessions | {_fmt(large)} | < 5 ms | "
            f"{'met' if large < 0.005 else 'NOT met'} |"
        )
        store_rows.append(
            f"| `list_sessions(limit=50)`, 100k ÷ 1k sessions | {large / small:.2f} "
            f"({_fmt(small)} → {_fmt(large)}) | flat (≤ 1.5) | "
            f"{'met' if large / small <= 1.5 else 'NOT met'} |"
        )
        for row in store_rows:
            print(row, flush=True)
    took = (time.time() - started) / 60
    lines = [
        "# Benchmarks: the store layer against the commit before it",
        "",
        f"Generated by `bench/compare_base.py {args.base}`; do not edit by hand.",
        "",
        f"* Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; run took {took:.1f} min",
        f"* Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end",
        f"* base: `{args.base}`; head: `{head_sha}` (+ uncommitted changes, if any)",
        f"* {args.rounds} rounds; each round runs each side in a fresh process, alternating "
        "which goes first; a cell is the median of the round medians",
        "",
        "## No workload slower by more than 5%",
        "",
        "change = head ÷ base for times, base ÷ head for throughput (above 1 is slower).",
        "",
        "| workload | base | head | change | ≤ 1.05 |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "## Store-layer workloads (head only)",
        "",
        "| workload | median | target | |",
        "| --- | --- | --- | --- |",
        *store_rows,
        "",
        "Raw numbers (per round):",
        "",
        "```json",
        json.dumps(raw, indent=1, default=float)[:20000],
        "```",
        "",
    ]
    if not only:
        Path(args.out).write_text("\n".join(lines), encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
