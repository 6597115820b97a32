"""How long `threadline --help` takes to start, against the interpreter's own start-up.

Each run's CPU time (user + system, from ``wait4``) and wall-clock time are recorded: on a
shared machine the wall clock includes waiting for a core, so the target is judged on CPU
time and the wall clock is reported beside it.

Runs `python -c pass` (the anchor), `python -m threadline.cli --help` and, when it is installed
next to the interpreter, the `threadline --help` console script, N times each in alternating
order after a warm-up, and reports each median and the median minus the anchor's. The target
(issue 10) is under 50 ms above the anchor. It also lists which heavy modules `--help` imports
(none should be: every dependency is imported where it is used). Writes
docs/benchmarks-cli.md (generated; do not edit by hand).

    .venv/bin/python bench/cli_startup.py [--runs 40] [--no-write]

Bytecode caching is on for the measured processes (PYTHONDONTWRITEBYTECODE is removed from
their environment), as on a user's machine; the warm-up runs write the caches.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks-cli.md"
TARGET_MS = 50.0
HEAVY = ("openai", "pydantic", "rich", "httpx", "sqlite3", "asyncio", "threadline.run")
WARM_UP = 3

PROBE = (
    "import contextlib, io, runpy, sys\n"
    "sys.argv = ['threadline', '--help']\n"
    "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
    "    runpy.run_module('threadline.cli', run_name='__main__')\n"
    "print(' '.join(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _time(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) milliseconds of one run of ``command``."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command} exited with {child.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def measure(runs: int, python: str) -> dict[str, object]:
    """Median start-up times in milliseconds of each case, and the heavy modules `--help` loads."""
    env = _env()
    cases = {
        "python -c pass": [python, "-c", "pass"],
        "python -m threadline.cli --help": [python, "-m", "threadline.cli", "--help"],
    }
    script = Path(python).with_name("threadline")
    if script.exists():
        cases["threadline --help"] = [str(script), "--help"]  # the console script
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for command in cases.values():
        for _ in range(WARM_UP):
            _time(command, env)
    order = list(cases)
    for round_number in range(runs):
        for name in order if round_number % 2 == 0 else reversed(order):
            spent_wall, spent_cpu = _time(cases[name], env)
            wall[name].append(spent_wall)
            cpu[name].append(spent_cpu)
    probe = subprocess.run(
        [python, "-c", PROBE.format(heavy=HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    medians = {name: statistics.median(values) for name, values in wall.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    return {
        "runs": runs,
        "medians_ms": medians,
        "above_anchor_ms": {n: v - medians["python -c pass"] for n, v in medians.items()},
        "ranges_ms": {name: (min(v), max(v)) for name, v in wall.items()},
        "cpu_medians_ms": cpu_medians,
        "cpu_above_anchor_ms": {
            n: v - cpu_medians["python -c pass"] for n, v in cpu_medians.items()
        },
        "heavy_imported": probe.stdout.split(),
        "load": os.getloadavg(),
    }


def _git_revision() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def _shown(python: str) -> str:
    path = Path(python).absolute()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def report(result: dict[str, object], python: str) -> str:
    """docs/benchmarks-cli.md from a :func:`measure` result."""
    medians: dict[str, float] = result["medians_ms"]  # type: ignore[assignment]
    above: dict[str, float] = result["above_anchor_ms"]  # type: ignore[assignment]
    ranges: dict[str, tuple[float, float]] = result["ranges_ms"]  # type: ignore[assignment]
    heavy: list[str] = result["heavy_imported"]  # type: ignore[assignment]
    load: tuple[float, float, float] = result["load"]  # type: ignore[assignment]
    cpu: dict[str, float] = result["cpu_medians_ms"]  # type: ignore[assignment]
    cpu_above: dict[str, float] = result["cpu_above_anchor_ms"]  # type: ignore[assignment]
    worst = max(value for name, value in cpu_above.items() if name != "python -c pass")
    worst_wall = max(value for name, value in above.items() if name != "python -c pass")
    met = worst < TARGET_MS
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks: CLI start-up",
        "",
        "Generated by `bench/cli_startup.py`; do not edit by hand (rerun it instead).",
        "",
        f"* Date: {when}; git {_git_revision()}; {result['runs']} runs of each case, alternating, "
        f"after {WARM_UP} warm-up runs",
        f"* Python {platform.python_version()} ({_shown(python)}); {os.cpu_count()} CPUs, shared with "
        f"other jobs (load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end)",
        "",
        "`threadline --help` is the console script installed next to the interpreter.",
        "",
        "CPU time (user + system of the child process) is what start-up costs; wall-clock time "
        "adds the wait for a core, which grows with the machine's load.",
        "",
        "| command | CPU, median | above `python -c pass` | wall clock, median (range) "
        "| above `python -c pass` |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, value in medians.items():
        low, high = ranges[name]
        anchor = name == "python -c pass"
        extra_cpu = "—" if anchor else f"{cpu_above[name]:.1f} ms"
        extra = "—" if anchor else f"{above[name]:.1f} ms"
        lines.append(
            f"| `{name}` | {cpu[name]:.1f} ms | {extra_cpu} | {value:.1f} ms "
            f"({low:.1f}–{high:.1f}) | {extra} |"
        )
    lines += [
        "",
        f"Target: `threadline --help` under {TARGET_MS:.0f} ms above the interpreter's own start-up "
        f"(CPU time): {'met' if met else 'NOT met'} (worst case {worst:.1f} ms; wall clock "
        f"{worst_wall:.1f} ms at this load).",
        "",
        "Heavy modules imported by `--help` (of "
        + ", ".join(f"`{m}`" for m in HEAVY)
        + "): "
        + (", ".join(f"`{m}`" for m in heavy) if heavy else "none")
        + ". The parser is built from the standard library alone; each command imports what it "
        "needs when it runs (the runner, `openai`, the store, `rich` for rendering).",
        "",
        "Reproduce: `.venv/bin/python bench/cli_startup.py` (`--runs N`, `--no-write`).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Measure, print the numbers as JSON and (unless ``--no-write``) rewrite the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite the doc")
    args = parser.parse_args()
    result = measure(args.runs, args.python)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        DOC.write_text(report(result, args.python), encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
