"""The CLI's logging switch: ``--verbose`` or ``THREADLINE_LOG=debug|info|warning``."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["ENV_LOG", "configure_logging", "logger"]

ENV_LOG = "THREADLINE_LOG"
logger = logging.getLogger("threadline.cli")
_handler: logging.Handler | None = None


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def configure_logging(*, verbose: bool = False) -> int:
    """Send ``threadline.*`` logs at the chosen level to stderr; return that level.

    ``--verbose`` means DEBUG; else ``$THREADLINE_LOG`` (a level name); else INFO, so the
    few notices threadline logs (such as the local model answering) are seen.
    """
    global _handler
    name = "DEBUG" if verbose else os.environ.get(ENV_LOG, "INFO").strip().upper()
    named = logging.getLevelName(name)
    unknown = not isinstance(named, int)
    level: int = logging.INFO if unknown else named
    root = logging.getLogger("threadline")
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = _Stderr()
    root.addHandler(_handler)
    root.setLevel(level)
    if unknown:
        logger.warning(
            "threadline: %s=%r is not a log level (debug, info, warning, error); using info",
            ENV_LOG,
            name.lower(),
        )
    return level
