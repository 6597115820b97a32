"""A PostgreSQL server of a test's own: ``initdb`` into a temporary folder, ``pg_ctl`` on it.

For what a test may not do to the shared server: restart it, cut its connections, refuse a
password, or run it inside a network namespace. Runs as the ``postgres`` system user when
the tests run as root (``initdb`` refuses root). :func:`find_binaries` returns ``None`` when
this machine has no PostgreSQL server binaries; the callers skip (or fail, with
``THREADLINE_REQUIRE_SERVICES=1``) naming what is missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from .services import services_required

__all__ = ["PASSWORD", "OwnCluster", "find_binaries", "require_binaries"]

PASSWORD = "s3cret-test-password"
"""The password of the cluster's ``postgres`` user over TCP (scram-sha-256)."""


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def require_binaries() -> Path:
    """The binaries' folder, or a skip (a failure when services are required) naming them."""
    found = find_binaries()
    if found is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
        if services_required():
            pytest.fail(f"{reason}, and THREADLINE_REQUIRE_SERVICES=1 requires them")
        pytest.skip(reason)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
    return found


class OwnCluster:
    """One throw-away PostgreSQL server (see the module docstring).

    ``listen`` is the address it binds (``127.0.0.1`` unless a network namespace test gives
    another); ``prefix`` is a command prefix to run the server under (``ip netns exec NS``).
    """

    def __init__(self, port: int, *, listen: str = "127.0.0.1", prefix: list[str] | None = None):
        self.bin = require_binaries()
        self.port = port
        self.listen = listen
        self.prefix = prefix or []
        self.root = Path(tempfile.mkdtemp(prefix="threadline-pg-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)

    @property
    def url(self) -> str:
        """The URL of the test database with the right password."""
        return f"postgresql://postgres:{PASSWORD}@{self.listen}:{self.port}/postgres"

    def _run(
        self, *argv: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            [*self.prefix, *command],
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )

    def init(self) -> OwnCluster:
        """``initdb`` with a password for TCP logins and trust on the private socket."""
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '{self.listen}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n"
                "shared_buffers = 32MB\n"
            )
        with open(self.data / "pg_hba.conf", "a") as hba:
            hba.write("host all all 0.0.0.0/0 scram-sha-256\n")
        return self

    def start(self) -> OwnCluster:
        """Start the server and wait until it accepts connections."""
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect every client; ``immediate``: as a crash)."""
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
        )

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again (every client connection is cut)."""
        self.stop(mode)
        self.start()

    def psql(self, sql: str) -> str:
        """Run ``sql`` over the private socket as ``postgres``; returns the output."""
        done = self._run(
            str(self.bin / "psql"),
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atc",
            sql,
        )
        return done.stdout

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop("immediate")
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)
