"""``threadline sessions …``: inspect and move stored conversations."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..items import Item, pairing_problem
from ..sessions import SessionStore
from ._render import print_history, print_sessions, print_table, write_jsonl
from .commands import open_store, store_name

__all__ = ["sessions_command"]


def sessions_command(args: argparse.Namespace) -> int:
    """Dispatch ``sessions ACTION``."""
    store = open_store(args.db, args.store)
    action = {
        "ls": _ls,
        "show": _show,
        "search": _search,
        "export": _export,
        "import": _import,
        "fork": _fork,
        "rm": _rm,
        "stats": _stats,
    }[args.action]

    async def run() -> int:
        try:
            return await action(store, args)
        finally:
            await store.aclose()

    return asyncio.run(run())


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
    items = await store.session(args.session_id).get_items()
    if args.json:
        _emit_json(items)
    else:
        print_history(items, sys.stdout)
    return 0


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
    items = await store.session(args.session_id).get_items()
    if args.output is None:
        write_jsonl(items, sys.stdout)
        return 0
    await asyncio.to_thread(_write_file, args.output, items)
    print(f"wrote {len(items)} items to {args.output}", file=sys.stderr)
    return 0


def _write_file(name: str, items: list[Item]) -> None:
    path = Path(name).expanduser()
    try:
        with path.open("w", encoding="utf-8") as handle:
            write_jsonl(items, handle)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _read_jsonl(path: Path) -> list[Item]:
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    items: list[Item] = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path}:{number} is not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                f"{exc.start + 1}); export files are JSON lines in UTF-8"
            ) from None
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise UserError(f"{path}:{number} is not valid JSON ({reason})") from exc
    problem = pairing_problem(items) if all(isinstance(item, dict) for item in items) else None
    if problem is not None:
        raise UserError(f"{path}: {problem}, which no model accepts; nothing was imported")
    return items


async def _import(store: SessionStore, args: argparse.Namespace) -> int:
    path = Path(args.file)
    items = await asyncio.to_thread(_read_jsonl, path)
    session_id = path.stem if args.session is None else args.session
    session = store.session(session_id)
    held = await session.get_items(limit=1)
    if held and not (args.append or args.replace):
        raise UserError(
            f"session {session_id!r} already has items in {store_name(store)}; pass --append "
            "to add these after them, --replace to replace them, or --session ID for another"
        )
    if args.replace:
        await session.replace_items(items)  # validated first, atomic
        print(f"replaced session {session_id} with {len(items)} imported items")
    else:
        await session.add_items(items)  # validated before anything is written
        print(f"imported {len(items)} items into session {session_id}")
    return 0


async def _fork(store: SessionStore, args: argparse.Namespace) -> int:
    await _known(store, args.session_id)
    await store.session(args.session_id).fork(args.new_session_id)
    print(f"forked {args.session_id} to {args.new_session_id}")
    return 0


async def _rm(store: SessionStore, args: argparse.Namespace) -> int:
    if not await store.delete_session(args.session_id):
        raise UserError(_unknown(store, args.session_id))
    print(f"deleted session {args.session_id}")
    return 0


async def _stats(store: SessionStore, args: argparse.Namespace) -> int:
    counted = await store.stats()
    stats: dict[str, Any] = {
        "store": store_name(store),
        "sessions": counted.sessions,
        "items": counted.items,
        **{key: value for key, value in counted.details.items() if key != "database"},
    }
    if args.json:
        _emit_json(stats)
    else:
        for key, value in stats.items():
            print(f"{key}: {value}")
    return 0
