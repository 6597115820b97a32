"""Where the CLI keeps its database by default."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["default_db_path", "new_session_id"]


def default_db_path() -> Path:
    """``$THREADLINE_DB``, else ``$XDG_DATA_HOME/threadline/threadline.db``
    (``~/.local/share/threadline/threadline.db`` when ``XDG_DATA_HOME`` is unset)."""
    explicit = os.environ.get("THREADLINE_DB")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "threadline" / "threadline.db"


def new_session_id() -> str:
    """A fresh, readable session id such as ``chat-3f9a2c1e``."""
    return f"chat-{uuid.uuid4().hex[:8]}"
