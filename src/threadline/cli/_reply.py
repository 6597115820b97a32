"""How ``chat`` and ``ask`` show a reply: raw text, or Markdown and code rendered by ``rich``.

``rich`` is imported here only, and only when a reply is rendered on a terminal: it comes with
the ``local`` and ``cli`` extras; without it replies are plain text, silently. Raw text is kept
whenever standard output is not a terminal (a pipe or a file gets exactly what the model said)
and with ``--plain`` (or ``TERM=dumb``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol, TextIO

__all__ = ["MarkdownReply", "PlainReply", "ReplyRenderer", "choose_renderer"]


class ReplyRenderer(Protocol):
    """Shows one reply at a time: ``start``, ``feed`` each streamed piece, then ``finish``."""

    def start(self) -> None:
        """A reply begins."""
        ...

    def feed(self, delta: str) -> None:
        """A piece of the reply arrived."""
        ...

    def finish(self, text: str | None) -> None:
        """The reply is complete; ``text`` is the whole reply when nothing was streamed."""
        ...

    def show(self, text: str) -> None:
        """Show a whole reply at once (``ask``)."""
        ...

    def abort(self) -> None:
        """The reply was cancelled or failed: leave the terminal as it was."""
        ...


class PlainReply:
    """Writes the reply's text as it arrives, unchanged, and a newline after it."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def start(self) -> None:
        """Nothing to prepare."""

    def feed(self, delta: str) -> None:
        """Write the piece at once."""
        self.out.write(delta)
        self.out.flush()

    def finish(self, text: str | None) -> None:
        """Write ``text`` (when nothing streamed) and end the line."""
        if text is not None:
            self.out.write(text)
        self.out.write("\n")
        self.out.flush()

    def show(self, text: str) -> None:
        """Write ``text`` and a newline."""
        self.finish(text)

    def abort(self) -> None:
        """Nothing to undo: what arrived was written."""


class MarkdownReply:
    """Renders the reply as Markdown (headings, lists, emphasis, highlighted code) with
    ``rich``: redrawn live as it streams (at most :attr:`FRAMES_PER_SECOND` times a second,
    cropped to the screen), then printed once in full, so the scrollback holds the whole
    reply."""

    FRAMES_PER_SECOND = 12

    def __init__(self, out: TextIO, *, force_terminal: bool | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=out, force_terminal=force_terminal)
        self._text = ""
        self._live: Any = None
        self._drawn = 0.0

    def _markdown(self, text: str) -> Any:
        from rich.markdown import Markdown

        return Markdown(text, code_theme="monokai")

    def start(self) -> None:
        """Begin a live view of the reply."""
        from rich.live import Live

        self._text = ""
        self._live = Live(
            self._markdown(""),
            console=self.console,
            auto_refresh=False,
            transient=True,  # the live frame is replaced by the reply printed in full
            vertical_overflow="ellipsis",
        )
        self._live.start()
        self._drawn = 0.0

    def feed(self, delta: str) -> None:
        """Add the piece; redraw unless the last frame is very recent."""
        self._text += delta
        now = time.monotonic()
        if self._live is not None and now - self._drawn >= 1 / self.FRAMES_PER_SECOND:
            self._live.update(self._markdown(self._text), refresh=True)
            self._drawn = now

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def finish(self, text: str | None) -> None:
        """Stop the live view and print the complete reply."""
        if text is not None:
            self._text = text
        self._stop()
        self.console.print(self._markdown(self._text))

    def show(self, text: str) -> None:
        """Render ``text`` once."""
        self.console.print(self._markdown(text))

    def abort(self) -> None:
        """Stop the live view and print what had arrived, so it is not lost."""
        live = self._live is not None
        self._stop()
        if live and self._text:
            self.console.print(self._markdown(self._text))


def choose_renderer(out: TextIO, *, plain: bool = False) -> ReplyRenderer:
    """Markdown on a terminal when ``rich`` is installed; else (``plain``, a pipe, a file, a
    ``TERM=dumb`` terminal, or no ``rich``) the raw text."""
    isatty = getattr(out, "isatty", None)
    if plain or not callable(isatty) or not isatty() or os.environ.get("TERM") == "dumb":
        return PlainReply(out)
    try:
        return MarkdownReply(out, force_terminal=True)
    except ImportError:
        return PlainReply(out)
