"""Session metadata: a small JSON object per session, its title, and listing by metadata.

The metadata lives in the session record ``"metadata"`` (so it is sealed by the store's
codec, removed with the session and written under the caller's lease fence like any record).
:class:`MetadataMixin` gives the session handle ``get_metadata`` / ``set_metadata`` /
``update_metadata`` / ``title``; :func:`list_with_metadata` is what ``store.list_sessions``
runs when it is asked to filter by metadata or to return it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..items import Item, is_user_message, lone_surrogate, message_text
from .codec import decode_record

if TYPE_CHECKING:
    from .backend import Payload, StoreBackend
    from .base import SessionInfo
    from .codec import ItemCodec

__all__ = [
    "METADATA_KEY",
    "METADATA_SIZE_LIMIT",
    "TITLE_LENGTH",
    "MetadataMixin",
    "check_metadata",
    "check_metadata_filter",
    "derive_title",
    "list_with_metadata",
]

METADATA_KEY = "metadata"
"""The session record that holds a session's metadata."""

METADATA_SIZE_LIMIT = 16 * 1024
"""The largest metadata object, in bytes of compact JSON (UTF-8)."""

TITLE_LENGTH = 80
"""The longest title derived from a session's first user message, in characters."""

_TITLE_SCAN = 50
"""How many of the oldest items a derived title looks through for the first user message."""


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def check_metadata(value: object, session_id: str) -> dict[str, Any]:
    """``value`` as a session's metadata, or :class:`UserError` saying what is wrong.

    Metadata is a JSON object (a dict with string keys) of at most
    :data:`METADATA_SIZE_LIMIT` bytes of compact JSON; a ``"title"`` entry, when present, is
    a string.
    """
    if not isinstance(value, Mapping):
        raise UserError(
            f"metadata of session {session_id!r} must be a dict (a JSON object), "
            f"got {type(value).__name__}"
        )
    value = dict(value)
    for key in value:
        if not isinstance(key, str):
            raise UserError(
                f"metadata of session {session_id!r} has a key that is not a string: {key!r}"
            )
    title = value.get("title")
    if title is not None and not isinstance(title, str):
        raise UserError(
            f"metadata 'title' of session {session_id!r} must be a string, "
            f"got {type(title).__name__}"
        )
    try:
        text = _compact(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserError(f"metadata of session {session_id!r} is not JSON ({exc})") from None
    if lone_surrogate(text) is not None:
        raise UserError(f"metadata of session {session_id!r} holds a lone surrogate")
    size = len(text.encode("utf-8"))
    if size > METADATA_SIZE_LIMIT:
        raise UserError(
            f"metadata of session {session_id!r} is {size} bytes of JSON, more than the "
            f"{METADATA_SIZE_LIMIT} bytes metadata may hold: keep large data in a record "
            "(put_records) or in your own storage"
        )
    result: dict[str, Any] = json.loads(text)  # a deep copy, exactly as it will read back
    return result


def check_metadata_filter(wanted: object) -> dict[str, str]:
    """``wanted`` as ``{key: canonical JSON of the value}``, or :class:`UserError`."""
    if not isinstance(wanted, Mapping):
        raise UserError(
            f"metadata= must be a dict of key to value to match, got {type(wanted).__name__}"
        )
    canonical = {}
    for key, value in wanted.items():
        if not isinstance(key, str):
            raise UserError(f"metadata= keys must be strings, got {key!r}")
        try:
            canonical[key] = _canonical(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise UserError(f"metadata= value of {key!r} is not JSON ({exc})") from None
    return canonical


def _canonical(value: object) -> str:
    # Key order does not matter, and 1, 1.0 and True stay different values.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def derive_title(items: list[Item], length: int = TITLE_LENGTH) -> str | None:
    """The title a session without a ``"title"`` in its metadata gets: the text of its first
    user message on one line, cut at a word boundary to at most ``length`` characters (with
    ``…`` when cut); ``None`` when no user message has text."""
    for item in items:
        if not is_user_message(item):
            continue
        text = " ".join(message_text(item).split())
        if not text:
            continue
        if len(text) <= length:
            return text
        cut = text[: length - 1]
        space = cut.rfind(" ")
        if space >= length // 2:
            cut = cut[:space]
        return cut.rstrip() + "…"
    return None


class MetadataMixin:
    """The metadata methods of :class:`~threadline.sessions.StoreSession`."""

    if TYPE_CHECKING:
        session_id: str
        store: Any

        async def get_record(self, key: str) -> Any: ...

        async def put_records(self, records: Mapping[str, Any]) -> None: ...

        def _records_store(self) -> Any: ...

    async def get_metadata(self) -> dict[str, Any]:
        """The session's metadata: a JSON object, ``{}`` when none was set."""
        value = await self.get_record(METADATA_KEY)
        return value if isinstance(value, dict) else {}

    async def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Replace the session's metadata with ``metadata`` (``{}`` removes it).

        A JSON object of at most :data:`METADATA_SIZE_LIMIT` (16 KiB) of compact JSON; a
        ``"title"`` entry must be a string. Anything else is a
        :class:`~threadline.errors.UserError` and nothing is written. Under a lease the write
        carries its fence. Setting metadata on a session that does not exist creates it.
        """
        checked = check_metadata(metadata, self.session_id)
        await self.put_records({METADATA_KEY: checked or None})

    async def update_metadata(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the metadata (a ``None`` value removes its key); returns
        the new metadata.

        A read then a write: two writers updating one session at once may lose one's
        change, unless both hold the session's writer lease (``async with
        session.lease()``).
        """
        if not isinstance(changes, Mapping):
            raise UserError(
                f"metadata changes must be a dict of key to value, got {type(changes).__name__}"
            )
        merged = await self.get_metadata()
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        checked = check_metadata(merged, self.session_id)
        await self.put_records({METADATA_KEY: checked or None})
        return checked

    async def title(self) -> str | None:
        """The metadata's ``"title"``, else one derived from the first user message (its text
        on one line, at most :data:`TITLE_LENGTH` characters; derived each time, never
        stored); ``None`` when there is neither."""
        title = (await self.get_metadata()).get("title")
        if isinstance(title, str) and title:
            return title
        store = self._records_store()
        items = await store._backend.read_oldest(self.session_id, _TITLE_SCAN)
        return derive_title(items)


async def list_with_metadata(
    backend: StoreBackend,
    codec: ItemCodec,
    limit: int | None,
    after: str | None,
    wanted: dict[str, str] | None,
) -> tuple[list[SessionInfo], str | None]:
    """A listing page with each session's metadata (and title), keeping only the sessions
    whose metadata holds every ``wanted`` pair (all when ``None``).

    The metadata is opened with the store's codec before it is compared, so filtering works
    the same with an encrypting codec (the store cannot filter what it cannot read).
    """

    def select(session_id: str, payload: Payload | None) -> dict[str, Any] | None:
        if payload is None:
            metadata: dict[str, Any] = {}
        else:
            value = decode_record(codec, session_id, METADATA_KEY, payload)
            metadata = value if isinstance(value, dict) else {}
        if wanted:
            for key, value in wanted.items():
                if key not in metadata or _canonical(metadata[key]) != value:
                    return None
        return metadata

    found, cursor = await backend.list_sessions_with_record(limit, after, METADATA_KEY, select)
    infos = []
    for info, metadata in found:
        title = metadata.get("title")
        infos.append(
            dataclasses.replace(
                info, metadata=metadata, title=title if isinstance(title, str) else None
            )
        )
    return infos, cursor
