"""Many hosts on one Redis: app hosts in network namespaces of their own, the server in another,
and one app host's link cut while it holds a lease and writes.

The same test as ``test_postgres_hosts.py`` (the namespaces and the checks come from
:mod:`._netns`), with a redis-server of the test's own in the database's namespace. It needs
root, the ``ip`` command and ``redis-server``, and skips with the reason otherwise (CI runs as
root, so there it runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..redis_servers import OwnRedis, own_redis_available
from ._netns import Hosts, check_takeover, made_hosts, read_log, run_in

pytestmark = pytest.mark.redis

TTL = 3.0


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    own_redis_available()
    with made_hosts() as made:
        yield made


def test_a_cut_app_host_loses_nothing_acknowledged_and_its_lease_is_taken_over(
    hosts: Hosts, tmp_path: Path
) -> None:
    server = OwnRedis(bind=("198.18.1.1", "198.18.2.1"), prefix=("ip", "netns", "exec", hosts.db))
    server.start()
    writer: subprocess.Popen[bytes] | None = None
    try:
        url_1 = server.url
        url_2 = server.url.replace("198.18.1.1", "198.18.2.1")
        run_in(hosts.apps[1], "netns_setup", url_2)
        log = tmp_path / "writer.log"
        writer = run_in(
            hosts.apps[0], "netns_writer", url_1, "shared", TTL, str(log), background=True
        )
        deadline = time.monotonic() + 60
        while sum(1 for e in read_log(log) if e.get("part") == "step") < 5:
            assert writer.poll() is None, "the writer died before the cut"
            assert time.monotonic() < deadline, "the writer never got going"
            time.sleep(0.02)
        hosts.cut(1)  # mid-write: the writer writes without pause
        cut_at = time.monotonic()
        out = tmp_path / "takeover.json"
        run_in(hosts.apps[1], "netns_takeover", url_2, "shared", TTL, str(out))
        took = time.monotonic() - cut_at
        result = json.loads(out.read_text())
        writer.wait(timeout=30)  # it gives up on its own: its writes fail
        entries = read_log(log)
    finally:
        if writer is not None and writer.poll() is None:
            os.killpg(writer.pid, signal.SIGKILL)
            writer.wait()
        server.close()
    check_takeover(result, entries, took, TTL)
