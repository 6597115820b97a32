"""``threadline chat`` and ``threadline db``: argument handling around the REPL and the store."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from ..agent import Agent
from ..errors import UserError
from ..models.base import Model
from ..sessions import SessionStore, SQLiteStore
from ..sessions import open_store as open_store_url
from ._paths import default_db_path, new_session_id
from ._progress import LoadProgress
from .chat import ChatApp, run_repl

__all__ = ["chat_command", "db_command", "model_from_args", "open_store"]


def open_store(db: str | None, store: str | None = None) -> SessionStore:
    """The store the arguments name: ``--store URL``, else ``--db PATH`` (a SQLite file),
    else ``$THREADLINE_STORE``, else the SQLite file in the user data dir (``$THREADLINE_DB``).

    A SQLite file's folder is created if needed.
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
            _make_folder(Path(opened.db_path))
        return opened
    path = Path(db).expanduser() if db else default_db_path()
    _make_folder(path)
    return SQLiteStore.shared(path)


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the folder {str(path.parent)!r} for the session store: "
            f"{exc.strerror or exc}"
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


def chat_command(args: argparse.Namespace) -> int:
    """Start the REPL on the chosen session."""
    model: Any = _resolve_for_chat(model_from_args(args))
    agent: Agent[None] = Agent(name="Assistant", instructions=args.instructions, model=model)
    store = open_store(args.db, args.store)
    session_id = args.session or new_session_id()
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if args.session is None:
        print(f"new session: {session_id}", file=sys.stderr)
    app = ChatApp(
        agent=agent,
        store=store,
        session_id=session_id,
        out=sys.stdout,
        err=sys.stderr,
        interactive=interactive,
    )
    return run_repl(app)


def db_command(args: argparse.Namespace) -> int:
    """``db migrate``: create or upgrade the schema of the store."""
    store = open_store(args.db, args.store)

    async def migrate() -> None:
        try:
            await store.setup()
        finally:
            await store.aclose()

    asyncio.run(migrate())
    print(f"database ready: {store_name(store)}")
    return 0
