"""What the benchmark ran on: hardware, software versions, file system and its fsync cost."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("threadline", "openai-agents", "openai", "pydantic")


def loadavg() -> str:
    """The 1/5/15-minute load averages."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "?"


def _filesystem(path: Path) -> str:
    """The type and device of the file system holding ``path`` (longest mount prefix)."""
    best = ("", "?", "?")
    target = str(path.resolve())
    try:
        with open("/proc/mounts") as f:
            for line in f:
                device, mount, kind = line.split()[:3]
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best[0]):
                    best = (mount, kind, device)
    except OSError:
        pass
    return f"{best[1]} on {best[2]}"


def _fsync_cost(directory: Path, rounds: int = 50) -> float:
    """Median seconds of write(4 KiB) + fsync in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f"fsync-probe-{os.getpid()}"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(rounds):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.remove(probe)
    return statistics.median(times)


def _git_revision(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "?"
    return f"{head or '?'}{' + uncommitted changes in src/' if dirty else ''}"


def describe(data_dir: Path) -> dict[str, Any]:
    """Everything the report says about the machine and the software."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        "filesystem": _filesystem(data_dir),
        "fsync_ms": _fsync_cost(data_dir) * 1e3,
        "load_start": loadavg(),
        "git": _git_revision(Path(__file__).resolve().parent.parent),
    }
