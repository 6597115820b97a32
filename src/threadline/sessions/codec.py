"""Item codecs: how a store turns items into stored payloads and back.

An item is checked and serialised to compact JSON *before* a backend opens its write
transaction, so a bad batch is refused with nothing written. Alongside the payload each item
carries the facts a window read needs without decoding it: a kind (user message, function
call, function call output, other), the call id and an estimated token count. These are
derived from the plaintext item, once, at write time. :func:`search_text` is the text a search
index holds for an item.

The payload itself is the store's :class:`ItemCodec`'s business. :class:`JsonCodec` (the
default) stores the compact JSON as it is, which lets a backend decode many rows in one
``json.loads`` call; another codec (encryption at rest) seals each payload and opens it again
on read, and may keep the search text out of the store.
"""

from __future__ import annotations

import gc
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol, overload, runtime_checkable

from ..errors import CorruptItemError, UserError
from ..items import (
    Item,
    encode_item,
    is_user_message,
    lone_surrogate,
    message_text,
    validate_items,
)

__all__ = [
    "KIND_CALL",
    "KIND_OTHER",
    "KIND_OUTPUT",
    "KIND_USER",
    "RECORD_KEY_LIMIT",
    "RECORD_SIZE_LIMIT",
    "ROW_SEPARATOR",
    "EncodedItem",
    "EncodedRows",
    "ItemCodec",
    "JsonCodec",
    "check_count",
    "check_record_key",
    "check_session_id",
    "decode_item",
    "decode_joined",
    "decode_payload",
    "decode_problem",
    "decode_record",
    "encode_items",
    "encode_record",
    "estimate_token_counts",
    "estimate_tokens",
    "gc_paused",
    "item_kind",
    "search_text",
    "share_common_values",
]

KIND_OTHER = 0
KIND_USER = 1
KIND_CALL = 2
KIND_OUTPUT = 3

_CHARS_PER_TOKEN = 4


class EncodedItem(NamedTuple):
    """One validated item ready to store: its payload and the facts a window needs.

    ``data`` is the item's compact JSON, or the payload a codec sealed it into.
    """

    data: str | bytes
    kind: int
    call_id: str | None
    tokens: int


class EncodedRows(Sequence[EncodedItem]):
    """A batch of encoded items kept as four columns instead of one tuple per item.

    It is a sequence of :class:`EncodedItem` (built on access) for any backend; a backend
    that writes rows in bulk may read the columns directly (``data``, ``kinds``, ``call_ids``,
    ``tokens``, all of the same length) and skip the per-item tuples. A bulk import makes
    one.
    """

    __slots__ = ("call_ids", "data", "kinds", "tokens")

    def __init__(
        self,
        data: list[str | bytes],
        kinds: list[int],
        call_ids: list[str | None],
        tokens: list[int],
    ) -> None:
        if not len(data) == len(kinds) == len(call_ids) == len(tokens):
            raise ValueError("the columns of EncodedRows must have the same length")
        self.data, self.kinds, self.call_ids, self.tokens = data, kinds, call_ids, tokens

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, index: int) -> EncodedItem: ...

    @overload
    def __getitem__(self, index: slice) -> list[EncodedItem]: ...

    def __getitem__(self, index: int | slice) -> EncodedItem | list[EncodedItem]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return EncodedItem(
            self.data[index], self.kinds[index], self.call_ids[index], self.tokens[index]
        )

    def __iter__(self) -> Iterator[EncodedItem]:
        return map(EncodedItem, self.data, self.kinds, self.call_ids, self.tokens)

    def __repr__(self) -> str:
        return f"EncodedRows({len(self)} rows)"


@runtime_checkable
class ItemCodec(Protocol):
    """How a store seals an item's JSON into a stored payload and opens it again.

    * ``name`` — a short identifier (``"json"``).
    * ``plain_json`` — payloads *are* the items' JSON texts, so a backend may join many and
      decode them at once; when ``False`` every payload goes through :meth:`open`.
    * ``searchable`` — the store may keep a search index of the items' text; when ``False``
      nothing of the text is indexed and the store does not offer ``search``.

    :meth:`seal` runs before the write transaction; :meth:`open` raises ``ValueError`` (with
    the reason) for a payload it cannot open, which the store reports as a corrupt item.
    """

    name: str
    plain_json: bool
    searchable: bool

    def seal(self, session_id: str, data: str) -> str | bytes:
        """The payload to store for one item's compact JSON ``data``."""
        ...

    def open(self, session_id: str, payload: str | bytes) -> str:
        """The compact JSON stored as ``payload`` (raise ``ValueError`` if it cannot be)."""
        ...


class JsonCodec:
    """The default codec: the payload is the item's compact JSON, searchable as it is."""

    name: str = "json"
    plain_json: bool = True
    searchable: bool = True

    def seal(self, session_id: str, data: str) -> str:
        """``data`` unchanged."""
        return data

    def open(self, session_id: str, payload: str | bytes) -> str:
        """``payload`` as text (bytes must be UTF-8)."""
        if isinstance(payload, (bytes, bytearray)):
            return bytes(payload).decode("utf-8")
        return payload

    def __repr__(self) -> str:
        return "JsonCodec()"


def search_text(item: Item) -> str | None:
    """The text of ``item`` a search index holds: a message's text, a tool call's name and
    arguments, a tool output, a reasoning summary; ``None`` when there is nothing to index."""
    item_type = item.get("type")
    if item_type == "function_call":
        text = f"{item.get('name', '')} {item.get('arguments', '')}"
    elif item_type == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    elif item_type == "reasoning":
        parts = item.get("summary")
        text = " ".join(
            part.get("text", "") if isinstance(part, dict) else str(part)
            for part in (parts if isinstance(parts, list) else [])
        )
    else:
        text = message_text(item)
    text = text.strip()
    return text or None


def estimate_tokens(data: str | Item) -> int:
    """A cheap token estimate for one item: about one token per four characters of JSON.

    It is computed once, when the item is written, and stored with it; every backend must use
    this function so that ``get_window(max_tokens=...)`` selects the same items everywhere.
    """
    text = data if isinstance(data, str) else encode_item(data)
    return max(1, -(-len(text) // _CHARS_PER_TOKEN))


def estimate_token_counts(texts: Sequence[str]) -> list[int]:
    """:func:`estimate_tokens` of each of many JSON texts (one pass, for a bulk import)."""
    per = _CHARS_PER_TOKEN
    return [max(1, -(-size // per)) for size in map(len, texts)]


def item_kind(item: Item) -> tuple[int, str | None]:
    """The kind of a validated item (``KIND_*``) and its call id (``None`` unless it is a
    function call or a function call output): what a store keeps beside the payload."""
    item_type = item.get("type")
    if item_type == "function_call":
        return KIND_CALL, item["call_id"]
    if item_type == "function_call_output":
        return KIND_OUTPUT, item["call_id"]
    if is_user_message(item):
        return KIND_USER, None
    return KIND_OTHER, None


def encode_items(
    items: object,
    codec: ItemCodec | None = None,
    session_id: str = "",
    *,
    validated: bool = False,
) -> list[EncodedItem]:
    """Validate and serialise a batch, or raise :class:`UserError` naming the first bad item.

    With a ``codec`` other than plain JSON each payload is sealed by it (for ``session_id``).
    ``validated=True``: the caller already checked every item (``validate_item``).
    """
    checked: list[Item] = items if validated else validate_items(items)  # type: ignore[assignment]
    encoded = []
    plain = codec is None or codec.plain_json
    for index, item in enumerate(checked):
        data = encode_item(item, index)
        kind, call_id = item_kind(item)
        payload: str | bytes = data if plain or codec is None else codec.seal(session_id, data)
        encoded.append(EncodedItem(payload, kind, call_id, estimate_tokens(data)))
    return encoded


def check_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is a non-empty string of valid Unicode, else raise
    :class:`UserError` (a lone surrogate such as ``"\\ud800"`` cannot be stored as UTF-8, so
    every backend refuses it, including the in-memory one)."""
    if not isinstance(session_id, str):
        raise UserError(f"session_id must be a non-empty string, got {type(session_id).__name__}")
    if not session_id:
        raise UserError("session_id must be a non-empty string, got ''")
    bad = lone_surrogate(session_id)
    if bad is not None:
        raise UserError(
            f"session_id must be valid Unicode text: it holds a lone surrogate "
            f"{session_id[bad[0] : bad[1]]!r} at position {bad[0]}"
        )
    return session_id


def check_count(value: object, name: str) -> int | None:
    """Return ``value`` if it is ``None`` or an integer >= 0, else raise :class:`UserError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be None or an integer >= 0, got {value!r}")
    if value < 0:
        raise UserError(f"{name} must be None or an integer >= 0, got {value}")
    return value


def decode_problem(data: object) -> tuple[Item | None, str]:
    """Decode one stored row: ``(item, "")``, or ``(None, why it is corrupt)``."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 text: {exc}"
    if not isinstance(data, str):
        return None, f"stored as {type(data).__name__}, not text"
    try:
        item = json.loads(data)
    except ValueError as exc:
        return None, f"invalid JSON: {exc}"
    except RecursionError:
        return None, "JSON nested too deeply to decode"
    if not isinstance(item, dict):
        return None, f"a JSON {type(item).__name__}, not an object"
    return item, ""


def decode_payload(codec: ItemCodec, session_id: str, payload: object) -> tuple[Item | None, str]:
    """Open and decode one stored payload: ``(item, "")``, or ``(None, why it is corrupt)``."""
    if codec.plain_json:
        return decode_problem(payload)
    if not isinstance(payload, (str, bytes, bytearray)):
        return None, f"stored as {type(payload).__name__}, not a payload"
    try:
        data = codec.open(session_id, bytes(payload) if isinstance(payload, bytearray) else payload)
    except ValueError as exc:
        return None, f"the {codec.name} codec cannot open it: {exc}"
    return decode_problem(data)


def decode_item(data: object, session_id: str, position: int | str) -> Item:
    """Decode one stored row, or raise :class:`CorruptItemError` naming where it sits."""
    item, problem = decode_problem(data)
    if item is None:
        raise CorruptItemError(session_id, position, problem)
    return item


ROW_SEPARATOR = ',"' + secrets.token_hex(8) + '",'
"""What a backend puts between the JSON texts it hands to :func:`decode_joined`.

A string token holding a per-process random mark: no stored row can know it, so a row can
neither forge nor hide a boundary between rows (see :func:`decode_joined`).
"""
_MARK = ROW_SEPARATOR[2:-2]


def decode_joined(
    joined: str, count: int, parse_constant: Callable[[str], Any] | None = None
) -> list[Any] | None:
    """Decode ``count`` JSON texts joined with :data:`ROW_SEPARATOR` in one ``json.loads``
    (``parse_constant`` is passed on: an import refuses ``NaN`` with it).

    One call lets the decoder share one string object per distinct key across the whole
    chunk, which saves both time and memory. Returns ``None`` unless every row is exactly one
    JSON object; the caller then decodes row by row (and names the corrupt row), so both
    paths always agree. The check is sound: the text must decode to an object, the mark, an
    object, ... with the mark exactly ``count - 1`` times at the top level. A mark can only
    come from a separator (no row holds the random mark), and a separator swallowed by a
    row's unclosed string or container yields no top-level mark, so every separator was read
    at the top level and each row's text was one whole object on its own.
    """
    try:
        values = json.loads("[" + joined + "]", parse_constant=parse_constant)
    except (ValueError, RecursionError):
        return None
    if values.__class__ is not list or len(values) != 2 * count - 1:
        return None
    if count > 1:
        if values[1::2].count(_MARK) != count - 1:
            return None
        values = values[0::2]
    for value in values:
        if value.__class__ is not dict:
            return None
    return values


def share_common_values(items: list[Any], memo: dict[str, str]) -> None:
    """Make equal ``type``/``role``/``status`` strings one object across many decoded items.

    The JSON decoder already shares key strings within one call but allocates every value
    anew; in a long history the same few values ("message", "assistant", "output_text", ...)
    repeat on every item, so sharing them cuts the memory a full read needs by a sixth or so.
    """
    share = memo.setdefault
    for item in items:
        for key in ("type", "role", "status"):
            value = item.get(key)
            if value.__class__ is str:
                item[key] = share(value, value)
        content = item.get("content")
        if content.__class__ is list:
            for part in content:
                if part.__class__ is dict:
                    value = part.get("type")
                    if value.__class__ is str:
                        part["type"] = share(value, value)


@contextmanager
def gc_paused(enabled: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector while decoding a large history.

    Decoding creates many container objects at once, which makes the collector run over and
    over for nothing (decoded JSON holds no reference cycles). Only re-enables it if it was
    enabled on entry.
    """
    if not enabled or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ---------------------------------------------------------------------- session records

RECORD_KEY_LIMIT = 200
"""The longest record key, in characters."""

RECORD_SIZE_LIMIT = 1 << 20
"""The largest record value, in bytes of compact JSON."""


def check_record_key(key: object) -> str:
    """Return ``key`` if it names a record (a non-empty string of at most
    :data:`RECORD_KEY_LIMIT` printable characters), else raise :class:`UserError`."""
    if not isinstance(key, str):
        raise UserError(f"a record key must be a string, got {type(key).__name__}")
    if not key or len(key) > RECORD_KEY_LIMIT or not key.isprintable():
        raise UserError(
            f"a record key must be 1 to {RECORD_KEY_LIMIT} printable characters, got {key!r}"
        )
    if lone_surrogate(key) is not None:
        raise UserError(f"a record key must be valid Unicode text, got {key!r}")
    return key


def encode_record(codec: ItemCodec, session_id: str, key: str, value: object) -> str | bytes:
    """The stored payload of one record, or :class:`UserError` when ``value`` is not JSON.

    The payload holds the key beside the value (``{"k": key, "v": value}``) and goes through
    the codec like an item, so a sealed record cannot be moved to another key or session
    unnoticed.
    """
    try:
        data = json.dumps(
            {"k": key, "v": value}, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserError(f"record {key!r} of session {session_id!r} is not JSON ({exc})") from None
    if lone_surrogate(data) is not None:
        raise UserError(f"record {key!r} of session {session_id!r} holds a lone surrogate")
    size = len(data.encode("utf-8"))
    if size > RECORD_SIZE_LIMIT:
        raise UserError(
            f"record {key!r} of session {session_id!r} is {size} bytes of JSON, more than the "
            f"{RECORD_SIZE_LIMIT} a record holds: store less in it"
        )
    return data if codec.plain_json else codec.seal(session_id, data)


def decode_record(codec: ItemCodec, session_id: str, key: str, payload: str | bytes) -> Any:
    """The value of the record stored as ``payload`` under ``key``.

    Raises :class:`CorruptItemError` (position ``the record 'key'``) when the payload cannot be
    opened or was stored under another key.
    """
    try:
        envelope = json.loads(codec.open(session_id, payload))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptItemError(
            session_id, f"the record {key!r}", str(exc) or type(exc).__name__
        ) from None
    if not isinstance(envelope, dict) or envelope.get("k") != key or "v" not in envelope:
        raise CorruptItemError(
            session_id, f"the record {key!r}", "it was not stored under this key"
        )
    return envelope["v"]
