"""The CLI's logging switch: ``--verbose`` or ``THREADLINE_LOG=debug|info|warning``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ENV_LOG", "logger", "logging_to_stderr"]

ENV_LOG = "THREADLINE_LOG"
logger = logging.getLogger("threadline.cli")


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


@contextmanager
def logging_to_stderr(*, verbose: bool = False) -> Iterator[int]:
    """Send ``threadline.*`` logs at the chosen level to stderr while the block runs; yields
    that level. The ``threadline`` logger is left as it was found afterwards.

    ``--verbose`` means DEBUG; else ``$THREADLINE_LOG`` (a level name); else INFO, so the
    few notices threadline logs (such as the local model answering) are seen.
    """
    name = "DEBUG" if verbose else os.environ.get(ENV_LOG, "INFO").strip().upper()
    named = logging.getLevelName(name)
    unknown = not isinstance(named, int)
    level: int = logging.INFO if unknown else named
    root = logging.getLogger("threadline")
    handler = _Stderr()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        if unknown:
            logger.warning(
                "threadline: %s=%r is not a log level (debug, info, warning, error); using info",
                ENV_LOG,
                name.lower(),
            )
        yield level
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
