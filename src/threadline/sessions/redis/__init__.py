"""The Redis store (``pip install -e '.[redis]'`` in a threadline checkout): :class:`RedisStore`.

``_keys`` names the keys (one hash-tagged family per session), ``_scripts`` holds the Lua
scripts, ``_client`` the per-loop clients and failures, ``_backend`` maps the backend
interface onto them, and ``store`` has the public class and URL parsing. Importing this
package without redis-py installed raises
:class:`~threadline.errors.MissingDependencyError` naming the extra.
"""

from __future__ import annotations

import importlib

from ...errors import MissingDependencyError

try:
    importlib.import_module("redis.asyncio")
except ImportError as exc:
    raise MissingDependencyError(exc.name or "redis", "redis", "redis:// stores") from exc

from .store import DEFAULT_PREFIX, RedisStore

__all__ = ["DEFAULT_PREFIX", "RedisStore"]
