"""The ``threadline`` command line: ``main(argv) -> int``, testable without a subprocess."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import ThreadlineError

__all__ = ["build_parser", "entrypoint", "main"]

DESCRIPTION = "threadline: chat with agents that remember, and manage their stored sessions."
DEBUG_HINT = "run with THREADLINE_LOG=debug for details"


def _store_arguments(parser: argparse.ArgumentParser, *, after: bool = False) -> None:
    """``--store`` / ``--db``; with ``after``, defaults are suppressed so that the same flags
    given after an action do not overwrite the ones given before it."""
    default = argparse.SUPPRESS if after else None
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help="session store URL, e.g. sqlite:///chat.db (default: $THREADLINE_STORE)",
    )
    parser.add_argument(
        "--db", metavar="PATH", default=default, help="SQLite file (default: the user data dir)"
    )


def _json_argument(parser: argparse.ArgumentParser, *, after: bool = False) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if after else False,
        help="machine-readable output",
    )


def _verbose_argument(parser: argparse.ArgumentParser, *, after: bool = False) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if after else False,
        help="debug logs on stderr (also: THREADLINE_LOG=debug)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of tokens >= 1, got {text!r}")
    return value


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", metavar="ID", help="session to continue (default: a new one)")
    parser.add_argument(
        "-c",
        "--continue",
        dest="continue_last",
        action="store_true",
        help="continue the most recently updated session",
    )
    _store_arguments(parser)
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="model name (default: OPENAI_* settings, else the local model)",
    )
    parser.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint URL")
    parser.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding the API key"
    )
    parser.add_argument(
        "--compact-at",
        metavar="TOKENS",
        type=_positive_int,
        default=None,
        help="summarise older turns once the unsummarised history passes TOKENS "
        "(default: $THREADLINE_COMPACT_AT, else never); see docs/context.md",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="print replies as raw text (default on a terminal: rendered Markdown)",
    )
    parser.add_argument(
        "--max-history-tokens",
        type=_positive_int,
        metavar="N",
        help="stored history sent per request, in tokens (default: what fits the model)",
    )
    parser.add_argument(
        "--instructions",
        metavar="TEXT",
        default="You are a helpful assistant. Reply concisely.",
        help="the assistant's instructions",
    )
    _verbose_argument(parser, after=True)


def _version() -> str:
    from .. import __version__

    return f"threadline {__version__}"


def _sessions_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sessions = commands.add_parser("sessions", help="list, show, search, export, import sessions")
    _store_arguments(sessions)
    _json_argument(sessions)
    after = argparse.ArgumentParser(add_help=False)
    _store_arguments(after, after=True)
    _json_argument(after, after=True)
    _verbose_argument(after, after=True)
    actions = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help, parents=[after])

    action("ls", "list sessions")
    action("show", "print a session's items").add_argument("session_id")
    search = action("search", "find items holding every word of TEXT")
    search.add_argument("text")
    search.add_argument("--limit", type=int, default=20, metavar="N", help="most hits (20)")
    export = action("export", "write a session as JSON lines")
    export.add_argument("session_id")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (default: standard output)"
    )
    imp = action("import", "read a session from a JSON lines file")
    imp.add_argument("file")
    imp.add_argument("--session", metavar="ID", help="session id (default: the file's stem)")
    mode = imp.add_mutually_exclusive_group()
    mode.add_argument(
        "--append", action="store_true", help="add to a session that already has items"
    )
    mode.add_argument(
        "--replace", action="store_true", help="replace the items of a session that has some"
    )
    fork = action("fork", "copy a session under a new id")
    fork.add_argument("session_id")
    fork.add_argument("new_session_id")
    fork.add_argument(
        "--at-turn",
        type=int,
        metavar="N",
        help="keep only the first N turns (negative: from the end)",
    )
    action("rm", "delete a session").add_argument("session_id")
    prune = action("prune", "delete sessions idle longer than --idle or than their own TTL")
    prune.add_argument(
        "--idle",
        metavar="DURATION",
        help="idle time such as 30d, 12h, 90m, 1w2d (sessions without a TTL)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted, delete nothing"
    )
    action("stats", "sessions, items, file size and usage")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="threadline", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version())
    _verbose_argument(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser("chat", help="chat in the terminal; the conversation is stored")
    _model_arguments(chat)
    ask = commands.add_parser("ask", help="ask one question, print the answer, store the turn")
    ask.add_argument("question", help="the question (the turn is stored in the session)")
    _model_arguments(ask)

    _sessions_parser(commands)

    demo = commands.add_parser(
        "demo", help="the offline Golden Gate conversation on the local model"
    )
    demo.add_argument("--db", metavar="PATH", default="threadline-demo.db", help="SQLite file")
    _verbose_argument(demo, after=True)

    db = commands.add_parser("db", help="database maintenance")
    db_actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    migrate = db_actions.add_parser("migrate", help="create or upgrade the schema")
    _store_arguments(migrate)
    _verbose_argument(migrate, after=True)
    sdk = db_actions.add_parser(
        "import-sdk", help="copy an OpenAI Agents SDK database's sessions into threadline's"
    )
    sdk.add_argument("file", help="the SQLite file the SDK's SQLiteSession wrote")
    sdk.add_argument("--sessions-table", default="agent_sessions", metavar="NAME")
    sdk.add_argument("--messages-table", default="agent_messages", metavar="NAME")
    _verbose_argument(sdk, after=True)

    from .serve_cmd import add_serve_parser

    add_serve_parser(commands)

    completion = commands.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell")
    return parser


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command in ("chat", "ask"):
        from .commands import ask_command, chat_command

        return chat_command(args) if args.command == "chat" else ask_command(args)
    if args.command == "sessions":
        from .sessions_cmd import sessions_command

        return sessions_command(args)
    if args.command == "demo":
        from .demo import demo_command

        return demo_command(args)
    if args.command == "db":
        from .commands import db_command

        return db_command(args)
    if args.command == "serve":
        from .serve_cmd import serve_command

        return serve_command(args)
    if args.command == "completion":
        from .completion import completion_script

        sys.stdout.write(completion_script(args.shell, parser))
        return 0
    parser.print_help()
    return 2


def _fail(message: str) -> int:
    print(f"threadline: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Every failure is one line on stderr and a non-zero status (130 after Ctrl-C); with
    ``--verbose`` or ``THREADLINE_LOG=debug`` the logs, and the traceback of an unexpected
    error, go to stderr too.
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    from ._log import logging_to_stderr

    with logging_to_stderr(verbose=bool(getattr(args, "verbose", False))):
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from ._log import logger

    try:
        return _dispatch(parser, args)
    except ThreadlineError as exc:
        return _fail(f"error: {exc}")
    except KeyboardInterrupt:
        print("\nthreadline: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `threadline sessions ls | head -1`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        logger.debug("threadline: an OS error ended the command", exc_info=True)
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"error: {exc.strerror or exc}{where}")
    except Exception as exc:
        logger.debug("threadline: an unexpected error ended the command", exc_info=True)
        return _fail(f"unexpected error: {type(exc).__name__}: {exc} ({DEBUG_HINT})")


def entrypoint() -> None:
    """The console script: ``sys.exit(main())``."""
    sys.exit(main())
