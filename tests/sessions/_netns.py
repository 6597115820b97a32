"""Network namespaces for the multi-host tests: app hosts in namespaces of their own, the
database server in another, each app host linked to it by a veth pair the test can cut.

:func:`made_hosts` makes the namespaces (``ip netns``, veth pairs, addresses in
198.18.0.0/15 inside them) and removes them afterwards, whatever happened; it skips with the
reason (fails in CI, which runs as root) when they cannot be made. :func:`run_in` runs a
function of :mod:`tests.sessions._netns_workers` inside a namespace; :func:`check_takeover`
checks what a test of "cut an app host's link while it holds a lease and writes" must hold,
whatever the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..services import services_required

__all__ = ["ROOT", "Hosts", "check_takeover", "made_hosts", "read_log", "run_in"]

ROOT = Path(__file__).resolve().parents[2]


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True, timeout=30)


def _needs(reason: str) -> None:
    if services_required() and os.environ.get("CI"):
        pytest.fail(f"the multi-host test must run in CI, but {reason}")
    pytest.skip(reason)


class Hosts:
    """A database namespace and two app namespaces, each app linked to the database by a
    veth pair of its own (198.18.N.1 on the database side, 198.18.N.2 on the app side)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.db = f"tl{tag}db"
        self.apps = [f"tl{tag}a1", f"tl{tag}a2"]
        self.links: list[str] = []
        self.made: list[str] = []

    def make(self) -> Hosts:
        for name in [self.db, *self.apps]:
            _ip("netns", "add", name)
            self.made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        for number, app in enumerate(self.apps, start=1):
            db_end, app_end = f"{app}d", f"{app}x"
            _ip("link", "add", db_end, "type", "veth", "peer", "name", app_end)
            _ip("link", "set", db_end, "netns", self.db)
            _ip("link", "set", app_end, "netns", app)
            _ip("-n", self.db, "addr", "add", f"198.18.{number}.1/24", "dev", db_end)
            _ip("-n", app, "addr", "add", f"198.18.{number}.2/24", "dev", app_end)
            _ip("-n", self.db, "link", "set", db_end, "up")
            _ip("-n", app, "link", "set", app_end, "up")
            self.links.append(app_end)
        return self

    def cut(self, number: int) -> None:
        """Take app host ``number``'s link down (its packets go nowhere from now on)."""
        _ip("-n", self.apps[number - 1], "link", "set", self.links[number - 1], "down")

    def remove(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@contextlib.contextmanager
def made_hosts() -> Iterator[Hosts]:
    """:class:`Hosts`, made now and removed on exit (a skip, or a failure in CI, when they
    cannot be made here)."""
    if os.geteuid() != 0:
        _needs("making network namespaces needs root")
    if shutil.which("ip") is None:
        _needs("the ip command (iproute2) is not installed")
    made = Hosts()
    try:
        try:
            made.make()
        except subprocess.CalledProcessError as exc:
            _needs(f"network namespaces cannot be made here: {exc.stderr.strip()}")
        yield made
    finally:
        made.remove()


def run_in(namespace: str, function: str, *args: Any, background: bool = False) -> Any:
    """Run ``tests.sessions._netns_workers.<function>(*args)`` in ``namespace``: the finished
    process (its exit checked), or with ``background`` the running ``Popen``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    command = [
        "ip",
        "netns",
        "exec",
        namespace,
        sys.executable,
        "-m",
        "tests.sessions._netns_workers",
        function,
        json.dumps(list(args)),
    ]
    if background:
        return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a writer logged (none yet: ``[]``)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_takeover(
    result: dict[str, Any], entries: list[dict[str, Any]], took: float, ttl: float
) -> None:
    """What must hold after a cut: the second host found the lease live, got it within the
    ttl (with slack for a loaded machine) at the next epoch; the cut host noticed and stopped;
    no half-written turn is stored; every acknowledged write is."""
    assert result["busy"], "the cut host's lease was not live when the second host asked"
    assert result["waited"] <= ttl + 3.0 and took <= ttl + 15, (result["waited"], took)
    assert result["epoch"] == entries[0]["lease"] + 1
    assert "error" in entries[-1], entries[-1]  # the cut host noticed and stopped
    items = result["items"]
    # no half-written turn: every tool call has its output and the answer after it
    turns: dict[str, list[str]] = {}
    current = None
    for item in items:
        if item.get("role") == "user":
            current = item["content"]
            turns[current] = ["input"]
        else:
            assert current is not None
            turns[current].append(item.get("type") or item.get("role"))
    for tag, parts in turns.items():
        assert parts in (
            ["input"],
            ["input", "function_call", "function_call_output", "message"],
        ), (tag, parts)
    # nothing acknowledged is lost (a write in flight at the cut may or may not be stored)
    acked_steps = [e["ack"] for e in entries if e.get("part") == "step"]
    acked_inputs = [e["ack"] for e in entries if e.get("part") == "input"]
    assert set(acked_inputs) <= set(turns)
    for tag in acked_steps:
        assert len(turns[tag]) == 4, tag
    assert len(turns) <= len(acked_inputs) + 1  # at most the write in flight beyond the log
    assert len(turns) == len(items) - 3 * sum(1 for p in turns.values() if len(p) == 4)
