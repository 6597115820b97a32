"""One workload on one side in this process: ``python bench/worker.py WORKLOAD SIDE 'JSON'``.

Prints one JSON object (the measurements) as its last line of output. ``run_all.py`` starts
a fresh process per measurement so the two libraries never share a heap or a page of RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import _datasets
import _items
import _sides

HERE = Path(__file__).resolve().parent
WORK = _datasets.DATA / "work"


def _fresh_db(tag: str) -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{tag}-{os.getpid()}.db"
    _remove_db(str(path))
    return str(path)


def _remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) for this process; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def _prefill(session: Any, count: int) -> None:
    items = _items.turns(count // 2, prefix="h")
    for start in range(0, len(items), 2000):
        await session.add_items(items[start : start + 2000])


# ----------------------------------------------------------------------------- workloads


async def runner_turn(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """Runner.run per turn on a session already holding ``items`` items (full history)."""
    path = _fresh_db("runner")
    session = side.session("runner", path)
    try:
        await _prefill(session, p["items"])
        agent = side.agent()
        for i in range(p["warmup"]):
            await side.run(agent, _items.user_text(f"w{i}"), session)
        times = []
        for i in range(p["turns"]):
            started = time.perf_counter()
            result = await side.run(agent, _items.user_text(f"r{i}"), session)
            times.append(time.perf_counter() - started)
        assert result.final_output.startswith(f"[r{p['turns'] - 1}]"), result.final_output[:40]
        stored = await session.get_items(limit=2)
        sizes = [len(json.dumps(item)) for item in stored]
        return {"times": times, "stored_item_bytes": sizes, "durability": side.durability(session)}
    finally:
        side.close(session)
        _remove_db(path)


async def get_all(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """get_items() of a whole cached history: time, and peak RSS rise of the first call."""
    path, _ = await _datasets.ensure(side, p["items"])
    session = side.session(_datasets.SESSION_ID, str(path))
    try:
        await session.get_items(limit=1)  # connections and threads up, schema checked
        gc.collect()
        rss_before = _rss()
        exact = _reset_peak()
        peak_before = _peak()
        started = time.perf_counter()
        items = await session.get_items()
        first = time.perf_counter() - started
        peak_after = _peak()
        held = _rss() - rss_before
        count = len(items)
        assert count == p["items"], count
        assert _items.marker_of(items[-1]) == f"t{count // 2 - 1}"
        del items
        gc.collect()
        times = [first]
        for _ in range(p["repeat"]):
            started = time.perf_counter()
            items = await session.get_items()
            times.append(time.perf_counter() - started)
            del items
            gc.collect()
        return {
            "times": times,
            "rss_before": rss_before,
            "peak_rise": peak_after - (rss_before if exact else peak_before),
            "peak_exact": exact,
            "held_rise": held,
        }
    finally:
        side.close(session)


async def get_limit(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """get_items(limit=...) on cached histories of several sizes, calls interleaved.

    One session per size, all open in this process; each round calls every size once (in a
    rotating order), so a busy moment of the machine hits all sizes alike.
    """
    sessions = {}
    try:
        for count in p["sizes"]:
            path, _ = await _datasets.ensure(side, count)
            sessions[count] = side.session(_datasets.SESSION_ID, str(path))
        for _ in range(p["warmup"]):
            for session in sessions.values():
                await session.get_items(limit=p["limit"])
        times: dict[str, list[float]] = {str(count): [] for count in sessions}
        order = list(sessions.items())
        for call in range(p["calls"]):
            shift = call % len(order)  # rotate, so no size always goes first
            for count, session in order[shift:] + order[:shift]:
                started = time.perf_counter()
                items = await session.get_items(limit=p["limit"])
                times[str(count)].append(time.perf_counter() - started)
                assert len(items) == p["limit"]
                assert _items.marker_of(items[-1]) == f"t{count // 2 - 1}"
        return {"times_by_size": times}
    finally:
        for session in sessions.values():
            side.close(session)


async def add_turn(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """add_items of one turn (two items) into a file session, one durable commit each."""
    path = _fresh_db("add")
    session = side.session("add", path)
    try:
        for i in range(p["warmup"]):
            await session.add_items(_items.turn(f"w{i}"))
        batches = [_items.turn(f"a{i}") for i in range(p["calls"])]
        times = []
        for batch in batches:
            started = time.perf_counter()
            await session.add_items(batch)
            times.append(time.perf_counter() - started)
        count = len(await session.get_items())
        assert count == 2 * (p["warmup"] + p["calls"]), count
        return {"times": times, "durability": side.durability(session)}
    finally:
        side.close(session)
        _remove_db(path)


async def many_sessions(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """``tasks`` asyncio tasks, each its own session in one file, ``turns`` turns each.

    A turn is the session traffic of one Runner turn with a 20-item window: read the window,
    append the user message, append the assistant's answer (two durable writes).
    """
    path = _fresh_db("many")
    sessions = [side.session(f"user-{k}", path) for k in range(p["tasks"])]
    errors: Counter[str] = Counter()
    acked = 0

    async def user(k: int) -> None:
        nonlocal acked
        session = sessions[k]
        for i in range(p["turns"]):
            question, answer = _items.turn(f"u{k}-{i}")
            try:
                await session.get_items(limit=20)
                await session.add_items([question])
                await session.add_items([answer])
                acked += 1
            except Exception as exc:  # recorded, not raised: the count is the result
                errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1

    try:
        started = time.perf_counter()
        await asyncio.gather(*(user(k) for k in range(p["tasks"])))
        wall = time.perf_counter() - started
        lost = 0
        for k, session in enumerate(sessions):
            items = await session.get_items()
            expected = [f"u{k}-{i}" for i in range(p["turns"]) for _ in (0, 1)]
            if [_items.marker_of(item) for item in items] != expected:
                lost += 1
        return {
            "wall": wall,
            "turns": p["tasks"] * p["turns"],
            "acked": acked,
            "throughput": acked / wall,
            "sessions_wrong": lost,
            "errors": dict(errors),
        }
    finally:
        for session in sessions:
            side.close(session)
        _remove_db(path)


async def multiproc_child(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """One of the writer processes: ``turns`` appends of one turn to the shared session."""
    session = side.session("shared", p["path"])
    errors: Counter[str] = Counter()
    acked = []
    try:
        print("ready", flush=True)  # then wait until every writer is up
        await asyncio.to_thread(sys.stdin.readline)
        started = time.perf_counter()
        for i in range(p["turns"]):
            marker = f"p{p['proc']}-{i}"
            try:
                await session.add_items(_items.turn(marker))
                acked.append(marker)
            except Exception as exc:
                errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
        return {"acked": acked, "errors": dict(errors), "wall": time.perf_counter() - started}
    finally:
        side.close(session)


def _run_writers(side_name: str, path: str, p: dict[str, Any]) -> tuple[list[Any], int]:
    """Start the writer processes, let them go at once when all are ready, collect results."""
    children = []
    for proc in range(p["procs"]):
        params = {"path": path, "proc": proc, "turns": p["turns"]}
        command = [sys.executable, __file__, "multiproc_child", side_name, json.dumps(params)]
        children.append(
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for child in children:
        assert child.stdout is not None
        child.stdout.readline()  # "ready" (or EOF if it crashed)
    for child in children:
        assert child.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write("go\n")
            child.stdin.flush()
    results = []
    crashed = 0
    for child in children:
        out, err = child.communicate()
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            crashed += 1
            results.append({"acked": [], "errors": {f"crashed: {err.strip()[-200:]}": 1}})
    return results, crashed


async def multiproc(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """``procs`` processes each append ``turns`` turns to one session in one file."""
    path = _fresh_db("multiproc")
    # Create the file and schema first, as an application would before starting workers.
    session = side.session("shared", path)
    await session.get_items(limit=1)
    side.close(session)
    results, crashed = await asyncio.to_thread(_run_writers, side.name, path, p)
    walls = [r["wall"] for r in results if "wall" in r]
    wall = max(walls) if walls else float("nan")
    session = side.session("shared", path)
    try:
        items = await session.get_items()
    finally:
        side.close(session)
        _remove_db(path)
    markers = Counter(_items.marker_of(item) for item in items)
    acked = {m for r in results for m in r["acked"]}
    expected = {f"p{k}-{i}" for k in range(p["procs"]) for i in range(p["turns"])}
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    # A turn is split when its two items are not adjacent.
    split = 0
    for i, item in enumerate(items):
        if _items.is_user(item):
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is None or _items.marker_of(nxt) != _items.marker_of(item):
                split += 1
    return {
        "expected_items": 2 * len(expected),
        "stored_items": len(items),
        "lost": sum(1 for m in acked if markers[m] < 2),
        "missing": sum(1 for m in expected if markers[m] < 2),
        "duplicated": sum(1 for m, c in markers.items() if c > 2),
        "split_turns": split,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "crashed": crashed,
        "wall": wall,
        "items_per_s": 2 * len(acked) / wall if walls else 0.0,
    }


async def concurrent_runs(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """Two Runner.run loops on one session object; count turns split by the other run."""
    path = _fresh_db("concurrent")
    session = side.session("concurrent", path)
    agent = side.agent(yield_to_loop=True)
    errors: Counter[str] = Counter()

    async def loop(tag: str) -> None:
        for i in range(p["turns"]):
            try:
                await side.run(agent, _items.user_text(f"{tag}{i}"), session)
            except Exception as exc:
                errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
            await asyncio.sleep(0)

    try:
        started = time.perf_counter()
        await asyncio.gather(loop("A"), loop("B"))
        wall = time.perf_counter() - started
        items = await session.get_items()
    finally:
        side.close(session)
        _remove_db(path)
    interleaved = 0
    turns = 0
    for i, item in enumerate(items):
        if _items.is_user(item):
            turns += 1
            nxt = items[i + 1] if i + 1 < len(items) else None
            if (
                nxt is None
                or _items.is_user(nxt)
                or _items.marker_of(nxt) != _items.marker_of(item)
            ):
                interleaved += 1
    return {
        "turns": turns,
        "expected_turns": 2 * p["turns"],
        "items": len(items),
        "interleaved": interleaved,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "wall": wall,
    }


async def turn_breakdown(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """Where a threadline Runner turn spends its time: session calls timed from outside.

    Wraps the session's public methods and the store's lease calls in this process only
    (threadline itself is not changed), then runs ``turns`` turns.
    """
    from threadline.run import persistence
    from threadline.sessions.sqlite import SQLiteSession, SQLiteStore

    spent: dict[str, list[float]] = {}

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                spent.setdefault(label, []).append(time.perf_counter() - started)

        setattr(owner, name, wrapper)

    timed(SQLiteStore, "_acquire_lease", "lease acquire (durable write)")
    timed(SQLiteSession, "get_window", "load history (get_window)")
    timed(SQLiteSession, "add_items", "add_items (input, then output)")
    timed(SQLiteStore, "_release_lease", "lease release (durable write)")
    try:  # the store layer: the lease primitives live on the backend
        from threadline.sessions.sqlite._backend import SQLiteBackend
    except ImportError:
        pass
    else:
        timed(SQLiteBackend, "lease_acquire", "lease acquire (durable write)")
        timed(SQLiteBackend, "lease_release", "lease release (durable write)")
    repair = persistence.repair_orphans

    def timed_repair(items: Any) -> Any:
        started = time.perf_counter()
        try:
            return repair(items)
        finally:
            spent.setdefault("repair_orphans", []).append(time.perf_counter() - started)

    persistence.repair_orphans = timed_repair  # type: ignore[assignment]
    path = _fresh_db("breakdown")
    session = side.session("breakdown", path)
    try:
        await _prefill(session, p["items"])
        agent = side.agent()
        for i in range(p["warmup"]):
            await side.run(agent, _items.user_text(f"w{i}"), session)
        spent.clear()
        times = []
        for i in range(p["turns"]):
            started = time.perf_counter()
            await side.run(agent, _items.user_text(f"r{i}"), session)
            times.append(time.perf_counter() - started)
        # Median call time x calls per turn: robust against the odd stalled turn.
        per_turn = {label: statistics.median(v) * len(v) / p["turns"] for label, v in spent.items()}
        return {"times": times, "parts": per_turn}
    finally:
        side.close(session)
        _remove_db(path)


async def sdk_profile(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """Share of an SDK Runner turn spent in its own history handling, under cProfile."""
    import cProfile
    import pstats

    path = _fresh_db("sdkprofile")
    session = side.session("sdkprofile", path)
    try:
        await _prefill(session, p["items"])
        agent = side.agent()
        await side.run(agent, _items.user_text("w0"), session)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(p["turns"]):
            await side.run(agent, _items.user_text(f"r{i}"), session)
        profiler.disable()
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        total = max(v[3] for v in stats.values())
        wanted = {
            "agents/util/_json.py:_to_dump_compatible": "JSON-compatibility walk of the input",
            "copy.py:deepcopy": "copy.deepcopy of the input",
        }
        shares: dict[str, float] = {}
        for (filename, _line, func), value in stats.items():
            for key, label in wanted.items():
                file_part, func_part = key.split(":")
                if filename.endswith(file_part) and func == func_part:
                    shares[label] = max(shares.get(label, 0.0), value[3] / total)
        return {"shares": shares, "profiled_seconds": total}
    finally:
        side.close(session)
        _remove_db(path)


async def store_search(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """``store.search`` of a rare word (one turn's unique marker) over a cached history."""
    from threadline.sessions import SQLiteStore

    path, _ = await _datasets.ensure(side, p["items"])
    store = SQLiteStore(path)
    try:
        turns = p["items"] // 2
        times = []
        for call in range(p["warmup"] + p["calls"]):
            marker = f"t{(call * 7919) % turns}"
            started = time.perf_counter()
            hits = await store.search(marker, limit=20)
            took = time.perf_counter() - started
            assert [h.position for h in hits] and all(marker in h.snippet for h in hits), hits
            if call >= p["warmup"]:
                times.append(took)
        return {"times": times}
    finally:
        store.close()


async def list_sessions(side: _sides.Side, p: dict[str, Any]) -> dict[str, Any]:
    """``list_sessions(limit=50)`` (first page and a later page) with N sessions in the file."""
    from threadline.sessions import SQLiteStore

    times: dict[str, list[float]] = {}
    for count in p["sizes"]:
        path = await _datasets.ensure_sessions(count)
        store = SQLiteStore(path)
        try:
            first = await store.list_sessions(limit=p["limit"])
            cursor = first.next_cursor
            samples = []
            for call in range(p["warmup"] + p["calls"]):
                after = None if call % 2 == 0 else cursor
                started = time.perf_counter()
                page = await store.list_sessions(limit=p["limit"], after=after)
                took = time.perf_counter() - started
                assert len(page) == p["limit"]
                if call >= p["warmup"]:
                    samples.append(took)
            times[str(count)] = samples
        finally:
            store.close()
    return {"times_by_size": times}


WORKLOADS = {
    f.__name__: f
    for f in (
        store_search,
        list_sessions,
        runner_turn,
        get_all,
        get_limit,
        add_turn,
        many_sessions,
        multiproc_child,
        multiproc,
        concurrent_runs,
        turn_breakdown,
        sdk_profile,
    )
}


def main() -> None:
    workload, side_name = sys.argv[1], sys.argv[2]
    params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    side = _sides.load(side_name)
    try:
        result = asyncio.run(WORKLOADS[workload](side, params))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    result["side"] = side.name
    result["version"] = side.version
    print(json.dumps(result))


if __name__ == "__main__":
    main()
