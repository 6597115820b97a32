"""The PostgreSQL store (the ``postgres`` extra: ``pip install -e '.[postgres]'`` in a checkout): see :mod:`.store`."""

from .store import PostgresSession, PostgresStore

__all__ = ["PostgresSession", "PostgresStore"]
