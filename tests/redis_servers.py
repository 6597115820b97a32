"""Redis servers for the tests: the shared one on 127.0.0.1:6379 and a 3-master Cluster.

:func:`redis_url` checks the shared server once; tests use its database 9 and a key prefix of
their own (:func:`new_prefix`), and :func:`drop_prefix` removes a test's keys. The Cluster is
the one ``THREADLINE_REDIS_CLUSTER=host:port,...`` names (``.ci/run`` starts it), else three
``redis-server --cluster-enabled yes`` processes this module starts on free loopback ports in
a temporary folder on first use and shuts down when the test process exits. Own servers for
destructive tests (kill, restart, maxmemory) come from :class:`OwnRedis`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .services import require_available

__all__ = [
    "PROCESS_ROOT",
    "SHARED",
    "OwnRedis",
    "cluster_url",
    "drop_prefix",
    "free_port",
    "new_prefix",
    "redis_url",
]

SHARED = ("127.0.0.1", int(os.environ.get("THREADLINE_REDIS_PORT", "6379")))
TEST_DB = 9
PREFIX_ROOT = "tltest:"
# This test process's own root under PREFIX_ROOT: the exit hook drops only these keys, so a
# process that ends (a helper, a worker, a second pytest) never deletes the keys of a test that
# another live process is running on the same shared server.
PROCESS_ROOT = f"{PREFIX_ROOT}{os.getpid()}-{uuid.uuid4().hex[:6]}:"


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port free now, and so is the one 10000 above it (a Cluster node's bus
    port), below 55536 as redis-server requires of a Cluster node."""
    while True:
        port = random.randint(20000, 45000)
        if _bindable(port) and _bindable(port + 10000):
            return port


def _ping(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def _shared_up() -> bool:
    up = _ping(*SHARED)
    if up:  # every test's keys go when the test process ends
        atexit.register(drop_prefix, f"redis://{SHARED[0]}:{SHARED[1]}/{TEST_DB}", PROCESS_ROOT)
    return up


def redis_url() -> str:
    """The shared server's test database, or skip (fail in CI) when it is not running."""
    require_available(
        _shared_up(),
        f"Redis at {SHARED[0]}:{SHARED[1]}",
        "start redis-server, or run the tests through .ci/run",
    )
    return f"redis://{SHARED[0]}:{SHARED[1]}/{TEST_DB}"


def new_prefix() -> str:
    """A key prefix no other test uses, under this process's :data:`PROCESS_ROOT`."""
    return f"{PROCESS_ROOT}{uuid.uuid4().hex[:12]}:"


def _redis_cli(*args: str, port: int, host: str = "127.0.0.1") -> str:
    done = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout


def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (on each node of a Cluster URL); binary-safe, so keys
    of session ids holding newlines or NULs go too."""
    import redis

    location = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    pattern = prefix.replace("[", "\\[").replace("*", "\\*").replace("?", "\\?") + "*"
    for node in location.split(","):
        host, _, port = node.rpartition(":")
        db = 0 if "+cluster" in url else int(url.rsplit("/", 1)[1].split("?", 1)[0] or 0)
        try:
            with redis.Redis(host=host, port=int(port), db=db, socket_timeout=5) as client:
                for key in client.scan_iter(match=pattern, count=500):
                    client.unlink(key)
        except redis.RedisError:
            continue  # a node that is gone holds no keys to drop


class OwnRedis:
    """A redis-server of this test alone, on a free port in a temporary folder.

    ``bind`` lists the addresses it listens on (the first is the one :attr:`url` names);
    ``prefix`` is a command prefix to run it under (``ip netns exec NS``), which
    :meth:`start` also uses to see that it answers.
    """

    def __init__(
        self, *extra: str, bind: tuple[str, ...] = ("127.0.0.1",), prefix: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="threadline-redis-"))
        self.extra = extra
        self.bind = bind
        self.prefix = prefix
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL (database 0)."""
        return f"redis://{self.bind[0]}:{self.port}/0"

    def _answers(self) -> bool:
        if not self.prefix:
            return _ping(self.bind[0], self.port, 0.2)
        done = subprocess.run(
            [*self.prefix, "redis-cli", "-h", self.bind[0], "-p", str(self.port), "PING"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip() == "PONG"

    def start(self) -> OwnRedis:
        """Start it (again, on the same port) and wait until it answers."""
        self.process = subprocess.Popen(
            [
                *self.prefix,
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                *self.bind,
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """Kill it at once (SIGKILL): its connections drop."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def cli(self, *args: str) -> str:
        """Run one redis-cli command against it."""
        return _redis_cli(*args, port=self.port)

    def close(self) -> None:
        """Stop it and remove its folder."""
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def own_redis_available() -> None:
    """Skip (fail in CI) unless redis-server can be started here."""
    require_available(
        shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None,
        "redis-server",
        "install Redis (apt-get install redis-server) to run the tests that start their own",
    )


def _start_cluster() -> str:
    own_redis_available()
    folder = Path(tempfile.mkdtemp(prefix="threadline-cluster-"))
    ports = [free_port() for _ in range(3)]
    for port in ports:
        node = folder / str(port)
        node.mkdir()
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node / "nodes.conf"),
                "--dir",
                str(node),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(node / "redis.pid"),
                "--logfile",
                str(node / "redis.log"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop() -> None:
        for port in ports:
            with contextlib.suppress(Exception):
                _redis_cli("SHUTDOWN", "NOSAVE", port=port)
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 10
    while not all(_ping("127.0.0.1", port, 0.2) for port in ports):
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster's redis-server processes did not start")
        time.sleep(0.05)
    subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "create",
            *(f"127.0.0.1:{port}" for port in ports),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    _wait_cluster_ok(ports)
    return ",".join(f"127.0.0.1:{port}" for port in ports)


def _wait_cluster_ok(ports: list[int]) -> None:
    deadline = time.monotonic() + 30
    while True:
        states = [_redis_cli("CLUSTER", "INFO", port=port) for port in ports]
        if all("cluster_state:ok" in state for state in states):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test cluster did not reach cluster_state:ok: {states}")
        time.sleep(0.1)


@functools.lru_cache(maxsize=1)
def _cluster_nodes() -> str:
    named = os.environ.get("THREADLINE_REDIS_CLUSTER", "").strip()
    if named:
        nodes = [node.strip().rpartition(":") for node in named.split(",")]
        if all(_ping(host, int(port)) for host, _, port in nodes):
            return named
    return _start_cluster()


def cluster_url() -> str:
    """A ``redis+cluster://`` URL of a running 3-master Cluster (see the module docstring)."""
    own_redis_available()
    return f"redis+cluster://{_cluster_nodes()}"
