"""A Redis Cluster with replicas, of one test alone, to kill and fail over.

:class:`ReplicatedCluster` starts six ``redis-server --cluster-enabled yes`` processes on free
loopback ports in a temporary folder, makes them three masters with one replica each
(``redis-cli --cluster create ... --cluster-replicas 1``), and waits until the cluster is ok
and every replica is in sync. A short node timeout (1 s) makes a killed master fail over in
a few seconds. :meth:`ReplicatedCluster.kill_master` SIGKILLs a master,
:meth:`ReplicatedCluster.failover` runs ``CLUSTER FAILOVER`` on a replica,
:meth:`ReplicatedCluster.restart` brings a killed node back (it rejoins as a replica).
Without ``redis-server`` the test skips, or fails with ``THREADLINE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .redis_servers import _ping, free_port, own_redis_available

__all__ = ["Node", "ReplicatedCluster"]

NODE_TIMEOUT_MS = 1000


@dataclass
class Node:
    """One node as ``CLUSTER NODES`` shows it."""

    id: str
    port: int
    master: bool
    master_id: str | None
    failed: bool


class ReplicatedCluster:
    """Three masters and three replicas on loopback (see the module docstring)."""

    def __init__(self, masters: int = 3, *, password: str | None = None) -> None:
        own_redis_available()
        self.password = password
        self.folder = Path(tempfile.mkdtemp(prefix="threadline-replicated-"))
        self.ports = [free_port() for _ in range(masters * 2)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.masters = masters

    # ------------------------------------------------------------------ life cycle

    def _spawn(self, port: int) -> None:
        node = self.folder / str(port)
        node.mkdir(exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node / "nodes.conf"),
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--cluster-replica-validity-factor",
                "0",
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
                "--dir",
                str(node),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(node / "redis.log"),
                *(() if self.password is None else ("--requirepass", self.password)),
                *(() if self.password is None else ("--masterauth", self.password)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> ReplicatedCluster:
        """Start the six servers, make the cluster, wait until it is ok and in sync."""
        for port in self.ports:
            self._spawn(port)
        deadline = time.monotonic() + 15
        while not all(_ping("127.0.0.1", port, 0.2) for port in self.ports):
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the replicated cluster's redis-server processes did not start")
            time.sleep(0.05)
        done = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=self._env(),
        )
        if done.returncode != 0:
            self.close()
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        self.wait_healthy()
        return self

    def close(self) -> None:
        """Kill every server and remove the folder."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait(10)
        self.processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ReplicatedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ what it looks like

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password is not None:
            env["REDISCLI_AUTH"] = self.password
        return env

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming every node (and the password, if any)."""
        auth = "" if self.password is None else f":{self.password}@"
        return f"redis+cluster://{auth}" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def alive(self) -> list[int]:
        """The ports of the servers that run."""
        return [port for port, p in self.processes.items() if p.poll() is None]

    def cli(self, port: int, *args: str) -> str:
        """One redis-cli command against the node on ``port``."""
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=self._env(),
        )
        return done.stdout

    def nodes(self, port: int | None = None) -> list[Node]:
        """The cluster's nodes as the node on ``port`` (default: any live one) sees them."""
        asked = port if port is not None else self.alive()[0]
        found = []
        for line in self.cli(asked, "CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            flags = parts[2].split(",")
            node_port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
            found.append(
                Node(
                    id=parts[0],
                    port=node_port,
                    master="master" in flags,
                    master_id=None if parts[3] == "-" else parts[3],
                    failed="fail" in flags or "fail?" in flags,
                )
            )
        return found

    def master_ports(self) -> list[int]:
        """The ports of the live masters."""
        live = set(self.alive())
        return [n.port for n in self.nodes() if n.master and not n.failed and n.port in live]

    def replica_of(self, master_port: int, timeout: float = 15.0) -> int:
        """The port of a live replica of the master on ``master_port``, waiting up to
        ``timeout`` seconds for the cluster to see one (on a loaded machine a node may say a
        live replica is failing for a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.nodes()
            master_id = next((n.id for n in nodes if n.port == master_port), None)
            live = set(self.alive())
            found = [
                n.port
                for n in nodes
                if master_id is not None
                and n.master_id == master_id
                and not n.failed
                and n.port in live
                and not n.master
            ]
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                raise RuntimeError(f"no live replica of the master on port {master_port}")
            time.sleep(0.1)

    def master_of_key(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        slot = int(self.cli(self.alive()[0], "CLUSTER", "KEYSLOT", key).strip())
        for start, end, port in self._slot_ranges():
            if start <= slot <= end:
                return port
        raise RuntimeError(f"no master serves slot {slot}")

    def _slot_ranges(self) -> list[tuple[int, int, int]]:
        ranges = []
        live = set(self.alive())
        for line in self.cli(self.alive()[0], "CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) < 9 or "master" not in parts[2] or "fail" in parts[2]:
                continue
            port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
            if port not in live:
                continue
            for piece in parts[8:]:
                if piece.startswith("["):
                    continue
                start, _, end = piece.partition("-")
                ranges.append((int(start), int(end or start), port))
        return ranges

    def healthy(self) -> bool:
        """Whether every live node says ``cluster_state:ok``, exactly three live nodes are
        masters (by their own ``INFO replication``), each with a replica online, and every
        live replica's link to its master is up and synced."""
        masters = 0
        for port in self.alive():
            if "cluster_state:ok" not in self.cli(port, "CLUSTER", "INFO"):
                return False
            info = self.cli(port, "INFO", "replication")
            if "role:master" in info:
                masters += 1
                if "state=online" not in info:
                    return False
            elif "master_link_status:up" not in info or "master_sync_in_progress:0" not in info:
                return False
        return masters == self.masters

    def wait_healthy(self, timeout: float = 30) -> float:
        """Wait until :meth:`healthy`; the seconds it took."""
        started = time.monotonic()
        while not self.healthy():
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the cluster did not become healthy: {self.nodes()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def wait_master(self, port: int, timeout: float = 30) -> float:
        """Wait until the node on ``port`` is a master that every live node sees as one
        serving slots, and the cluster is ok; the seconds it took."""
        started = time.monotonic()
        while True:
            ok = all(
                "cluster_state:ok" in self.cli(p, "CLUSTER", "INFO") for p in self.alive()
            ) and any(p == port for _, _, p in self._slot_ranges())
            if ok and all(
                any(n.port == port and n.master for n in self.nodes(p)) for p in self.alive()
            ):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"127.0.0.1:{port} did not become a master: {self.nodes()}")
            time.sleep(0.02)

    def wait_replicated(self, master_port: int, timeout: float = 10) -> None:
        """Wait until every replica of the master on ``master_port`` has all it wrote."""
        deadline = time.monotonic() + timeout
        while True:
            info = dict(
                line.split(":", 1)
                for line in self.cli(master_port, "INFO", "replication").splitlines()
                if ":" in line
            )
            offset = int(info.get("master_repl_offset", "0"))
            replicas = [value for key, value in info.items() if key.startswith("slave")]
            offsets = [
                int(dict(part.split("=", 1) for part in value.split(","))["offset"])
                for value in replicas
                if "offset=" in value
            ]
            if offsets and all(seen >= offset for seen in offsets):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replicas of {master_port} did not catch up: {info}")
            time.sleep(0.01)

    # ------------------------------------------------------------------ what tests do to it

    def kill_master(self, port: int) -> int:
        """SIGKILL the master on ``port``; its replica's port (which takes over)."""
        replica = self.replica_of(port)
        self.kill(port)
        return replica

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port``."""
        process = self.processes[port]
        process.kill()
        process.wait(10)

    def stop(self, port: int) -> None:
        """Freeze the node on ``port`` (SIGSTOP): it reads nothing, replicates nothing."""
        os.kill(self.processes[port].pid, signal.SIGSTOP)

    def resume(self, port: int) -> None:
        """Let a frozen node run again (SIGCONT)."""
        os.kill(self.processes[port].pid, signal.SIGCONT)

    def cut_replicas(self, master_port: int) -> None:
        """Close the replication links of the master on ``master_port`` (its replicas
        reconnect within a second unless frozen with :meth:`stop`)."""
        answer = self.cli(master_port, "CLIENT", "KILL", "TYPE", "replica").strip()
        if not answer.isdigit() or int(answer) < 1:
            raise RuntimeError(f"no replica link of {master_port} to close: {answer!r}")

    def failover(self, replica_port: int, *how: str) -> None:
        """``CLUSTER FAILOVER [FORCE|TAKEOVER]`` on the replica on ``replica_port``."""
        answer = self.cli(replica_port, "CLUSTER", "FAILOVER", *how).strip()
        if answer != "OK":
            raise RuntimeError(f"CLUSTER FAILOVER on {replica_port} answered {answer!r}")

    def restart(self, port: int) -> None:
        """Start a killed node again on its port (it rejoins; a failed-over master comes
        back as a replica of its successor)."""
        self._spawn(port)
        deadline = time.monotonic() + 15
        while not _ping("127.0.0.1", port, 0.2):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start again")
            time.sleep(0.05)
