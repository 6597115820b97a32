"""The shared test servers' clean-up touches only the keys of the process that made them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .redis_servers import PROCESS_ROOT, new_prefix, redis_url

ROOT = Path(__file__).resolve().parent.parent


def test_another_test_process_exiting_keeps_this_processs_keys() -> None:
    """A second test process that uses the shared Redis and exits drops its own keys only
    (its exit hook once deleted every ``tltest:`` key, so a test running beside it lost the
    session it was in the middle of)."""
    import redis

    url = redis_url()
    mine = new_prefix() + "survivor"
    assert mine.startswith(PROCESS_ROOT)
    child = (
        "from tests.redis_servers import new_prefix, redis_url\n"
        "import redis\n"
        "url = redis_url()\n"
        "key = new_prefix() + 'child'\n"
        "redis.Redis.from_url(url).set(key, b'1')\n"
        "print(key)\n"
    )
    with redis.Redis.from_url(url) as client:
        client.set(mine, b"kept")
        try:
            done = subprocess.run(
                [sys.executable, "-c", child],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            child_key = done.stdout.strip()
            assert not child_key.startswith(PROCESS_ROOT)
            assert client.get(mine) == b"kept"
            assert client.exists(child_key) == 0  # the child dropped its own keys on exit
        finally:
            client.delete(mine)
