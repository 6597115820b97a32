"""Key names: one key family per session, all sharing one Redis Cluster hash tag.

A session's keys are ``<prefix>{<id>}:<part>``. Redis Cluster hashes only the text between
the first ``{`` and the next ``}`` of a key, so the whole family lands on one slot, and every
script touches one slot. The id is written with ``%``, ``{`` and ``}`` percent-encoded, so the
hash tag is always the whole id whatever it holds (``"a}b"`` cannot end the tag early), and two
ids never share a key. The prefix may not hold a brace (it would start the tag itself).

Parts: ``d`` the item payloads (a list, oldest first), ``m`` the facts a window needs, one per
item (a parallel list of ``"<kind><tokens>:<call id>"``), ``h`` the session hash (created and
updated times in microseconds, a write version ``v``), ``b`` the ids of the latest writes (so a
retried write is not applied twice), ``l`` the writer lease (``"<epoch> <owner>"``, with a
PX expiry), ``e`` the lease epoch counter, ``r`` the session's records (a hash of record key
to payload), ``x`` the id of the delete that removed the session (kept for ten minutes, so a
delete retried after a dropped connection knows it was its own). Store-wide keys have no hash tag:
``<prefix>index`` (a sorted set of session ids by last write) and ``<prefix>schema``.
"""

from __future__ import annotations

from ...errors import UserError

__all__ = ["SessionKeys", "check_prefix", "encode_id", "meta_entry"]

PARTS = ("d", "m", "h", "l", "b", "e", "r", "x")


def check_prefix(prefix: object) -> str:
    """``prefix`` if it is usable as a key prefix, else :class:`UserError`."""
    if not isinstance(prefix, str) or not prefix:
        raise UserError(f"a Redis key prefix must be a non-empty string, got {prefix!r}")
    if "{" in prefix or "}" in prefix:
        raise UserError(
            f"a Redis key prefix may not hold '{{' or '}}' (it would change the cluster hash "
            f"tag of every key), got {prefix!r}"
        )
    return prefix


def encode_id(session_id: str) -> str:
    """The session id as it appears inside the hash tag (``%``, ``{``, ``}`` escaped)."""
    return session_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


class SessionKeys:
    """The key names of one session (see the module docstring)."""

    __slots__ = ("b", "d", "e", "h", "l", "m", "r", "x")

    def __init__(self, prefix: str, session_id: str) -> None:
        base = f"{prefix}{{{encode_id(session_id)}}}:"
        self.d = base + "d"
        self.m = base + "m"
        self.h = base + "h"
        self.l = base + "l"
        self.b = base + "b"
        self.e = base + "e"
        self.r = base + "r"
        self.x = base + "x"

    def writes(self) -> list[str]:
        """The keys of a write script, in the order the scripts expect."""
        return [self.d, self.m, self.h, self.l, self.b, self.e, self.r]


def meta_entry(kind: int, tokens: int, call_id: str | None) -> str:
    """One item's window facts as the ``m`` list stores them."""
    return f"{kind}{tokens}:{call_id or ''}"
