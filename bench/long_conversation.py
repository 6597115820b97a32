"""A 1,000-turn conversation with and without compaction (issue 14's benchmark).

Runs the same scripted conversation twice through ``Runner.run`` on a SQLite file session:

* **full history** — no budget, as the OpenAI Agents SDK sends it by default;
* **windowed + compaction** — ``SessionSettings(max_tokens=8000, compact_at=6000)``, the
  older turns summarised by a scripted summariser after each turn that passed ``compact_at``.

It measures the input tokens of every model request (the store's own estimate, about four
characters a token: the scripted models have no tokenizer), the summariser's requests too,
and the time each turn spends in the session (``get_window`` plus the ``add_items`` writes;
the background compaction is awaited between turns, as a user's next message would arrive
later, and is not counted in the turn). Targets:

* total input tokens with compaction (summariser included) <= 5% of full history;
* every request with compaction <= 8,000 tokens;
* per-turn store time flat: median of turns 951-1000 / median of turns 10-59 <= 1.2 (median
  over ``--runs`` runs).

    bench/.venv-long/bin/python bench/long_conversation.py          # writes the report + plot
    python -m venv bench/.venv-long && bench/.venv-long/bin/pip install -e . -r bench/requirements-long.txt

Writes ``bench/results/long_conversation.json``, ``docs/benchmarks-long.md`` (keeping the
section ``bench/history_scaling.py`` writes there) and (with matplotlib)
``docs/long-conversation-tokens.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from threadline import (  # noqa: E402
    Agent,
    CompactionSettings,
    RunConfig,
    Runner,
    SessionSettings,
    SQLiteStore,
    function_tool,
)
from threadline.items import assistant_message, function_call  # noqa: E402
from threadline.models.base import (  # noqa: E402
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    ResponseCompleted,
)
from threadline.sessions import estimate_tokens  # noqa: E402
from threadline.usage import Usage  # noqa: E402

PROBE = 50
MAX_TOKENS = 8000
COMPACT_AT = 6000
INSTRUCTIONS = "You are a helpful travel assistant. Answer accurately and concisely."
WORDS = [
    "the",
    "itinerary",
    "includes",
    "a",
    "morning",
    "ferry",
    "to",
    "the",
    "island",
    "then",
    "lunch",
    "near",
    "the",
    "harbour",
    "and",
    "a",
    "museum",
    "visit",
    "in",
    "the",
    "afternoon",
    "with",
    "dinner",
    "reservations",
    "at",
    "eight",
    "and",
    "notes",
    "about",
    "budget",
    "luggage",
    "weather",
    "forecasts",
    "train",
    "connections",
    "hotel",
    "check",
    "in",
    "times",
    "and",
    "local",
    "customs",
]


def text(rng: random.Random, low: int, high: int, tag: str) -> str:
    """Prose of ``low``..``high`` characters starting with ``tag``."""
    length = rng.randint(low, high)
    out = [tag]
    size = len(tag)
    while size < length:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:length]


@dataclass
class Turn:
    """One scripted turn: the user's text, an optional tool call and the answer."""

    user: str
    answer: str
    tool_output: str | None


def script(turns: int, seed: int = 14) -> list[Turn]:
    """Realistic sizes: user 80-800 characters, answers 300-2,400, and a tool call with a
    400-2,000 character result every fourth turn."""
    rng = random.Random(seed)
    return [
        Turn(
            user=text(rng, 80, 800, f"[turn {index}] question:"),
            answer=text(rng, 300, 2400, f"[turn {index}] answer:"),
            tool_output=text(rng, 400, 2000, f"[turn {index}] facts:") if index % 4 == 3 else None,
        )
        for index in range(turns)
    ]


def request_tokens(request: ModelRequest) -> int:
    """The estimated input tokens of one request: instructions plus every input item."""
    return estimate_tokens(request.instructions or "") + sum(
        estimate_tokens(dict(item)) for item in request.input
    )


class CountingModel:
    """A scripted model that keeps only the size of each request (a 1,000-turn full history
    would not fit in memory as recorded requests)."""

    def __init__(self, conversation: list[Turn]) -> None:
        self.conversation = conversation
        self.turn = 0
        self.called_tool = False
        self.sizes: list[int] = []

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        self.sizes.append(request_tokens(request))
        turn = self.conversation[self.turn]
        if turn.tool_output is not None and not self.called_tool:
            self.called_tool = True
            item = function_call(f"call_{self.turn}", "lookup", json.dumps({"turn": self.turn}))
            return ModelResponse(output=[item], usage=Usage(requests=1))
        self.called_tool = False
        self.turn += 1
        return ModelResponse(output=[assistant_message(turn.answer)], usage=Usage(requests=1))

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        yield ResponseCompleted(await self.get_response(request))


class Summariser:
    """A scripted summariser: a summary of about 1,600 characters (~400 tokens)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.model = "scripted-summariser"

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        self.sizes.append(request_tokens(request))
        rng = random.Random(len(self.sizes))
        summary = text(rng, 1500, 1700, f"Summary {len(self.sizes)}: the user plans a trip;")
        return ModelResponse(output=[assistant_message(summary)], usage=Usage(requests=1))

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        yield ResponseCompleted(await self.get_response(request))


@dataclass
class Timed:
    """Accumulates the time a session's reads and writes take within one turn."""

    current: float = 0.0
    turns: list[float] = field(default_factory=list)

    def wrap(self, session: Any) -> None:
        for name in ("get_window", "add_items"):
            method = getattr(session, name)

            async def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await _method(*args, **kwargs)
                finally:
                    self.current += time.perf_counter() - started

            setattr(session, name, timed)

    def end_turn(self) -> None:
        self.turns.append(self.current)
        self.current = 0.0


class Conversation:
    """One session of the scripted conversation, its models and its store-time meter."""

    def __init__(
        self, conversation: list[Turn], tool: Any, session: Any, summariser: Summariser
    ) -> None:
        self.conversation = conversation
        self.model = CountingModel(conversation)
        self.agent = Agent(
            name="Assistant", instructions=INSTRUCTIONS, model=self.model, tools=[tool]
        )
        self.run_config = RunConfig(compaction=CompactionSettings(model=summariser, timeout=60))
        self.session = session
        self.timer = Timed()
        self.timer.wrap(session)
        self.compactions = 0
        self.largest: list[int] = []

    async def turn(self) -> float:
        """Run the next turn (and await its compaction); the turn's store time."""
        index = self.model.turn
        before = len(self.model.sizes)
        result = await Runner.run(
            self.agent,
            self.conversation[index].user,
            session=self.session,
            run_config=self.run_config,
        )
        self.timer.end_turn()
        self.largest.append(max(self.model.sizes[before:]))
        if result.compaction is not None:
            outcome = await result.compaction
            self.compactions += outcome.compacted
            if outcome.status in ("failed", "rejected"):
                raise SystemExit(f"turn {index}: compaction {outcome.status}: {outcome.reason}")
        return self.timer.turns[-1]


async def converse(turns: int, compaction: bool, folder: Path, probe: int = 0) -> dict[str, Any]:
    """``turns`` turns on one session; then, with ``probe``, ``probe`` more turns on it
    interleaved with turns 10.. of a second session in the same store (so both meet the
    same machine load), for the store time at turn ``turns`` against turn 10."""
    conversation = script(turns + probe)
    outputs = {i: t.tool_output for i, t in enumerate(conversation)}

    @function_tool
    def lookup(turn: int) -> str:
        """Look up the facts for a turn.

        Args:
            turn: The turn number.
        """
        return outputs[turn] or ""

    summariser = Summariser()
    settings = SessionSettings(max_tokens=MAX_TOKENS, compact_at=COMPACT_AT) if compaction else None
    store = SQLiteStore(folder / ("compaction.db" if compaction else "full.db"))
    main = Conversation(
        conversation, lookup, store.session("long", session_settings=settings), summariser
    )
    started = time.perf_counter()
    for _ in range(turns):
        await main.turn()
    elapsed = time.perf_counter() - started
    items = len(await main.session.get_items())
    request_sizes = list(main.model.sizes)
    compactions = main.compactions
    agent_tokens = sum(request_sizes)
    summariser_tokens, summariser_requests = sum(summariser.sizes), len(summariser.sizes)
    early_times: list[float] = []
    late_times: list[float] = []
    if probe:
        early = Conversation(
            conversation, lookup, store.session("early", session_settings=settings), Summariser()
        )
        for _ in range(10):
            await early.turn()
        for _ in range(probe):
            early_times.append(await early.turn())
            late_times.append(await main.turn())
    await store.aclose()
    return {
        "compaction": compaction,
        "turns": turns,
        "items": items,
        "seconds": elapsed,
        "request_tokens": request_sizes,
        "largest_request_per_turn": main.largest[:turns],
        "agent_input_tokens": agent_tokens,
        "summariser_input_tokens": summariser_tokens,
        "summariser_requests": summariser_requests,
        "compactions": compactions,
        "store_seconds_per_turn": main.timer.turns[:turns],
        "probe_early": early_times,
        "probe_late": late_times,
    }


def flatness(run: dict[str, Any]) -> tuple[float, float, float]:
    early = statistics.median(run["probe_early"])
    late = statistics.median(run["probe_late"])
    return early, late, late / early


def report(full: dict[str, Any], runs: list[dict[str, Any]], plot: str | None) -> str:
    from datetime import datetime, timezone

    compacted = runs[0]
    total_full = full["agent_input_tokens"]
    total_compacted = compacted["agent_input_tokens"] + compacted["summariser_input_tokens"]
    share = total_compacted / total_full
    largest = max(compacted["request_tokens"])
    flat = [flatness(run) for run in runs]
    ratio = statistics.median(r for _, _, r in flat)
    early = statistics.median(e for e, _, _ in flat)
    late = statistics.median(last for _, last, _ in flat)
    turns = full["turns"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    lines = [
        "# Benchmark: a long conversation with compaction",
        "",
        "Generated by `bench/long_conversation.py`; do not edit by hand (rerun it instead).",
        "",
        f"* Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; Python {sys.version.split()[0]}; "
        f"threadline git {_git_commit()}; load average {_load()}",
        f"* {turns:,} turns through `Runner.run` on a SQLite file session (durable commits), "
        "scripted models; user messages 80-800 characters, answers 300-2,400, a tool call "
        "with a 400-2,000 character result every fourth turn "
        f"({full['items']:,} items stored).",
        "* Tokens are the store's estimate (about four characters a token) of each request's "
        "instructions and input items.",
        f"* With compaction: `SessionSettings(max_tokens={MAX_TOKENS}, compact_at={COMPACT_AT})`,"
        " the default `keep_tokens` (half of `compact_at`), a scripted summariser answering "
        "~400-token summaries; each turn's compaction is awaited before the next turn.",
        "",
        "| measure | full history | windowed + compaction | target | |",
        "| --- | --- | --- | --- | --- |",
        f"| total input tokens sent (summariser included) | {total_full:,} | {total_compacted:,} "
        f"({share:.2%}) | ≤ 5% | {verdict(share <= 0.05)} |",
        f"| of which the summariser's | — | {compacted['summariser_input_tokens']:,} in "
        f"{compacted['summariser_requests']} requests ({compacted['compactions']} compactions) "
        "| | |",
        f"| largest single request | {max(full['request_tokens']):,} | {largest:,} | ≤ {MAX_TOKENS:,} "
        f"| {verdict(largest <= MAX_TOKENS)} |",
        f"| per-turn store time, turns 11-{10 + PROBE} → {turns + 1}-{turns + PROBE} "
        f"(interleaved; median of {len(runs)} runs) | — | {early * 1e3:.2f} ms → "
        f"{late * 1e3:.2f} ms: ratio {ratio:.2f} "
        f"(runs: {', '.join(f'{r:.2f}' for _, _, r in flat)}) | ≤ 1.2 | {verdict(ratio <= 1.2)} |",
        f"| wall time of the {turns:,} turns | {full['seconds']:.1f} s | "
        f"{statistics.median(r['seconds'] for r in runs):.1f} s | | |",
        "",
        "Per-turn store time is the time a turn spends in `get_window` and `add_items` (the "
        "input, then each completed step); the background compaction's own reads and its one "
        "record write happen between turns and are not in it. It is measured on two sessions "
        f"of the same file, taking turns: {PROBE} turns of a second conversation from its turn "
        f"11 on, alternating with turns {turns + 1}-{turns + PROBE} of the long one, so that "
        "both meet the same machine load (the machine is shared).",
    ]
    if plot:
        lines += ["", f"![input tokens per turn]({plot})"]
    return "\n".join(lines) + "\n"


def _kept_section(page: Path) -> str:
    """The section ``bench/history_scaling.py`` wrote into ``page`` (kept on a rewrite)."""
    begin, end = "<!-- history-scaling:begin -->", "<!-- history-scaling:end -->"
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if begin not in current or end not in current:
        return ""
    return "\n" + begin + current.split(begin, 1)[1].split(end, 1)[0] + end + "\n"


def _git_commit() -> str:
    import subprocess

    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "?"
    return done.stdout.strip() or "?"


def _load() -> str:
    import os

    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def draw(full: dict[str, Any], compacted: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib: pip install -r bench/requirements-long.txt for the plot")
        return False
    figure, axes = plt.subplots(figsize=(8, 4.2), dpi=110)
    x = range(1, full["turns"] + 1)
    axes.plot(x, full["largest_request_per_turn"], label="full history (SDK default)")
    axes.plot(
        x,
        compacted["largest_request_per_turn"],
        label=f"max_tokens={MAX_TOKENS}, compact_at={COMPACT_AT}",
    )
    axes.axhline(MAX_TOKENS, color="grey", linestyle=":", linewidth=1, label="budget")
    axes.set_yscale("log")
    axes.set_xlabel("turn")
    axes.set_ylabel("input tokens of the turn's largest request")
    axes.set_title(f"A {full['turns']:,}-turn conversation: input tokens per turn")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="runs with compaction (timing)")
    parser.add_argument("--no-write", action="store_true", help="print, write no files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        full = await converse(args.turns, False, Path(folder))
        runs = []
        for index in range(args.runs):
            run_folder = Path(folder) / f"run{index}"
            run_folder.mkdir()
            runs.append(await converse(args.turns, True, run_folder, PROBE))
    plot_name = "long-conversation-tokens.png"
    drawn = not args.no_write and draw(full, runs[0], ROOT / "docs" / plot_name)
    text_report = report(full, runs, plot_name if drawn else None)
    print(text_report)
    if not args.no_write:
        page = ROOT / "docs" / "benchmarks-long.md"
        page.write_text(text_report + _kept_section(page), encoding="utf-8")
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        (results / "long_conversation.json").write_text(
            json.dumps({"full": full, "compaction": runs}), encoding="utf-8"
        )


if __name__ == "__main__":
    asyncio.run(main())
