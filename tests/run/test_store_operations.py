"""What one turn costs the store: the reads, durable commits and lease writes of a run.

The minimum for a turn on a SQLite file store is pinned here: **one lease-and-read** (the
lease, then under it the usage and pending-run records, the compaction summary and the window,
in one snapshot, as one job of the writer thread: the run's lease is taken by its start read),
**two commits** (the user input before the model is called, then the reply with its usage and
any records; DESIGN §7), of which only the reply's waits for its fsync (the input is committed
"durable soon": the writer fsyncs it while the model works, before it takes another write),
and **the lease's release** (bookkeeping, no fsync; a library run keeps its lease until it
ends, its hooks run under it). Folding the acquire into the input commit is not possible
without giving up the fence: the input write is checked against the lease it holds, and the
history the model sees must be read under that lease.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from threadline import Agent, Runner, SessionSettings, open_store
from threadline.sessions._usage import USAGE_KEY
from threadline.sessions.pending import PENDING_RUN_RECORD
from threadline.testing import ScriptedModel

from .._engine_jobs import log_engine_jobs


@pytest.fixture
async def counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Any, list[tuple[str, str]]]]:
    """A SQLite file store, and the log of its engine's jobs (``tests/_engine_jobs.py``)."""
    log = log_engine_jobs(monkeypatch)
    store = open_store(f"sqlite:///{tmp_path / 'turns.db'}")
    await store.setup()
    yield store, log
    await store.aclose()


_KINDS = {"read": "read", "True": "durable", "soon": "soon", "False": "lease"}


def kinds(log: list[tuple[str, str]]) -> dict[str, int]:
    """How many jobs of each kind: ``read``, ``durable`` (a commit with an fsync), ``soon`` (a
    commit fsynced right after it is reported) and ``lease`` (bookkeeping, no fsync)."""
    counts = dict.fromkeys(_KINDS.values(), 0)
    for kind, _ in log:
        counts[_KINDS[kind]] += 1
    return counts


async def test_a_turn_is_a_lease_and_read_two_commits_one_waiting_for_its_fsync_a_release(
    counted: tuple[Any, list[tuple[str, str]]],
) -> None:
    store, log = counted
    agent = Agent(name="A", model=ScriptedModel(["One.", "Two.", "Three."]))
    session = store.session("turns")
    for turn, text in enumerate(["first", "second", "third"]):
        log.clear()
        await Runner.run(agent, text, session=session)
        assert kinds(log) == {"read": 0, "durable": 1, "soon": 1, "lease": 2}, (turn, log)
        assert log == [
            ("False", "acquire_lease_and_read"),  # the lease, and the start read under it
            ("soon", "add"),  # the input, before the model is called
            ("True", "add"),  # the reply
            ("False", "release_lease"),
        ]
    assert len(await session.get_items()) == 6


async def test_the_one_read_still_calibrates_and_bounds_the_window(
    counted: tuple[Any, list[tuple[str, str]]],
) -> None:
    store, log = counted
    # the usage record read in the same read as the window calibrates its token budget
    session = store.session("calibrated", session_settings=SessionSettings(max_tokens=40))
    await session.add_items(
        [{"role": "user", "content": "x" * 60}, {"role": "assistant", "content": "y" * 60}]
    )
    model = ScriptedModel(["Ok."])
    agent = Agent(name="A", model=model)
    await session.put_records({USAGE_KEY: {"calibration": {"reported": 100.0, "estimated": 400.0}}})
    log.clear()
    await Runner.run(agent, "z", session=session)
    assert kinds(log)["read"] == 0  # the one read is the lease's job's
    assert [job for _, job in log].count("acquire_lease_and_read") == 1
    sent = model.requests[0].input
    # budget 40 provider tokens at 0.25 per estimated token: 160 estimated, both old items fit
    assert [item.get("content") for item in sent][:2] == ["x" * 60, "y" * 60]

    uncalibrated = store.session("plain", session_settings=SessionSettings(max_tokens=40))
    await uncalibrated.add_items(
        [{"role": "user", "content": "x" * 60}, {"role": "assistant", "content": "y" * 60}]
    )
    other = ScriptedModel(["Ok."])
    await Runner.run(Agent(name="A", model=other), "z", session=uncalibrated)
    assert all(item.get("content") != "x" * 60 for item in other.requests[0].input)


async def test_window_and_records_match_the_separate_reads(
    counted: tuple[Any, list[tuple[str, str]]],
) -> None:
    store, log = counted
    session = store.session("same")
    await session.add_items([{"role": "user", "content": f"m{n}"} for n in range(5)])
    await session.put_records({USAGE_KEY: {"turns": 3}})
    log.clear()
    window, values, _ = await session._window_and_records(
        (USAGE_KEY, PENDING_RUN_RECORD), lambda found: (3, None)
    )
    assert log == [("read", "records_and_window_after_record")]
    assert window == await session.get_window(max_items=3)
    assert values == {USAGE_KEY: {"turns": 3}}
    empty, _, _ = await session._window_and_records((USAGE_KEY,), lambda found: (0, None))
    assert empty == []


async def test_every_backend_reads_window_and_records_as_separate_reads_would(store: Any) -> None:
    # the SQLite override and the default (get_record + window_after_record) agree
    session = store.session("every")
    await session.add_items([{"role": "user", "content": f"m{n}"} for n in range(4)])
    await session.put_records({USAGE_KEY: {"turns": 2}, "app.other": {"x": 1}})
    seen: list[dict[str, Any]] = []

    def budget(found: Any) -> tuple[int | None, int | None]:
        seen.append(dict(found))
        return 2, None

    window, values, _ = await session._window_and_records((USAGE_KEY, PENDING_RUN_RECORD), budget)
    assert window == await session.get_window(max_items=2)
    assert values == seen[-1] == {USAGE_KEY: {"turns": 2}}
