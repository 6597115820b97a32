"""``threadline sessions …``: inspect and move stored conversations."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..sessions import SessionStore
from ._render import print_history, print_sessions, print_table
from .commands import MissingStoreError, open_store, store_name

__all__ = ["sessions_command"]


def sessions_command(args: argparse.Namespace) -> int:
    """Dispatch ``sessions ACTION``."""
    try:
        # Only import may make a new database; every other action needs an existing one.
        store = open_store(args.db, args.store, create=args.action == "import")
    except MissingStoreError as missing:
        if missing.default and args.action in ("ls", "stats", "search", "prune"):
            return _nothing_stored(missing, args)
        raise
    action = {
        "ls": _ls,
        "show": _show,
        "search": _search,
        "export": _export,
        "import": _import,
        "fork": _fork,
        "rm": _rm,
        "prune": _prune,
        "stats": _stats,
    }[args.action]

    async def run() -> int:
        try:
            return await action(store, args)
        finally:
            await store.aclose()

    return asyncio.run(run())


def _nothing_stored(missing: MissingStoreError, args: argparse.Namespace) -> int:
    """``ls``/``stats``/``search``/``prune`` before anything was ever stored in the default
    file: report an empty store without creating it."""
    if args.json:
        empty: Any = (
            []
            if args.action in ("ls", "search")
            else {"store": str(missing.path), "sessions": 0, "items": 0}
        )
        if args.action == "prune":
            empty = {"sessions": [], "items": 0, "busy": [], "dry_run": args.dry_run}
        _emit_json(empty)
    else:
        print(missing, file=sys.stderr)
    return 1 if args.action == "search" else 0


def _emit_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _unknown(store: SessionStore, session_id: str) -> str:
    return f"no session {session_id!r} in {store_name(store)}; 'sessions ls' lists them"


async def _known(store: SessionStore, session_id: str) -> None:
    if await store.session_info(session_id) is None:
        raise UserError(_unknown(store, session_id))


async def _ls(store: SessionStore, args: argparse.Namespace) -> int:
    infos = await store.list_sessions()
    if args.json:
        _emit_json(
            [
                {
                    "session_id": i.session_id,
                    "items": i.item_count,
                    "created_at": i.created_at.isoformat(),
                    "updated_at": i.updated_at.isoformat(),
                }
                for i in infos
            ]
        )
        return 0
    if not infos:
        print(
            f"no sessions yet in {store_name(store)}; start one with `threadline chat`",
            file=sys.stderr,
        )
        return 0
    print_sessions(infos, sys.stdout)
    return 0


async def _show(store: SessionStore, args: argparse.Namespace) -> int:
    await _known(store, args.session_id)
    session = store.session(args.session_id)
    items = await session.get_items()
    if args.json:
        _emit_json(items)
        return 0
    print_history(items, sys.stdout)
    if "records" in store.capabilities:
        usage = await session.usage()  # type: ignore[attr-defined]
        if usage.turns:
            print()
            print(f"usage: {_usage_line(usage)} over {usage.turns} runs")
            shown = usage.per_turn[-_TURNS_SHOWN:]
            rows = [
                (t.turn, t.requests, t.input_tokens, t.output_tokens, t.time[:19]) for t in shown
            ]
            print_table(["run", "requests", "input", "output", "time (UTC)"], rows, sys.stdout)
            if len(usage.per_turn) > len(shown):
                print(f"(the last {len(shown)} of {len(usage.per_turn)} runs)")
    return 0


_TURNS_SHOWN = 20


def _usage_line(usage: Any) -> str:
    return (
        f"{usage.requests} requests, {usage.input_tokens} input tokens, "
        f"{usage.output_tokens} output tokens"
    )


async def _search(store: SessionStore, args: argparse.Namespace) -> int:
    hits = await store.search(args.text, limit=args.limit)
    if args.json:
        _emit_json(
            [
                {
                    "session_id": hit.session_id,
                    "position": hit.position + 1,
                    "snippet": hit.snippet,
                    "item": hit.item,
                }
                for hit in hits
            ]
        )
    elif not hits:
        print(f"no items hold every word of {args.text!r} in {store_name(store)}", file=sys.stderr)
    else:
        rows = [(hit.session_id, hit.position + 1, hit.snippet) for hit in hits]
        print_table(["session", "#", "match"], rows, sys.stdout)
    return 0 if hits else 1


async def _export(store: SessionStore, args: argparse.Namespace) -> int:
    await _known(store, args.session_id)
    if args.output is None:
        await store.export_jsonl(args.session_id, sys.stdout)  # type: ignore[attr-defined]
        return 0
    count = await store.export_jsonl(args.session_id, args.output)  # type: ignore[attr-defined]
    print(f"wrote {count} items to {args.output}", file=sys.stderr)
    return 0


async def _import(store: SessionStore, args: argparse.Namespace) -> int:
    path = Path(args.file)
    session_id = path.stem if args.session is None else args.session
    info = await store.session_info(session_id)
    if args.replace:
        mode = "replace"
    elif args.append or (info is not None and info.item_count == 0):
        mode = "append"
    elif info is not None:
        raise UserError(
            f"session {session_id!r} already has items in {store_name(store)}; pass --append "
            "to add these after them, --replace to replace them, or --session ID for another"
        )
    else:
        mode = "refuse"
    result = await store.import_jsonl(path, session_id, mode)  # type: ignore[attr-defined]
    if result.version == 0:
        print(
            f"note: {path} is in the old plain format (items only, no header); "
            "`threadline sessions export` now writes a header with metadata and records",
            file=sys.stderr,
        )
    if mode == "replace":
        print(f"replaced session {session_id} with {result.items} imported items")
    else:
        print(f"imported {result.items} items into session {session_id}")
    return 0


async def _fork(store: SessionStore, args: argparse.Namespace) -> int:
    await _known(store, args.session_id)
    at_turn = getattr(args, "at_turn", None)
    forked = await store.session(args.session_id).fork(args.new_session_id, at_turn=at_turn)
    count = len(await forked.get_items())
    turns = "" if at_turn is None else f" (turns before {at_turn})"
    print(f"forked {args.session_id} to {args.new_session_id}: {count} items{turns}")
    return 0


_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or combinations such as ``1d12h``."""
    spec = text.strip().lower()
    parts = _DURATION.findall(spec)
    if not spec or "".join(number + unit for number, unit in parts) != spec:
        raise UserError(
            f"cannot read the duration {text!r}: write a number and a unit (w, d, h, m, s), "
            "such as 30d, 12h or 1d12h"
        )
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise UserError(f"the duration {text!r} must be longer than zero")
    return timedelta(seconds=seconds)


async def _prune(store: SessionStore, args: argparse.Namespace) -> int:
    idle = None if args.idle is None else parse_duration(args.idle)
    result = await store.prune(idle_for=idle, dry_run=args.dry_run)  # type: ignore[attr-defined]
    if args.json:
        _emit_json(
            {
                "sessions": result.sessions,
                "items": result.items,
                "busy": result.busy,
                "dry_run": result.dry_run,
            }
        )
        return 0
    verb = "would delete" if result.dry_run else "deleted"
    print(f"{verb} {len(result.sessions)} sessions ({result.items} items)")
    for session_id in result.sessions:
        print(f"  {session_id}")
    if result.busy:
        print(f"left {len(result.busy)} sessions in use alone: {', '.join(result.busy)}")
    return 0


async def _rm(store: SessionStore, args: argparse.Namespace) -> int:
    if not await store.delete_session(args.session_id):
        raise UserError(_unknown(store, args.session_id))
    print(f"deleted session {args.session_id}")
    return 0


async def _stats(store: SessionStore, args: argparse.Namespace) -> int:
    counted = await store.stats()
    usage = await store.usage()  # type: ignore[attr-defined]
    stats: dict[str, Any] = {
        "store": store_name(store),
        "sessions": counted.sessions,
        "items": counted.items,
        **{key: value for key, value in counted.details.items() if key != "database"},
        "runs": usage.turns,
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
    }
    if args.json:
        _emit_json(stats)
    else:
        for key, value in stats.items():
            print(f"{key}: {value}")
    return 0
