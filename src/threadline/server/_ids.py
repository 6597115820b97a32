"""The ids the server hands out: conversations, items, responses, response chains.

* A conversation id is ``conv_`` + 32 hex digits when the server makes one; any session id of
  the store is a conversation id too (a session the library wrote is listed and read as is).
* An item's id is its own ``"id"`` field; the server stamps one (``msg_…``, ``fco_…``,
  ``item_…``) on every item it writes without one. An item written elsewhere without an
  ``"id"`` gets a *derived* id: a digest of the item's JSON plus, when equal items came before
  it, how many (``msg_9c1f…_2``) — stable while the item stays, whatever is deleted before it.
* A response id is ``resp_`` + 24 random hex digits + the base64url of the conversation id it
  is stored in, so a response finds its session without an index, and another tenant's
  response id decodes to a conversation that tenant cannot see (404).
* A response made without a conversation is stored in a hidden *response chain* session,
  ``responses~`` + 32 hex digits, never listed or served as a conversation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Iterable, Iterator

from ..items import Item, encode_item

__all__ = [
    "CHAIN_PREFIX",
    "decode_response_id",
    "derived_ids",
    "is_chain",
    "item_id_of",
    "new_chain_id",
    "new_conversation_id",
    "new_id",
    "new_response_id",
    "stamp_id",
    "with_ids",
]

CHAIN_PREFIX = "responses~"
"""The id prefix of the hidden sessions that hold responses made without a conversation."""

_RESPONSE_RANDOM = 24


def new_id(prefix: str) -> str:
    """A fresh id: ``prefix`` + ``_`` + 32 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex}"


def new_conversation_id() -> str:
    """A fresh conversation id (``conv_…``)."""
    return new_id("conv")


def new_chain_id() -> str:
    """A fresh response chain session id (visible part; the tenant prefix is added later)."""
    return CHAIN_PREFIX + uuid.uuid4().hex


def is_chain(visible_id: str) -> bool:
    """Whether ``visible_id`` names a hidden response chain (not a conversation)."""
    return visible_id.startswith(CHAIN_PREFIX)


def new_response_id(visible_session_id: str) -> str:
    """A fresh response id that names the (visible) session the response is stored in."""
    encoded = base64.urlsafe_b64encode(visible_session_id.encode("utf-8")).decode("ascii")
    return f"resp_{uuid.uuid4().hex[:_RESPONSE_RANDOM]}{encoded.rstrip('=')}"


def decode_response_id(response_id: str) -> str | None:
    """The visible session id a response id names, or ``None`` when it is no id of ours."""
    if not response_id.startswith("resp_"):
        return None
    encoded = response_id[5 + _RESPONSE_RANDOM :]
    if not encoded or len(response_id) > 2000:
        return None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return raw.decode("utf-8") or None
    except (binascii.Error, ValueError):
        return None


def _prefix_for(item: Item) -> str:
    kind = item.get("type")
    if kind in (None, "message"):
        return "msg"
    if kind == "function_call":
        return "fc"
    if kind == "function_call_output":
        return "fco"
    if kind == "reasoning":
        return "rs"
    return "item"


def stamp_id(item: Item) -> Item:
    """Give ``item`` a fresh ``"id"`` unless it has one (changes it in place; returns it)."""
    if not (isinstance(item.get("id"), str) and item["id"]):
        item["id"] = new_id(_prefix_for(item))
    return item


def item_id_of(item: Item) -> str | None:
    """The item's own id, or ``None`` when it has none."""
    value = item.get("id")
    return value if isinstance(value, str) and value else None


def derived_ids(items: Iterable[Item]) -> Iterator[str]:
    """Each item's id: its own, else one derived from its JSON and its equal predecessors."""
    seen: dict[str, int] = {}
    for item in items:
        own = item_id_of(item)
        if own is not None:
            yield own
            continue
        digest = hashlib.sha256(encode_item(item).encode("utf-8")).hexdigest()[:24]
        count = seen.get(digest, 0)
        seen[digest] = count + 1
        base = f"{_prefix_for(item)}_{digest}"
        yield base if count == 0 else f"{base}_{count}"


def with_ids(items: list[Item]) -> list[tuple[str, Item]]:
    """``(id, item)`` for each item (see :func:`derived_ids`)."""
    return list(zip(derived_ids(items), items, strict=True))
