"""``threadline chat`` and ``threadline db``: argument handling around the REPL and the store."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..agent import Agent
from ..errors import UserError
from ..models.base import Model
from ..run import RunConfig, Runner
from ..sessions import SessionInfo, SessionSettings, SessionStore, SQLiteStore
from ..sessions import open_store as open_store_url
from ._paths import default_db_path, new_session_id
from ._progress import LoadProgress
from ._reply import choose_renderer
from .chat import ChatApp, run_repl

__all__ = [
    "MissingStoreError",
    "ask_command",
    "chat_command",
    "compaction_settings",
    "db_command",
    "describe_session",
    "make_folder",
    "model_from_args",
    "model_name",
    "open_store",
    "pick_session",
    "run_config_from_args",
    "store_name",
]


def open_store(db: str | None, store: str | None = None, *, create: bool = True) -> SessionStore:
    """The store the arguments name: ``--store URL``, else ``--db PATH`` (a SQLite file),
    else ``$THREADLINE_STORE``, else the SQLite file in the user data dir (``$THREADLINE_DB``).

    With ``create`` a SQLite file's folder is created if needed. Without it (commands that
    only read or change existing sessions) a SQLite file that does not exist raises
    :class:`MissingStoreError`, so a mistyped path never leaves a new, empty database behind.
    """
    if store is not None and db is not None:
        raise UserError("give --store URL or --db PATH, not both")
    url = (
        store
        if store is not None
        else None
        if db is not None
        else os.environ.get("THREADLINE_STORE")
    )
    if url:
        opened = open_store_url(url)
        if isinstance(opened, SQLiteStore) and opened.db_path != ":memory:":
            path = Path(opened.db_path)
            if not create and not path.exists():
                opened.close()
                raise MissingStoreError(path, default=False)
            make_folder(path)
        return opened
    path = Path(db).expanduser() if db else default_db_path()
    if not create and not path.exists():
        raise MissingStoreError(path, default=db is None)
    make_folder(path)
    return SQLiteStore.shared(path)


class MissingStoreError(UserError):
    """The SQLite file a read-only command names does not exist (nothing was created).

    ``default`` tells whether it is the default file (no ``--db``/``--store`` given), which
    simply means no session was stored yet.
    """

    def __init__(self, path: Path, *, default: bool) -> None:
        self.path = path
        self.default = default
        if default:
            message = f"no sessions yet: {path} does not exist; start one with `threadline chat`"
        else:
            blocker = next((p for p in path.parents if p.is_file()), None)
            why = (
                f"{str(blocker)!r} is a file, not a folder"
                if blocker is not None
                else "the file does not exist"
            )
            message = (
                f"no session store at {path}: {why}; check the path "
                "(`threadline chat --db PATH` or `threadline sessions import` creates one)"
            )
        super().__init__(message)


def make_folder(path: Path) -> None:
    """Create the folder of the SQLite file ``path``; a ``UserError`` that says why not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.is_file()), None)
        reason = (
            f"{str(blocker)!r} is a file, not a folder"
            if blocker is not None
            else exc.strerror or str(exc)
        )
        raise UserError(
            f"cannot create the folder {str(path.parent)!r} for the session store: {reason}"
        ) from None


def store_name(store: SessionStore) -> str:
    """How the CLI names a store in messages: a SQLite file's path, else its description."""
    return store.db_path if isinstance(store, SQLiteStore) else repr(store)


def model_from_args(args: argparse.Namespace) -> str | Model | None:
    """An explicit endpoint from ``--base-url`` / ``--api-key-env``, else the ``--model`` name
    (or ``None``) for the default resolution."""
    if args.base_url is None and args.api_key_env is None:
        return args.model  # type: ignore[no-any-return]
    from ..models.openai_provider import OpenAIProvider

    key_var = args.api_key_env or "OPENAI_API_KEY"
    api_key = os.environ.get(key_var)
    if not api_key:
        if args.api_key_env is not None:
            raise UserError(f"the environment variable {key_var} (from --api-key-env) is not set")
        api_key = "unused"  # many self-hosted endpoints need no key
    provider = OpenAIProvider(api_key=api_key, base_url=args.base_url)
    return provider.get_model(args.model)


def _resolve_for_chat(model: str | Model | None) -> Model:
    """Resolve the model now, so a missing configuration fails before the REPL starts and
    the local model shows its loading progress instead of stalling the first reply."""
    if model is not None and not isinstance(model, str):
        return model
    from ..models import local
    from ..run.model_resolution import default_provider

    provider = default_provider()
    if isinstance(provider, local.LocalModelProvider):
        provider.get_model(model)  # refuses names the local model cannot serve
        return local.local_model(start=True, progress=LoadProgress(sys.stderr))
    return provider.get_model(model)


def model_name(model: Any) -> str:
    """The name of the model that answers, for the banner."""
    from ..models import local

    if isinstance(model, local.LocalChatModel):
        return f"{local.LOCAL_MODEL_NAME} (local, offline)"
    name = getattr(model, "model", None)
    return name if isinstance(name, str) else type(model).__name__


async def pick_session(store: SessionStore, args: argparse.Namespace) -> tuple[str, str, bool]:
    """The session id the arguments choose, a line saying whether it is new or continued
    (``continuing ID: 15 items, last 2026-12-01 19:35 UTC`` or ``new session: ID``), and
    whether it is new."""
    if args.continue_last and args.session is not None:
        raise UserError("give --session ID or --continue, not both")
    if args.continue_last:
        page = await store.list_sessions(limit=1)
        if not page.sessions:
            session_id = new_session_id()
            where = store_name(store)
            return session_id, f"no sessions yet in {where}; new session: {session_id}", True
        return page.sessions[0].session_id, _continuing(page.sessions[0]), False
    if args.session is None:
        session_id = new_session_id()
        return session_id, f"new session: {session_id}", True
    line = await describe_session(store, args.session)
    return args.session, line, line.startswith("new session")


async def describe_session(store: SessionStore, session_id: str) -> str:
    """``continuing ID: N items, last …`` or ``new session: ID (no session of that name …)``."""
    info = await store.session_info(session_id)
    if info is None:
        return (
            f"new session: {session_id} (no session of that name in {store_name(store)} "
            "yet; `threadline sessions ls` lists them)"
        )
    return _continuing(info)


def _continuing(info: SessionInfo) -> str:
    when = info.updated_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"continuing {info.session_id}: {info.item_count} items, last {when}"


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run settings ``chat`` and ``ask`` pass on: ``--max-history-tokens`` becomes
    ``SessionSettings(max_tokens=N)``, which wins over the window fitted to the model."""
    limit = getattr(args, "max_history_tokens", None)
    return RunConfig(session_settings=SessionSettings(max_tokens=limit) if limit else None)


def compaction_settings(args: argparse.Namespace) -> SessionSettings | None:
    """``SessionSettings(compact_at=...)`` from ``--compact-at`` or ``$THREADLINE_COMPACT_AT``
    (``None`` when neither is set)."""
    value = getattr(args, "compact_at", None)
    if value is None:
        text = os.environ.get("THREADLINE_COMPACT_AT", "").strip()
        if not text:
            return None
        if not text.isdigit() or int(text) < 1:
            raise UserError(f"THREADLINE_COMPACT_AT must be a number of tokens >= 1, got {text!r}")
        value = int(text)
    return SessionSettings(compact_at=value)


def chat_command(args: argparse.Namespace) -> int:
    """Start the REPL on the chosen session."""
    store = open_store(args.db, args.store)
    model: Any = _resolve_for_chat(model_from_args(args))
    agent: Agent[None] = Agent(name="Assistant", instructions=args.instructions, model=model)
    session_id, line, _ = asyncio.run(pick_session(store, args))
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    print(line, file=sys.stderr)
    app = ChatApp(
        agent=agent,
        store=store,
        session_id=session_id,
        out=sys.stdout,
        err=sys.stderr,
        interactive=interactive,
        model_name=model_name(model),
        run_config=run_config_from_args(args),
        renderer=choose_renderer(sys.stdout, plain=args.plain),
        session_settings=compaction_settings(args),
    )
    return run_repl(app)


def ask_command(args: argparse.Namespace) -> int:
    """``threadline ask QUESTION``: one turn, the answer on stdout, the turn stored."""
    if not args.question.strip():
        raise UserError('ask needs a question: threadline ask "What city is it in?"')
    store = open_store(args.db, args.store)
    model: Any = _resolve_for_chat(model_from_args(args))
    agent: Agent[None] = Agent(name="Assistant", instructions=args.instructions, model=model)

    async def ask() -> Any:
        try:
            session_id, line, new = await pick_session(store, args)
            hint = f" (continue it with --session {session_id} or -c)" if new else ""
            print(line + hint, file=sys.stderr)
            session = store.session(session_id, session_settings=compaction_settings(args))
            result = await Runner.run(
                agent, args.question, session=session, run_config=run_config_from_args(args)
            )
            if result.compaction is not None:  # one turn and done: let it finish first
                outcome = await result.compaction
                if outcome.compacted:
                    print(f"· {outcome.describe()}", file=sys.stderr)
            return result.final_output
        finally:
            await _close_client(model)
            await store.aclose()

    answer = asyncio.run(ask())
    if isinstance(answer, str):
        choose_renderer(sys.stdout, plain=args.plain).show(answer)
    else:
        print(json.dumps(answer, default=str))
    return 0


async def _close_client(model: Any) -> None:
    """Close a client the CLI made; its connections belong to this event loop."""
    client = getattr(model, "openai_client", None)
    if client is not None:
        await client.close()


def db_command(args: argparse.Namespace) -> int:
    """``db migrate`` (create or upgrade the schema) and ``db import-sdk FILE``."""
    if args.action == "import-sdk":
        return _import_sdk(args)
    store = open_store(args.db, args.store)

    async def migrate() -> None:
        try:
            await store.setup()
        finally:
            await store.aclose()

    asyncio.run(migrate())
    print(f"database ready: {store_name(store)}")
    return 0


def _import_sdk(args: argparse.Namespace) -> int:
    """Copy the sessions an OpenAI Agents SDK ``SQLiteSession`` wrote into threadline's schema
    in the same file (the SDK's tables are left untouched)."""
    path = Path(args.file).expanduser()
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    tables = (args.sessions_table, args.messages_table)
    store = SQLiteStore(path, sdk_tables=tables, adopt_sdk=False)

    async def run() -> tuple[int, int, list[str]]:
        try:
            return await store.import_sdk(tables)
        finally:
            await store.aclose()

    copied, items, skipped = asyncio.run(run())
    print(f"imported {copied} sessions ({items} items) from the OpenAI Agents SDK tables in {path}")
    if skipped:
        print(
            f"skipped {len(skipped)} sessions threadline already holds: {', '.join(skipped[:10])}"
            + (" …" if len(skipped) > 10 else ""),
            file=sys.stderr,
        )
    return 0
