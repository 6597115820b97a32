"""``threadline chat``: a REPL that remembers, streams replies and manages its sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from ..agent import Agent
from ..errors import ThreadlineError
from ..items import Item
from ..run import RunConfig, Runner
from ..sessions import SessionSettings, SessionStore, ThreadlineSession
from ._render import print_history, print_sessions, write_jsonl
from ._reply import PlainReply, ReplyRenderer
from ._usage import UsageLog

__all__ = ["HELP", "ChatApp", "run_repl"]

HELP = """\
Commands:
  /history        show this session's stored items
  /undo           remove the last turn (your message and the reply)
  /clear          remove every item of this session
  /fork NAME      copy this session to NAME and switch to the copy
  /compact        summarise the older turns now (the raw items stay)
  /switch ID      continue another session (created when new)
  /sessions       list the sessions in the database
  /export FILE    write this session's items to FILE as JSON lines
  /usage          tokens used by each turn of this chat, and the totals
  /help           show this help
  exit, quit      leave (Ctrl-D too); Ctrl-C cancels a reply in flight"""


class ChatApp:
    """The state of a chat: the agent, the store and the current session."""

    def __init__(
        self,
        *,
        agent: Agent[Any],
        store: SessionStore,
        session_id: str,
        out: TextIO,
        err: TextIO,
        run_config: RunConfig | None = None,
        interactive: bool = False,
        model_name: str | None = None,
        renderer: ReplyRenderer | None = None,
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.agent = agent
        self.store = store
        self.session_settings = session_settings
        self.session: ThreadlineSession = store.session(
            session_id, session_settings=session_settings
        )
        self.out = out
        self.err = err
        self.run_config = run_config or RunConfig()
        self.interactive = interactive
        self.model_name = model_name
        self.renderer: ReplyRenderer = renderer if renderer is not None else PlainReply(out)
        self.usage = UsageLog()

    async def turn(self, text: str) -> None:
        """Send ``text``; stream the reply to ``out`` through the renderer."""
        result = Runner.run_streamed(
            self.agent, text, session=self.session, run_config=self.run_config
        )
        wrote = False
        self.renderer.start()
        try:
            async for event in result.stream_events():
                if event.type == "raw_response_event":
                    delta = getattr(event.data, "delta", None)
                    if isinstance(delta, str):
                        self.renderer.feed(delta)
                        wrote = True
                elif (
                    event.type == "run_item_stream_event"
                    and event.name == "tool_called"
                    and self.interactive
                ):
                    print(f"· calling {event.item.raw_item.get('name')}", file=self.err)
        except BaseException:
            self.renderer.abort()
            raise
        output = result.final_output
        whole = output if isinstance(output, str) else json.dumps(output, default=str)
        self.renderer.finish(None if wrote else whole)
        self.usage.record(result.usage)
        await self._after_turn(result.compaction)

    async def _after_turn(self, compaction: Any) -> None:
        """Let the turn's compaction (started once the reply was stored and shown) finish
        before the next prompt, and say so in one line when it compacted."""
        if compaction is None:
            return
        outcome = await compaction
        if outcome.compacted:
            print(f"· {outcome.describe()}", file=self.err)

    async def command(self, line: str) -> None:
        """Carry out one slash command."""
        name, _, argument = line[1:].strip().partition(" ")
        argument = argument.strip()
        handler = self._commands().get(name)
        if handler is None:
            print(f"unknown command /{name}; /help lists the commands", file=self.err)
            return
        await handler(argument)

    def _commands(self) -> dict[str, Callable[[str], Awaitable[None]]]:
        return {
            "help": self._help,
            "history": self._history,
            "undo": self._undo,
            "clear": self._clear,
            "fork": self._fork,
            "compact": self._compact,
            "switch": self._switch,
            "sessions": self._sessions,
            "export": self._export,
            "usage": self._usage,
        }

    async def _usage(self, _: str) -> None:
        self.usage.print(self.out)

    async def _help(self, _: str) -> None:
        print(HELP, file=self.out)

    async def _history(self, _: str) -> None:
        print_history(await self.session.get_items(), self.out)

    async def _undo(self, _: str) -> None:
        removed = await self.session.pop_turn()
        print(f"removed the last turn ({len(removed)} items)", file=self.out)

    async def _clear(self, _: str) -> None:
        await self.session.clear_session()
        print(f"cleared session {self.session.session_id}", file=self.out)

    async def _fork(self, name: str) -> None:
        if not name:
            print("usage: /fork NAME", file=self.err)
            return
        self.session = await self.session.fork(name)
        print(f"forked to {name}; now in session {name}", file=self.out)

    async def _compact(self, _: str) -> None:
        from ..run import compact_session

        outcome = await compact_session(self.session, agent=self.agent, run_config=self.run_config)
        print(outcome.describe(), file=self.out)

    async def _switch(self, session_id: str) -> None:
        if not session_id:
            print("usage: /switch ID", file=self.err)
            return
        from .commands import describe_session  # commands imports this module

        self.session = self.store.session(session_id, session_settings=self.session_settings)
        print(f"now in session {session_id}", file=self.out)
        print(await describe_session(self.store, session_id), file=self.err)

    async def _sessions(self, _: str) -> None:
        print_sessions(await self.store.list_sessions(), self.out, self.session.session_id)

    async def _export(self, path: str) -> None:
        if not path:
            print("usage: /export FILE", file=self.err)
            return
        items = await self.session.get_items()
        try:
            await asyncio.to_thread(_write_jsonl, path, items)
        except OSError as exc:
            print(f"error: cannot write {path}: {exc.strerror or exc}", file=self.err)
            return
        print(f"wrote {len(items)} items to {path}", file=self.out)


def _write_jsonl(path: str, items: list[Item]) -> None:
    with Path(path).expanduser().open("w", encoding="utf-8") as handle:
        write_jsonl(items, handle)


def _read_line(prompt: str, stdin: TextIO, interactive: bool) -> str:
    if interactive:
        return input(prompt)
    line = stdin.readline()
    if not line:
        raise EOFError
    return line


def _tolerate_bad_bytes(stdin: TextIO) -> None:
    """Let a line that is not UTF-8 arrive (as surrogate escapes) instead of ending the chat."""
    reconfigure = getattr(stdin, "reconfigure", None)
    if callable(reconfigure):
        with contextlib.suppress(ValueError, OSError, TypeError):
            reconfigure(errors="surrogateescape")


def _is_text(line: str) -> bool:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _lease_notice(app: ChatApp) -> None:
    """Say so when another run (a chat that was killed, say) holds the session's lease."""
    from ..errors import SessionBusyError

    lease = getattr(app.session, "lease", None)
    if not callable(lease):
        return
    try:
        async with lease(wait=False):
            pass
    except SessionBusyError as exc:
        holder = exc.holder or "another run"
        when = (
            f"; its lease runs out in {max(exc.expires_in, 0.0):.0f} s unless renewed"
            if exc.expires_in is not None
            else ""
        )
        print(
            f"session {app.session.session_id} is held by {holder}{when}: the first turn waits",
            file=app.err,
        )


def _run_cancellable(loop: asyncio.AbstractEventLoop, coro: Awaitable[None]) -> bool:
    """Run ``coro``; Ctrl-C cancels it. Returns False when it was cancelled."""
    task = asyncio.ensure_future(coro, loop=loop)
    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        installed = True
    try:
        loop.run_until_complete(task)
        return True
    except asyncio.CancelledError:
        return False
    except KeyboardInterrupt:
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        return False
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def run_repl(app: ChatApp, stdin: TextIO | None = None) -> int:
    """Read lines until exit/quit/end of input; each line is a turn or a slash command."""
    stdin = stdin or sys.stdin
    _tolerate_bad_bytes(stdin)
    if app.interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
    loop = asyncio.new_event_loop()
    turns = failed = 0
    try:
        with contextlib.suppress(ThreadlineError):
            loop.run_until_complete(_lease_notice(app))
        if app.interactive:
            model = f" · model {app.model_name}" if app.model_name else ""
            print(
                f"session {app.session.session_id}{model} · /help for commands · exit to leave",
                file=app.err,
            )
        while True:
            try:
                line = _read_line("you> ", stdin, app.interactive)
            except EOFError:
                if app.interactive:
                    print(file=app.out)
                break
            except KeyboardInterrupt:
                print(file=app.out)
                continue
            text = line.strip()
            if not text:
                continue
            if not _is_text(text):
                print("error: that line is not UTF-8 text; it was skipped", file=app.err)
                turns, failed = turns + 1, failed + 1
                continue
            if text in ("exit", "quit"):
                break
            is_turn = not text.startswith("/")
            coro = app.turn(text) if is_turn else app.command(text)
            turns += is_turn
            try:
                finished = _run_cancellable(loop, coro)
            except ThreadlineError as exc:
                print(f"error: {exc}", file=app.err)
                failed += is_turn
                continue
            except OSError as exc:
                where = f": {exc.filename}" if exc.filename else ""
                print(f"error: {exc.strerror or exc}{where}", file=app.err)
                failed += is_turn
                continue
            if not finished:
                print("\n[cancelled]", file=app.err)
        # A chat in which every turn failed did not do its job (scripts can tell).
        return 1 if turns and failed == turns else 0
    finally:
        _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close ``loop`` as ``asyncio.run`` does: cancel what is left on it first, so a store's
    connection pool bound to it (PostgreSQL) closes its connections."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
