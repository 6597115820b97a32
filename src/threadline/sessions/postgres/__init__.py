"""The PostgreSQL store (``pip install 'threadline[postgres]'``): see :mod:`.store`."""

from .store import PostgresSession, PostgresStore

__all__ = ["PostgresSession", "PostgresStore"]
