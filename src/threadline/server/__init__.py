"""``threadline serve``: OpenAI's stateful HTTP API over any store and any chat model.

:func:`create_app` returns the ASGI app (see ``docs/serve.md``); :class:`Limits` bounds what
one request may carry. Importing :mod:`threadline` never imports this package; importing it
without the ``serve`` extra raises an ImportError naming it (``pip install -e '.[serve]'`` in a checkout).
"""

from __future__ import annotations

from ..errors import MissingDependencyError

try:
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test with the module hidden
    raise MissingDependencyError("starlette", "serve", "threadline serve") from exc

from ._limits import Limits
from .app import create_app

__all__ = ["Limits", "create_app"]
