"""The embedded default store: :class:`SQLiteStore` and :class:`SQLiteSession`.

``_engine`` owns the threads and connections, ``_schema`` the migrations, ``_ops`` the SQL of
each operation, ``_backend`` maps the backend interface onto them, and ``store`` has the public
classes.
"""

from __future__ import annotations

from .store import SQLiteSession, SQLiteStore

__all__ = ["SQLiteSession", "SQLiteStore"]
