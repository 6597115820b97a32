"""Run every benchmark workload on threadline and on the OpenAI Agents SDK, write the report.

    bash bench/setup.sh                 # once: bench/.venv with both libraries
    bench/.venv/bin/python bench/run_all.py [--rounds N] [--quick] [--only KEY,...]
    bench/.venv/bin/python bench/run_all.py --render bench/results/<time>.json

Each measurement runs in a fresh process (``worker.py``); the sides alternate which goes
first from round to round so slow phases of a noisy machine hit both. Results go to
``bench/results/<timestamp>.json`` and the report to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _machine
import _report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SIDES = ("threadline", "sdk")


@dataclass
class Case:
    """One workload with its parameters, run on each side for a number of rounds."""

    key: str
    workload: str
    params: dict[str, Any]
    per_side: dict[str, dict[str, Any]] = field(default_factory=dict)
    sides: tuple[str, ...] = SIDES
    rounds: int | None = None  # None: the --rounds value
    timeout: float = 300.0

    def params_for(self, side: str, quick: bool) -> dict[str, Any]:
        params = {**self.params, **self.per_side.get(side, {})}
        if quick:
            for name in ("turns", "calls", "repeat"):
                if name in params and self.workload not in ("multiproc", "many_sessions"):
                    params[name] = max(1, params[name] // 4)
        return params


CASES = [
    Case(
        "runner_10k",
        "runner_turn",
        {"items": 10_000, "warmup": 1},
        {"threadline": {"turns": 20}, "sdk": {"turns": 4}},
    ),
    Case(
        "runner_1k",
        "runner_turn",
        {"items": 1_000, "warmup": 2},
        {"threadline": {"turns": 40}, "sdk": {"turns": 20}},
    ),
    Case(
        "get_all_100k",
        "get_all",
        {"items": 100_000},
        {"threadline": {"repeat": 4}, "sdk": {"repeat": 2}},
    ),
    Case(
        "get_limit",
        "get_limit",
        {"sizes": [1_000, 100_000, 1_000_000], "limit": 20, "warmup": 20, "calls": 600},
    ),
    Case("add_turn", "add_turn", {"warmup": 20, "calls": 1000}, rounds=9),
    Case("many_sessions", "many_sessions", {"tasks": 50, "turns": 200}, rounds=3),
    Case("multiproc", "multiproc", {"procs": 8, "turns": 500}, rounds=3),
    Case("concurrent_runs", "concurrent_runs", {"turns": 50}, rounds=3),
    # Context for the report: where the time goes on each side.
    Case(
        "breakdown_1k",
        "turn_breakdown",
        {"items": 1_000, "warmup": 2, "turns": 40},
        sides=("threadline",),
        rounds=3,
    ),
    Case(
        "breakdown_10k",
        "turn_breakdown",
        {"items": 10_000, "warmup": 1, "turns": 20},
        sides=("threadline",),
        rounds=3,
    ),
    Case("sdk_profile_10k", "sdk_profile", {"items": 10_000, "turns": 2}, sides=("sdk",), rounds=1),
    Case(
        "runner_10k_text",
        "runner_turn",
        {"items": 10_000, "warmup": 1, "turns": 10},
        sides=("threadline-scripted-text",),
        rounds=3,
    ),
]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_worker(workload: str, side: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One measurement in a fresh process; failures come back as ``{"failed": ...}``."""
    command = [sys.executable, str(HERE / "worker.py"), workload, side, json.dumps(params)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"failed": (done.stderr.strip() or "no output")[-2000:]}
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        return {"failed": f"unreadable output: {lines[-1][:200]}"}
    return result


def build_datasets(quick: bool) -> dict[str, Any]:
    """Build (or find cached) the read workloads' databases, outside any timing."""
    counts: set[int] = set()
    for case in CASES:
        if case.workload == "get_all":
            counts.add(case.params["items"])
        elif case.workload == "get_limit":
            counts.update(case.params["sizes"])
    built = {}
    for side in SIDES:
        command = [sys.executable, str(HERE / "_datasets.py"), side, *map(str, sorted(counts))]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE)
        if done.returncode != 0:
            raise SystemExit(f"building the {side} databases failed:\n{done.stderr}")
        built[side] = {"seconds": time.perf_counter() - started, "log": done.stdout.strip()}
        _log(done.stdout.strip())
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per timing workload")
    parser.add_argument("--quick", action="store_true", help="1 round, fewer repetitions")
    parser.add_argument("--only", default="", help="comma-separated case keys")
    parser.add_argument(
        "--report",
        default=None,
        help="where to write the markdown (default: docs/benchmarks.md for a full run, "
        "bench/results/<time>.md with --quick or --only)",
    )
    parser.add_argument(
        "--render", metavar="RAW_JSON", help="only re-render a report from saved raw results"
    )
    args = parser.parse_args(argv)
    if args.render:
        record = json.loads(Path(args.render).read_text())
        target = Path(args.report) if args.report else ROOT / "docs" / "benchmarks.md"
        target.write_text(_report.render(record))
        print(_report.summary(record))
        return 0
    only = {k for k in args.only.split(",") if k}
    cases = [c for c in CASES if not only or c.key in only]
    started = time.time()
    machine = _machine.describe(HERE / ".data")
    _log(f"machine: {machine['cpu']} x{machine['nproc']}, load {machine['load_start']}")
    datasets = build_datasets(args.quick)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for case in cases:
        rounds = 1 if args.quick else (case.rounds or args.rounds)
        per_side: dict[str, list[dict[str, Any]]] = {side: [] for side in case.sides}
        for r in range(rounds):
            order = case.sides if r % 2 == 0 else tuple(reversed(case.sides))
            for side in order:
                t0 = time.perf_counter()
                out = run_worker(
                    case.workload, side, case.params_for(side, args.quick), case.timeout
                )
                per_side[side].append(out)
                status = "FAILED" if "failed" in out else "ok"
                _log(
                    f"{case.key:16} {side:26} round {r + 1}/{rounds} {status} "
                    f"({time.perf_counter() - t0:.1f} s)"
                )
                if "failed" in out:
                    _log(out["failed"])
        results[case.key] = per_side
    machine["load_end"] = _machine.loadavg()
    elapsed = time.time() - started
    record = {
        "started": started,
        "elapsed": elapsed,
        "machine": machine,
        "datasets": datasets,
        "cases": {
            c.key: {
                "workload": c.workload,
                "params": {s: c.params_for(s, args.quick) for s in c.sides},
            }
            for c in cases
        },
        "results": results,
        "quick": args.quick,
        "rounds": args.rounds,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    raw = RESULTS / f"{stamp}.json"
    raw.write_text(json.dumps(record, indent=1))
    text = _report.render(record)
    if args.report is not None:
        report = Path(args.report)
    elif args.quick or only:
        report = raw.with_suffix(".md")
    else:
        report = ROOT / "docs" / "benchmarks.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)
    _log(f"done in {elapsed / 60:.1f} min: {report} (raw: {raw})")
    print(_report.summary(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
