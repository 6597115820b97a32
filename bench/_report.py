"""Turn the raw results of ``run_all.py`` into ``docs/benchmarks.md`` and a terminal summary."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SYNC = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@dataclass
class Row:
    """One line of the results table."""

    workload: str
    threadline: str
    sdk: str
    ratio: str
    target: str
    met: bool | None  # None: not measured


def _ok(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if "failed" not in r]


def _per_round(runs: list[dict[str, Any]], pick: Callable[[dict[str, Any]], float]) -> list[float]:
    return [pick(r) for r in _ok(runs)]


def _median_times(run: dict[str, Any]) -> float:
    return float(statistics.median(run["times"]))


def _median_at(size: int) -> Callable[[dict[str, Any]], float]:
    def pick(run: dict[str, Any]) -> float:
        return float(statistics.median(run["times_by_size"][str(size)]))

    return pick


def _stat(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def _fmt(value: float, unit: str) -> str:
    scale = {"s": 1.0, "ms": 1e3, "µs": 1e6, "MB": 1e-6, "/s": 1.0}[unit]
    v = value * scale
    digits = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2
    return f"{v:,.{digits}f}"


def _cell(stat: tuple[float, float, float] | None, unit: str) -> str:
    if stat is None:
        return "n/a"
    mid, lo, hi = stat
    spread = "" if lo == hi else f" ({_fmt(lo, unit)}–{_fmt(hi, unit)})"
    return f"{_fmt(mid, unit)} {unit}{spread}"


def _side(results: dict[str, Any], key: str, side: str) -> list[dict[str, Any]]:
    return list(results.get(key, {}).get(side, []))


def _ratio_row(
    results: dict[str, Any],
    key: str,
    label: str,
    unit: str,
    target: float,
    pick: Callable[[dict[str, Any]], float] = _median_times,
    higher_is_better: bool = False,
) -> Row:
    tl = _stat(_per_round(_side(results, key, "threadline"), pick))
    sdk = _stat(_per_round(_side(results, key, "sdk"), pick))
    if tl is None or sdk is None or sdk[0] == 0:
        return Row(label, _cell(tl, unit), _cell(sdk, unit), "n/a", "", None)
    ratio = tl[0] / sdk[0]
    if higher_is_better:
        return Row(
            label,
            _cell(tl, unit),
            _cell(sdk, unit),
            f"{ratio:.2f}×",
            f"≥ {target:g}×",
            ratio >= target,
        )
    return Row(
        label, _cell(tl, unit), _cell(sdk, unit), f"{ratio:.3f}", f"≤ {target:g}", ratio <= target
    )


def _flat_row(results: dict[str, Any]) -> Row:
    def mid(size: int, side: str) -> float | None:
        stat = _stat(_per_round(_side(results, "get_limit", side), _median_at(size)))
        return None if stat is None else stat[0]

    cells = []
    ratios = {}
    for side in ("threadline", "sdk"):
        small, large = mid(1_000, side), mid(1_000_000, side)
        if small is None or large is None:
            cells.append("n/a")
            continue
        ratios[side] = large / small
        cells.append(f"1M/1k = {large / small:.2f} ({_fmt(small, 'µs')} → {_fmt(large, 'µs')} µs)")
    tl = ratios.get("threadline")
    return Row(
        "`get_items(limit=20)` flat from 1k to 1M items",
        cells[0],
        cells[1],
        "—" if tl is None else f"{tl:.2f}",
        "threadline 1M/1k ≤ 1.5",
        None if tl is None else tl <= 1.5,
    )


def _correctness_row(results: dict[str, Any]) -> Row:
    cells = []
    verdict = True
    measured = False
    for side in ("threadline", "sdk"):
        runs = _side(results, "multiproc", side)
        good = _ok(runs)
        if not good:
            cells.append("n/a")
            verdict = False
            continue
        measured = True
        lost = sum(r["lost"] for r in good)
        missing = sum(r["missing"] for r in good)
        dup = sum(r["duplicated"] for r in good)
        errors = sum(r["errors"] for r in good) + sum(r["crashed"] for r in good)
        failed = len(runs) - len(good)
        cells.append(
            f"{lost} lost, {dup} duplicated, {errors} errors"
            + (f", {missing} never written" if missing != lost else "")
            + f" ({len(good)} runs{f', {failed} failed' if failed else ''})"
        )
        verdict = verdict and lost == missing == dup == errors == failed == 0
    return Row(
        "8 processes × 500 turns on one session in one file",
        cells[0],
        cells[1],
        "—",
        "0 / 0 / 0 (both)",
        verdict if measured else None,
    )


def _interleave_row(results: dict[str, Any]) -> Row:
    cells = []
    tl_total = None
    for side in ("threadline", "sdk"):
        good = _ok(_side(results, "concurrent_runs", side))
        if not good:
            cells.append("n/a")
            continue
        interleaved = sum(r["interleaved"] for r in good)
        turns = sum(r["turns"] for r in good)
        errors = sum(r["errors"] for r in good)
        cells.append(
            f"{interleaved} of {turns} turns interleaved" + (f", {errors} errors" if errors else "")
        )
        if side == "threadline":
            tl_total = interleaved + errors
    return Row(
        "2 concurrent `Runner.run` loops on one session",
        cells[0],
        cells[1],
        "—",
        "threadline: 0 interleaved",
        None if tl_total is None else tl_total == 0,
    )


def rows(record: dict[str, Any]) -> list[Row]:
    """The results table, in the issue's order."""
    results = record["results"]
    return [
        _ratio_row(
            results,
            "runner_10k",
            "`Runner.run` per turn, 10k items in session, full history",
            "ms",
            0.1,
        ),
        _ratio_row(
            results,
            "runner_1k",
            "`Runner.run` per turn, 1k items in session, full history",
            "ms",
            0.2,
        ),
        _ratio_row(results, "get_all_100k", "`get_items()` of 100k items, file", "ms", 0.5),
        _ratio_row(
            results,
            "get_all_100k",
            "`get_items()` of 100k items: peak RSS rise",
            "MB",
            0.5,
            pick=lambda r: float(r["peak_rise"]),
        ),
        _ratio_row(
            results,
            "get_limit",
            "`get_items(limit=20)` at 100k items",
            "µs",
            1.0,
            pick=_median_at(100_000),
        ),
        _flat_row(results),
        _ratio_row(
            results, "add_turn", "`add_items` of one turn, file session, durable commit", "µs", 1.0
        ),
        _ratio_row(
            results,
            "many_sessions",
            "50 asyncio tasks × 200 turns, own session each, one file (turns/s)",
            "/s",
            2.0,
            pick=lambda r: float(r["throughput"]),
            higher_is_better=True,
        ),
        _correctness_row(results),
        _interleave_row(results),
    ]


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "**not met**"


def _durability(results: dict[str, Any]) -> list[str]:
    lines = [
        "| side | journal_mode | synchronous | where it comes from |",
        "| --- | --- | --- | --- |",
    ]
    origin = {
        "threadline": "threadline's defaults (`SQLiteSession(id, path)`: WAL, `synchronous=FULL`)",
        "sdk": "the SDK sets WAL and leaves `synchronous` at SQLite's compiled default",
    }
    for side in ("threadline", "sdk"):
        good = _ok(_side(results, "add_turn", side))
        if not good or "durability" not in good[0]:
            continue
        d = good[0]["durability"]
        sync = _SYNC.get(d["synchronous"], str(d["synchronous"]))
        lines.append(
            f"| {side} | {d['journal_mode']} | {sync} ({d['synchronous']}) | {origin[side]} |"
        )
    return lines


def _durability_verdict(results: dict[str, Any]) -> str:
    modes = {}
    for side in ("threadline", "sdk"):
        good = _ok(_side(results, "add_turn", side))
        if good and "durability" in good[0]:
            d = good[0]["durability"]
            modes[side] = (str(d["journal_mode"]).lower(), int(d["synchronous"]))
    if len(modes) < 2:
        return "Durability settings were not measured in this run."
    if modes["threadline"] == modes["sdk"]:
        journal, sync = modes["sdk"]
        return (
            f"Both sides write with journal_mode={journal} and synchronous="
            f"{_SYNC.get(sync, sync)}, so the write comparisons are like for like."
        )
    if modes["sdk"][1] < modes["threadline"][1]:
        return (
            "**The SDK runs with weaker durability than threadline here**: its acknowledged "
            "writes may be lost on a power cut, which makes its writes cheaper."
        )
    return "The two sides run with different durability settings (see the table)."


def _breakdown(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, label in (("breakdown_1k", "1k"), ("breakdown_10k", "10k")):
        good = _ok(_side(results, key, "threadline"))
        if not good:
            continue
        turn = statistics.median(_median_times(r) for r in good)
        parts: dict[str, list[float]] = {}
        for r in good:
            for name, value in r["parts"].items():
                parts.setdefault(name, []).append(value)
        out.append(f"threadline turn at {label} items: median {turn * 1e3:.2f} ms")
        out.append("")
        out.append("| part | ms per turn | share |")
        out.append("| --- | --- | --- |")
        accounted = 0.0
        for name, values in parts.items():
            v = statistics.median(values)
            accounted += v
            out.append(f"| {name} | {v * 1e3:.2f} | {v / turn:.0%} |")
        rest = max(0.0, turn - accounted)
        out.append(
            f"| everything else (runner, model, asyncio) | {rest * 1e3:.2f} | {rest / turn:.0%} |"
        )
        out.append("")
    good = _ok(_side(results, "sdk_profile_10k", "sdk"))
    if good:
        shares = good[0]["shares"]
        out.append("OpenAI Agents SDK turn at 10k items, under cProfile (share of profiled time):")
        out.append("")
        for name, share in sorted(shares.items(), key=lambda kv: -kv[1]):
            out.append(f"* {name}: {share:.0%}")
        out.append("")
    text = _stat(
        _per_round(_side(results, "runner_10k_text", "threadline-scripted-text"), _median_times)
    )
    base = _stat(_per_round(_side(results, "runner_10k", "threadline"), _median_times))
    if text is not None and base is not None:
        out.append(
            f"With `ScriptedModel(responder=lambda req: text)` (a string responder, which makes "
            f"the test double estimate usage by JSON-encoding the whole request) a threadline "
            f"turn at 10k items takes {_cell(text, 'ms')} instead of {_cell(base, 'ms')}; the "
            f"table uses a responder returning a ready `ModelResponse`, like the SDK's model."
        )
        out.append("")
    return out


def _details(record: dict[str, Any]) -> list[str]:
    results = record["results"]
    out: list[str] = []
    for side in ("threadline", "sdk"):
        for r in _ok(_side(results, "many_sessions", side)):
            if r["errors"] or r["sessions_wrong"]:
                out.append(
                    f"* many_sessions, {side}: {r['sessions_wrong']} sessions wrong, errors {r['errors']}"
                )
        for r in _ok(_side(results, "multiproc", side)):
            if r["error_kinds"]:
                kinds = "; ".join(f"{k} ×{v}" for k, v in r["error_kinds"].items())
                out.append(f"* multiproc, {side}: {kinds}")
        runs = _ok(_side(results, "multiproc", side))
        if runs:
            walls = ", ".join(f"{r['wall']:.2f}" for r in runs)
            rates = statistics.median(r["items_per_s"] for r in runs)
            out.append(
                f"* multiproc, {side}: slowest writer finished in {walls} s; "
                f"median {rates:,.0f} items/s; split turns {sum(r['split_turns'] for r in runs)}"
            )
        for r in _ok(_side(results, "concurrent_runs", side)):
            if r["error_kinds"]:
                kinds = "; ".join(f"{k} ×{v}" for k, v in r["error_kinds"].items())
                out.append(f"* concurrent_runs, {side}: {kinds}")
    get_all = {s: _ok(_side(results, "get_all_100k", s)) for s in ("threadline", "sdk")}
    for side, runs in get_all.items():
        if runs:
            held = statistics.median(r["held_rise"] for r in runs)
            first = statistics.median(r["times"][0] for r in runs)
            out.append(
                f"* get_items() of 100k, {side}: first call in a fresh process "
                f"{first * 1e3:,.0f} ms; RSS still held while the result is alive {held / 1e6:.0f} MB"
            )
    for key, runs_by_side in results.items():
        for side, runs in runs_by_side.items():
            for r in runs:
                if "failed" in r:
                    first_line = r["failed"].strip().splitlines()[-1][:200]
                    out.append(f"* **{key} on {side} failed**: `{first_line}`")
    return out


def _sizes(results: dict[str, Any]) -> str:
    for side in ("threadline", "sdk"):
        good = _ok(_side(results, "runner_1k", side))
        if good and "stored_item_bytes" in good[0]:
            user, assistant = good[0]["stored_item_bytes"]
            return f"{user} bytes (user) and {assistant} bytes (assistant) of JSON as stored"
    return "about 120 and 490 bytes of JSON"


OTHER_BENCHMARKS = [
    (
        "deployment.md#numbers",
        "scale-out: store turns of SQLite, PostgreSQL and Redis at 1 / 8 / 64 sessions over "
        "4 processes against the SDK's `SQLAlchemySession` and `RedisSession`, and the windowed "
        "turn at 1k vs 1M items (`bench/scale.py`)",
    ),
    ("benchmarks-cli.md", "CLI start-up (`bench/cli_startup.py`)"),
    (
        "benchmarks-long.md",
        "a 1,000-turn conversation with compaction (`bench/long_conversation.py`), and per-turn "
        "store time against stored items, 1k to 1M (`bench/history_scaling.py`)",
    ),
    ("benchmarks-transfer.md", "export, import and fork of 100k items (`bench/transfer.py`)"),
    (
        "benchmarks-store.md",
        "the store layer against the commit before it (`bench/compare_base.py`)",
    ),
    (
        "benchmarks-serve.md",
        "`threadline serve`: `POST /v1/responses` with memory (SQLite) against the stateless "
        "pass-through at 1 / 16 / 64 clients (`bench/serve.py`)",
    ),
]
"""The benchmarks with their own pages (each rewritten by its own script, not by this one)."""

SCALE_SUMMARY = [
    "Scale-out at 64 sessions over 4 processes (from `bench/scale.py`, which `run_all.py` does "
    "not rerun; the full tables, p50s and the method are in "
    "[`docs/deployment.md`](deployment.md#numbers)):",
    "",
    "| store | threadline turns/s | p99 ms | SDK turns/s | p99 ms | throughput ratio (≥ 2×) "
    "| p99 ratio (≤ 0.5×) | 1M / 1k windowed turn (≤ 1.2) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    "| PostgreSQL vs `SQLAlchemySession` | 407.8 | 272.8 | 79.3 | 1089.2 | 4.4× (met; median "
    "of 7 runs: 4.4, 5.1, 4.1, 6.4, 4.8, 2.7, 4.1) | 0.25× (met; median of 7 runs: 0.24, "
    "0.25, 0.27, 0.24, 0.30, 0.34, 0.22) | 1.00 |",
    "| Redis vs `RedisSession` | 1392.5 | 123.9 | 401.4 | 266.9 | 3.5× (met; median of 3 runs: "
    "3.1, 3.5, 5.8) | 0.46× (met; median of 3 runs: 0.47, 0.46, 0.27) | 1.01 |",
]
"""Headline numbers copied from ``docs/deployment.md`` (update both after rerunning scale.py)."""

TRANSFER_SUMMARY = [
    "Export, import and fork of a 100,000-item session on SQLite (from `bench/transfer.py`, "
    "which `run_all.py` does not rerun; every store and the method are in "
    "[`docs/benchmarks-transfer.md`](benchmarks-transfer.md)):",
    "",
    "| export items/s (≥ 100k) | import items/s (≥ 100k) | fork (< 0.5 s) "
    "| fork(at_turn=-1) | encrypted import items/s | encrypted fork |",
    "| ---: | ---: | ---: | ---: | ---: | ---: |",
    "| 444,048 (met) | 171,286 (met) | 2 ms (met) | 81 ms | 81,613 | 1542 ms |",
]
"""Headline numbers copied from ``docs/benchmarks-transfer.md`` (update both after rerunning
transfer.py)."""


HISTORY_SUMMARY = [
    "Per-turn store time against stored items on SQLite (from `bench/history_scaling.py`, "
    "which `run_all.py` does not rerun; the tables, the load and the method are in "
    "[`docs/benchmarks-long.md`](benchmarks-long.md#per-turn-time-against-stored-items)): with "
    "`SessionSettings(max_tokens=8000)` a turn costs about the same at 1M items as at 1k; "
    "sending the full history, as the SDK's `SQLiteSession` does by default, costs time in "
    "proportion to the history.",
    "",
    "![per-turn store time against stored items](history-scaling.png)",
]
"""The picture of ``docs/history-scaling.png`` (rewritten by ``bench/history_scaling.py``)."""


SERVE_BEGIN = "<!-- serve: written by bench/serve.py -->"
SERVE_END = "<!-- /serve -->"


def with_serve_summary(text: str, block: list[str]) -> str:
    """``text`` (docs/benchmarks.md) with its serve block replaced by ``block`` (inserted
    before the durability section when it has none)."""
    joined = "\n".join(block)
    if SERVE_BEGIN in text and SERVE_END in text:
        head, rest = text.split(SERVE_BEGIN, 1)
        return head + joined + rest.split(SERVE_END, 1)[1]
    marker = "## Durability of each side"
    head, tail = text.split(marker, 1)
    return f"{head}{joined}\n\n{marker}{tail}"


def _serve_summary() -> list[str]:
    """The serve block bench/serve.py last wrote into docs/benchmarks.md (kept as it is)."""
    doc = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if SERVE_BEGIN not in text or SERVE_END not in text:
        return []
    block = text.split(SERVE_BEGIN, 1)[1].split(SERVE_END, 1)[0]
    return [SERVE_BEGIN, *block.strip("\n").split("\n"), SERVE_END, ""]


def _other_benchmarks() -> list[str]:
    lines = ["## Other benchmarks", ""]
    lines += [f"* [`docs/{page.split('#')[0]}`]({page}): {what}" for page, what in OTHER_BENCHMARKS]
    return [
        *lines,
        "",
        *SCALE_SUMMARY,
        "",
        *HISTORY_SUMMARY,
        "",
        *TRANSFER_SUMMARY,
        "",
        *_serve_summary(),
    ]


def render(record: dict[str, Any]) -> str:
    """The whole of ``docs/benchmarks.md``."""
    m = record["machine"]
    results = record["results"]
    table = rows(record)
    p = m["packages"]
    lines = [
        "# Benchmarks: threadline vs the OpenAI Agents SDK",
        "",
        "Generated by `bench/run_all.py`; do not edit by hand (rerun it instead).",
        "",
        f"* Date: {m['date']}; run took {record['elapsed'] / 60:.1f} min"
        + (" (**--quick**: one round, fewer repetitions)" if record.get("quick") else ""),
        f"* Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['kernel']}; "
        f"shared with other jobs (load average {m['load_start']} at the start, "
        f"{m.get('load_end', '?')} at the end)",
        f"* Disk: {m['filesystem']}; write + fsync of 4 KiB takes {m['fsync_ms']:.2f} ms (median)",
        f"* Python {m['python']}, SQLite {m['sqlite']}",
        f"* threadline {p['threadline']} (git {m['git']}), openai-agents {p['openai-agents']}, "
        f"openai {p['openai']}, pydantic {p['pydantic']}",
        "",
        "## Results",
        "",
        "Each cell is the median over rounds of each round's median (the range of the round "
        "medians in brackets); every round runs each side in a fresh process, alternating "
        "which goes first. Ratios are threadline ÷ SDK (times: lower is better; throughput: "
        "higher is better).",
        "",
        "| workload | threadline | OpenAI Agents SDK | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in table:
        lines.append(
            f"| {row.workload} | {row.threadline} | {row.sdk} | {row.ratio} | {row.target} | {_verdict(row.met)} |"
        )
    missed = [row.workload for row in table if row.met is False]
    lines += ["", f"Targets met: {sum(1 for r in table if r.met)} of {len(table)}."]
    if missed:
        lines.append("Not met in this run: " + "; ".join(missed) + ".")
    lines += ["", *_other_benchmarks(), "## Durability of each side", ""]
    lines += _durability(results)
    lines += ["", _durability_verdict(results), "", "## Where the time goes", ""]
    lines += _breakdown(results)
    lines += [
        "How the two designs differ where it shows (openai-agents 0.24.0 as pinned here):",
        "",
        "* Per turn the SDK's runner converts the whole history to JSON-compatible form and "
        "deep-copies it (the profile above), so its turn cost grows steeply with history "
        "length; threadline's grows with the cost of decoding the stored JSON once.",
        "* A threadline run holds the session's writer lease: one durable write to take it "
        "and one to give it back, on top of the input and output writes. At small histories "
        "these commits are a visible part of the turn (see the breakdown).",
        "* The SDK's `SQLiteSession` serialises every operation on one file inside a process "
        "behind one lock and commits each `add_items` on its own; threadline's store has one "
        "writer thread per file that commits the writes queued by many sessions together, and "
        "separate reader threads.",
        "* The SDK lets two runs on one session proceed together, so their turns interleave "
        "(table); threadline's lease makes the second run wait for the first.",
        "",
    ]
    details = _details(record)
    if details:
        lines += ["## Details", "", *details, ""]
    lines += [
        "## What each workload does",
        "",
        f"* Items: every turn is a user message and an assistant output message in Responses "
        f"format, {_sizes(results)}; each carries a unique marker.",
        "* Models: zero latency on both sides. threadline uses `threadline.testing.ScriptedModel` "
        "with a responder returning a `ModelResponse`; the SDK a small `agents.models.interface.Model` "
        "subclass returning a `ModelResponse`. Both answer with one assistant message echoing "
        "the newest user message's marker. Tracing is disabled on both sides.",
        "* Sessions: `SQLiteSession(session_id, path)` of each library with its defaults, on a "
        "file; no history limit, so the full history is sent every turn.",
        "* `Runner.run` per turn: a fresh file session is filled with the history "
        "(`add_items`, 2,000 items per call), one or two warm-up turns run, then each turn is "
        "timed alone.",
        "* `get_items()` / `get_items(limit=20)`: single-session databases of 1k, 100k and 1M "
        "items built once per side through its own `add_items` and cached in `bench/.data/`. "
        "The three sizes are open in one process and `get_items(limit=20)` calls go to each in "
        "turn, so a busy moment of the machine hits all sizes alike. "
        "Peak RSS rise is the kernel's peak RSS (VmHWM, reset just before the call) minus the "
        "RSS before the call, for the first call in a fresh process.",
        "* `add_items` of one turn: 2 items per call, one commit each, into a fresh file.",
        "* 50 tasks × 200 turns: one asyncio task per session, all sessions in one file; a turn "
        "is the session traffic of one runner turn with a 20-item window: `get_items(limit=20)`, "
        "`add_items([user])`, `add_items([assistant])`. Every session's history is checked "
        "afterwards.",
        "* 8 processes × 500 turns: each process appends 500 turns (`add_items` of 2 items) to "
        "the same session in one file, all starting together; afterwards every acknowledged "
        "marker must be stored exactly once and each turn's two items must be adjacent. "
        "Exceptions (such as `database is locked`) are counted as errors, not raised.",
        "* 2 concurrent runs: two `Runner.run` loops of 50 turns on the same session object; the "
        "model yields to the event loop before and after answering. A turn is interleaved when "
        "its user message is not immediately followed by its own answer.",
        "",
        "## How to reproduce",
        "",
        "```sh",
        "bash bench/setup.sh        # bench/.venv: threadline (editable) + openai-agents==0.24.0",
        "bash bench/run.sh          # all workloads, 3 to 5 minutes; writes this file",
        "bash bench/run.sh --quick  # one round of everything, for a smoke test",
        "bench/.venv/bin/python bench/run_all.py --only runner_1k,add_turn --rounds 7  # report in bench/results/",
        "```",
        "",
        "Raw numbers of every run are kept in `bench/results/` (not committed). The first run "
        "builds the cached databases (about 25 s; 0.8 GB in `bench/.data/`).",
        "",
    ]
    return "\n".join(lines)


def summary(record: dict[str, Any]) -> str:
    """The results table as plain text for the terminal."""
    out = []
    for row in rows(record):
        out.append(f"{_verdict(row.met):12} {row.ratio:>8}  {row.target:24} {row.workload}")
        out.append(f"{'':12} {'':>8}  threadline {row.threadline} | sdk {row.sdk}")
    return "\n".join(out)
