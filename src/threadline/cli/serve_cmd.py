"""``threadline serve``: the HTTP server (``threadline.server``) from command-line arguments.

Binds 127.0.0.1:8400 by default and refuses any other host without API keys. The model is an
OpenAI-compatible upstream (``--upstream URL``, its key in ``--upstream-key-env VAR``, the
model ``--model NAME``), else the bundled local model. Prints one line on stderr with the URL
once the socket is bound (``--port 0`` picks a free port and says which).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UserError

TYPE_CHECKING = False  # not typing's: the parser is built for every `threadline --help`
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_serve_parser", "is_loopback", "serve_command"]


def add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``serve`` subcommand's arguments (standard library only: ``--help`` stays fast)."""
    serve = commands.add_parser(
        "serve", help="serve OpenAI's stateful HTTP API (conversations, responses, chat)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8400, help="port (8400; 0: any free port)")
    serve.add_argument(
        "--store",
        metavar="URL",
        help="session store URL, e.g. sqlite:///chat.db (default: $THREADLINE_STORE)",
    )
    serve.add_argument("--db", metavar="PATH", help="SQLite file (default: the user data dir)")
    serve.add_argument(
        "--upstream",
        metavar="URL",
        help="OpenAI-compatible chat-completions endpoint (default: the local model)",
    )
    serve.add_argument(
        "--upstream-key-env", metavar="VAR", help="environment variable holding the upstream key"
    )
    serve.add_argument("--model", metavar="NAME", help="the upstream model the agents use")
    who = serve.add_mutually_exclusive_group()
    who.add_argument(
        "--instructions",
        metavar="TEXT",
        help="instructions of the default agent, served as model 'assistant'",
    )
    who.add_argument(
        "--agents",
        metavar="MODULE:ATTR",
        help="threadline Agent objects to serve (an Agent, a list or a dict), by name",
    )
    serve.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the API key clients must send",
    )
    serve.add_argument(
        "--keys-file",
        metavar="PATH",
        help='JSON object of API key to tenant, e.g. {"sk-...": "acme"}',
    )
    serve.add_argument(
        "--no-memory",
        dest="memory",
        action="store_false",
        help="stateless pass-through: no conversations, nothing stored",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser requests from ORIGIN (repeatable; default: CORS off)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        metavar="N",
        help="largest request body (default 4 MiB)",
    )
    serve.add_argument(
        "--ui",
        action="store_true",
        help="also serve the web inspector at /ui (see threadline inspect)",
    )
    serve.add_argument(
        "--write",
        action="store_true",
        help="let the inspector's /v1/inspect routes change sessions (read-only without it)",
    )
    serve.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logs"
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keys(args: argparse.Namespace) -> dict[str, str | None]:
    from ..server._auth import load_keys_file

    keys: dict[str, str | None] = {}
    if args.keys_file:
        keys.update(load_keys_file(args.keys_file))
    if args.api_key_env:
        value = os.environ.get(args.api_key_env)
        if not value:
            raise UserError(
                f"the environment variable {args.api_key_env} (from --api-key-env) is not set"
            )
        keys[value] = None
    return keys


def _model(args: argparse.Namespace) -> tuple[Any, list[str], Any]:
    """The agents' model, the secrets to scrub, and the provider to keep alive."""
    if args.upstream is None:
        if args.upstream_key_env:
            raise UserError("--upstream-key-env needs --upstream URL")
        from .commands import _resolve_for_chat

        return _resolve_for_chat(args.model), [], None
    if not args.model:
        raise UserError("give --model NAME with --upstream (the upstream's model name)")
    key = "unused"  # many self-hosted endpoints need no key
    if args.upstream_key_env:
        key = os.environ.get(args.upstream_key_env, "")
        if not key:
            raise UserError(
                f"the environment variable {args.upstream_key_env} (from --upstream-key-env) "
                "is not set"
            )
    from ..models.openai_provider import OpenAIProvider

    provider = OpenAIProvider(api_key=key, base_url=args.upstream, use_responses=False)
    return provider.get_model(args.model), [key] if key != "unused" else [], provider


def serve_command(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C (or SIGTERM)."""
    import asyncio

    try:
        import uvicorn

        from ..server import Limits, create_app
        from ..server._agents import load_agents
    except ImportError as exc:
        from ..errors import MissingDependencyError

        if isinstance(exc, MissingDependencyError):
            raise
        raise MissingDependencyError(exc.name or "uvicorn", "serve", "threadline serve") from exc
    keys = _keys(args)
    if not is_loopback(args.host) and not keys:
        raise UserError(
            f"refusing to serve on {args.host} without API keys: anyone who can reach it could "
            "read every conversation; give --api-key-env VAR or --keys-file FILE (or bind "
            "127.0.0.1 behind a proxy that authenticates)"
        )
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0 to 65535, got {args.port}")
    if not args.memory and (args.ui or args.write):
        raise UserError("--ui and --write inspect stored conversations: drop --no-memory")
    agents = load_agents(args.agents) if args.agents else None
    from ._listen import listen
    from .commands import open_store, store_name

    # the store URL is checked before the model starts (the local model takes seconds)
    store = open_store(args.db, args.store) if args.memory else None
    model, secrets, provider = _model(args)
    limits = Limits() if args.max_body_bytes is None else Limits(max_body_bytes=args.max_body_bytes)
    app = create_app(
        store,
        agents=agents,
        model=model,
        instructions=args.instructions,
        memory=args.memory,
        api_keys=keys or None,
        limits=limits,
        cors_origins=args.cors_origin,
        secrets=secrets,
    )
    app.state.provider = provider  # the upstream's client lives as long as the app
    if args.ui or args.write:
        from ..server.inspector import enable_inspector

        enable_inspector(app, write=args.write, ui=args.ui)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    served = ", ".join(app.state.threadline.agents.names)
    where = store_name(store) if store is not None else "none (--no-memory)"
    if args.ui:
        where += f"; inspector: http://{shown}:{port}/ui/"
    level = "debug" if getattr(args, "verbose", False) else "warning"
    config = uvicorn.Config(app, log_level=level, lifespan="on", access_log=False)
    server = uvicorn.Server(config)

    async def run() -> None:
        if store is not None:
            # on the server's loop, before it starts: a store that cannot be opened (a
            # directory that cannot be written, a database that is down) is this command's
            # error, not a traceback in the server's log (the app's own start-up then finds
            # the schema ready)
            await store.setup()
        print(
            f"threadline serve: http://{shown}:{port}/v1 (models: {served}; store: {where})",
            file=sys.stderr,
            flush=True,
        )
        await server.serve(sockets=[sock])

    try:
        asyncio.run(run())
    finally:
        sock.close()
    return 0
