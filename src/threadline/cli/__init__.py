"""The ``threadline`` command line: ``main(argv) -> int``, testable without a subprocess."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import ThreadlineError

__all__ = ["build_parser", "entrypoint", "main"]

DESCRIPTION = "threadline: chat with agents that remember, and manage their stored sessions."


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="session store URL, e.g. sqlite:///chat.db (default: $THREADLINE_STORE)",
    )
    parser.add_argument("--db", metavar="PATH", help="SQLite file (default: the user data dir)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="threadline", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser("chat", help="chat in the terminal; the conversation is stored")
    chat.add_argument("--session", metavar="ID", help="session to continue (default: a new one)")
    _store_arguments(chat)
    chat.add_argument(
        "--model",
        metavar="NAME",
        help="model name (default: OPENAI_* settings, else the local model)",
    )
    chat.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint URL")
    chat.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding the API key"
    )
    chat.add_argument(
        "--instructions",
        metavar="TEXT",
        default="You are a helpful assistant. Reply concisely.",
        help="the assistant's instructions",
    )

    sessions = commands.add_parser("sessions", help="list, show, search, export, import sessions")
    _store_arguments(sessions)
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    actions = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("ls", help="list sessions")
    actions.add_parser("show", help="print a session's items").add_argument("session_id")
    search = actions.add_parser("search", help="find items holding every word of TEXT")
    search.add_argument("text")
    search.add_argument("--limit", type=int, default=20, metavar="N", help="most hits (20)")
    actions.add_parser("export", help="write a session as JSON lines").add_argument("session_id")
    imp = actions.add_parser("import", help="read a session from a JSON lines file")
    imp.add_argument("file")
    imp.add_argument("--session", metavar="ID", help="session id (default: the file's stem)")
    fork = actions.add_parser("fork", help="copy a session under a new id")
    fork.add_argument("session_id")
    fork.add_argument("new_session_id")
    actions.add_parser("rm", help="delete a session").add_argument("session_id")
    actions.add_parser("stats", help="sessions, items and file size")

    demo = commands.add_parser(
        "demo", help="the offline Golden Gate conversation on the local model"
    )
    demo.add_argument("--db", metavar="PATH", default="threadline-demo.db", help="SQLite file")

    db = commands.add_parser("db", help="database maintenance")
    db_actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    migrate = db_actions.add_parser("migrate", help="create or upgrade the schema")
    _store_arguments(migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "chat":
            from .commands import chat_command

            return chat_command(args)
        if args.command == "sessions":
            from .sessions_cmd import sessions_command

            return sessions_command(args)
        if args.command == "demo":
            from .demo import demo_command

            return demo_command(args)
        if args.command == "db":
            from .commands import db_command

            return db_command(args)
    except ThreadlineError as exc:
        print(f"threadline: error: {exc}", file=sys.stderr)
        return 1
    parser.print_help()
    return 2


def entrypoint() -> None:
    """The console script: ``sys.exit(main())``."""
    sys.exit(main())
