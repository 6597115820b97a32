"""Many hosts on one PostgreSQL: app hosts in network namespaces of their own, the database in
another, and one app host's link cut while it holds a lease and writes.

The test makes the namespaces (``ip netns``, veth pairs, addresses in 198.18.0.0/15 inside
them) and starts its own PostgreSQL (``initdb`` into a temporary folder) in the database's
namespace; every namespace is removed afterwards, whatever happened. It needs root and the
``ip`` command, and skips with the reason otherwise (CI runs as root, so there it runs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..pg_cluster import OwnCluster, require_binaries
from ..services import services_required

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
TTL = 3.0


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


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0:
        _needs("making network namespaces needs root")
    if shutil.which("ip") is None:
        _needs("the ip command (iproute2) is not installed")
    require_binaries()
    made = Hosts()
    try:
        try:
            made.make()
        except subprocess.CalledProcessError as exc:
            _needs(f"network namespaces cannot be made here: {exc.stderr.strip()}")
        yield made
    finally:
        made.remove()


def _in(namespace: str, function: str, *args: Any, background: bool = False) -> Any:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    command = [
        "ip",
        "netns",
        "exec",
        namespace,
        sys.executable,
        "-m",
        "tests.sessions._pg_workers",
        function,
        json.dumps(list(args)),
    ]
    if background:
        return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_cut_app_host_loses_nothing_acknowledged_and_its_lease_is_taken_over(
    hosts: Hosts, tmp_path: Path
) -> None:
    cluster = OwnCluster(
        55432, listen="198.18.1.1,198.18.2.1", prefix=["ip", "netns", "exec", hosts.db]
    )
    cluster.init().start()
    writer: subprocess.Popen[bytes] | None = None
    try:
        url_1 = cluster.url.replace("198.18.1.1,198.18.2.1", "198.18.1.1")
        url_2 = cluster.url.replace("198.18.1.1,198.18.2.1", "198.18.2.1")
        _in(hosts.apps[1], "netns_setup", url_2)
        log = tmp_path / "writer.log"
        writer = _in(hosts.apps[0], "netns_writer", url_1, "shared", TTL, str(log), background=True)
        deadline = time.monotonic() + 60
        while sum(1 for e in _read_log(log) if e.get("part") == "step") < 5:
            assert writer.poll() is None, "the writer died before the cut"
            assert time.monotonic() < deadline, "the writer never got going"
            time.sleep(0.02)
        hosts.cut(1)  # mid-write: the writer writes without pause
        cut_at = time.monotonic()
        out = tmp_path / "takeover.json"
        _in(hosts.apps[1], "netns_takeover", url_2, "shared", TTL, str(out))
        took = time.monotonic() - cut_at
        result = json.loads(out.read_text())
        writer.wait(timeout=30)  # it gives up on its own: its writes fail
        entries = _read_log(log)
    finally:
        if writer is not None and writer.poll() is None:
            os.killpg(writer.pid, signal.SIGKILL)
            writer.wait()
        cluster.remove()

    assert result["busy"], "the cut host's lease was not live when the second host asked"
    assert result["waited"] <= TTL + 3.0 and took <= TTL + 15, (result["waited"], took)
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
