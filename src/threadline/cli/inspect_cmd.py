"""``threadline inspect [STORE]``: the web inspector on 127.0.0.1, over one store.

Serves the ``threadline serve`` app with the inspector page at ``/ui/`` (see
:mod:`threadline.server.inspector`), bound to the loopback address only, read-only unless
``--write``. Prints the page's URL once the socket is bound; opens nothing, fetches nothing.
The model (``--model``, ``--base-url``, ``--api-key-env``, else the default resolution) is
used only by "compact now" and to size the context view's budget.
"""

from __future__ import annotations

import argparse
import socket
import sys

from ..errors import UserError
from ._listen import listen

__all__ = ["add_inspect_parser", "inspect_command"]

HOST = "127.0.0.1"


def add_inspect_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``inspect`` subcommand's arguments (standard library only)."""
    inspect = commands.add_parser(
        "inspect", help="browse stored sessions in a local web page (127.0.0.1 only)"
    )
    inspect.add_argument(
        "target",
        nargs="?",
        metavar="STORE",
        help="a store URL (sqlite:///chat.db, postgresql://…) or a SQLite file "
        "(default: --store, --db, $THREADLINE_STORE, else the user data dir)",
    )
    inspect.add_argument("--store", metavar="URL", help="session store URL")
    inspect.add_argument("--db", metavar="PATH", help="SQLite file")
    inspect.add_argument("--port", type=int, default=8400, help="port on 127.0.0.1 (8400; 0: any)")
    inspect.add_argument(
        "--write",
        action="store_true",
        help="allow changes: rename, metadata, undo, fork, compact, repair, delete, import",
    )
    inspect.add_argument("--model", metavar="NAME", help="model for compaction and the budget")
    inspect.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint URL")
    inspect.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding that endpoint's key"
    )
    inspect.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logs"
    )


def _bind(port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be 0 to 65535, got {port}")
    return listen(HOST, port, hint=" (pick another with --port)")


def inspect_command(args: argparse.Namespace) -> int:
    """Serve the inspector until Ctrl-C."""
    import asyncio

    try:
        import uvicorn

        from ..server import create_app
        from ..server.inspector import enable_inspector
    except ImportError as exc:
        from ..errors import MissingDependencyError

        if isinstance(exc, MissingDependencyError):
            raise
        raise MissingDependencyError(exc.name or "uvicorn", "serve", "threadline inspect") from exc
    from .commands import model_from_args, open_store, store_name

    if args.target is not None and (args.store is not None or args.db is not None):
        raise UserError("give the store once: as STORE, or with --store / --db")
    url = args.target if args.target is None or "://" in args.target else None
    path = args.target if url is None and args.target is not None else args.db
    # an inspector over a store that does not exist is refused: nothing is created
    store = open_store(path, url if url is not None else args.store, create=False)
    sock = _bind(args.port)
    try:
        app = enable_inspector(
            create_app(store, model=model_from_args(args)), write=args.write, ui=True
        )
        port = sock.getsockname()[1]
        mode = "changes allowed (--write)" if args.write else "read-only (--write allows changes)"
        print(
            f"threadline inspect: http://{HOST}:{port}/ui/ (store: {store_name(store)}; {mode})",
            file=sys.stderr,
            flush=True,
        )
        level = "debug" if getattr(args, "verbose", False) else "warning"
        config = uvicorn.Config(app, log_level=level, lifespan="on", access_log=False)
        server = uvicorn.Server(config)
        asyncio.run(_serve(server, sock, store))
    finally:
        sock.close()
    return 0


async def _serve(server: object, sock: socket.socket, store: object) -> None:
    try:
        await server.serve(sockets=[sock])  # type: ignore[attr-defined]
    finally:
        await store.aclose()  # type: ignore[attr-defined]
