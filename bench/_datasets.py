"""Cached single-session databases of N items for the read workloads (bench/.data/).

Each is built once per side through the library's own ``add_items`` in large batches and
reused while its build key (item format, library version, item count) is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import _items

DATA = Path(__file__).resolve().parent / ".data"
SESSION_ID = "bench-session"
ITEM_FORMAT = 1
_BATCH = 5000


def _key(side: Any, count: int) -> dict[str, Any]:
    key: dict[str, Any] = {"format": ITEM_FORMAT, "side": side.name, "version": side.version}
    key["count"] = count
    if side.name.startswith("threadline"):
        key["schema"] = threadline_schema()
    return key


def threadline_schema() -> int:
    """The schema version of the threadline being measured (older layouts included)."""
    try:
        from threadline.sessions.sqlite._schema import SCHEMA_VERSION
    except ImportError:  # before the store layer (sessions/_sqlite_schema.py)
        from threadline.sessions._sqlite_schema import (  # type: ignore[no-redef]
            SCHEMA_VERSION,
        )
    return int(SCHEMA_VERSION)


def path_for(side_name: str, count: int) -> Path:
    """Where the database of ``count`` items for ``side_name`` lives (one per schema)."""
    if side_name.startswith("threadline"):
        return DATA / f"threadline-v{threadline_schema()}-{count}.db"
    return DATA / f"{side_name}-{count}.db"


async def ensure_sessions(count: int) -> Path:
    """A threadline database of ``count`` sessions of one turn each (built once)."""
    from threadline.sessions import SQLiteStore

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"threadline-v{threadline_schema()}-sessions-{count}.db"
    stamp = path.with_suffix(".json")
    key = {"format": ITEM_FORMAT, "sessions": count, "schema": threadline_schema()}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == key:
        return path
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    store = SQLiteStore(path, synchronous="OFF")
    try:
        for start in range(0, count, 1000):
            await asyncio.gather(
                *(
                    store.session(f"session-{number:07d}").add_items(_items.turn(f"s{number}"))
                    for number in range(start, min(count, start + 1000))
                )
            )
    finally:
        store.close()
    stamp.write_text(json.dumps(key))
    return path


async def ensure(side: Any, count: int) -> tuple[Path, float | None]:
    """The path of the cached database, building it first if needed (returns build seconds)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = path_for(side.name, count)
    stamp = path.with_suffix(".json")
    key = _key(side, count)
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == key:
        return path, None
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    started = time.perf_counter()
    session = side.session(SESSION_ID, str(path))
    try:
        for start in range(0, count // 2, _BATCH // 2):
            n = min(_BATCH // 2, count // 2 - start)
            batch: list[Any] = []
            for i in range(start, start + n):
                batch.extend(_items.turn(f"t{i}"))
            await session.add_items(batch)
    finally:
        side.close(session)
    stamp.write_text(json.dumps(key))
    return path, time.perf_counter() - started


def main() -> None:
    """Build every cached database: ``python bench/_datasets.py SIDE COUNT...``."""
    import sys

    import _sides

    side = _sides.load(sys.argv[1])
    for count in map(int, sys.argv[2:]):
        path, took = asyncio.run(ensure(side, count))
        print(path, "cached" if took is None else f"built in {took:.1f} s")


if __name__ == "__main__":
    main()
