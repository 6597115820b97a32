"""A progress line while the local model loads."""

from __future__ import annotations

from typing import Any, TextIO

__all__ = ["LoadProgress"]


class LoadProgress:
    """Shows the model loading on one line (a TTY) or as plain lines (a pipe)."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.tty = err.isatty()
        self.last = ""

    def __call__(self, status: Any) -> None:
        message = f"local model: {status.message} ({status.elapsed:.1f}s)"
        if self.tty:
            self.err.write("\r" + message.ljust(70))
            if status.stage == "ready":
                self.err.write("\n")
            self.err.flush()
        elif status.stage != self.last:
            print(f"local model: {status.message}", file=self.err)
        self.last = status.stage
