"""(in progress)"""

from __future__ import annotations

from typing import Any

__all__ = ["routes"]


def routes(*args: Any) -> list[Any]:
    """The routes of this module."""
    return []
