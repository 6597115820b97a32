"""Moving a session between stores: the versioned JSON lines export format.

A file is UTF-8 text, one JSON value per line. The first line is the header::

    {"format": "threadline.session", "version": 1, "session_id": "user_123",
     "exported_at": "2026-12-02T00:00:00+00:00", "item_count": 2,
     "metadata": {"title": "Trip to SF"}, "records": {"origin": {...}, "usage": {...}}}

then one item a line, oldest first, exactly as ``get_items()`` returns them. ``metadata`` is
the session's metadata (``{}`` when none) and ``records`` every other session record
(usage, a fork's origin, compaction summaries) by key. A reader refuses a ``version`` it does
not know. :func:`import_jsonl` also reads the older plain format (items only, no header).

Export reads the session once (one snapshot of the items) and writes a path through a
temporary file renamed into place, so a failed export leaves no partial file. Import parses
and checks every line before it writes anything, so a bad line in the middle writes nothing
and names its line number; the write itself is one transaction (``mode="refuse"`` or
``"append"``) or two under the session's writer lease (``"replace"``: the items, then the
records).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import operator
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from ..errors import UserError
from ..items import MAX_DEPTH, Item, encode_item, pairing_problem, validate_item
from ._metadata import METADATA_KEY, check_metadata
from .codec import (
    KIND_OTHER,
    KIND_USER,
    ROW_SEPARATOR,
    EncodedRows,
    check_record_key,
    check_session_id,
    decode_joined,
    encode_record,
    estimate_token_counts,
    gc_paused,
    item_kind,
)

if TYPE_CHECKING:
    from ._base_store import Store
    from .codec import ItemCodec

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ImportResult",
    "TransferMixin",
    "export_jsonl",
    "import_jsonl",
]

EXPORT_FORMAT = "threadline.session"
"""The ``format`` of an export file's header."""

EXPORT_VERSION = 1
"""The version of the export format this threadline writes (and the newest it reads)."""

ImportMode = Literal["refuse", "append", "replace"]
_MODES = ("refuse", "append", "replace")
_CHUNK = 2000
_DECODE_CHUNK = 1000
"""Lines decoded by one ``json.loads`` (a chunk small enough to stay in the CPU caches)."""
_GC_PAUSE_ABOVE = 1 << 20
"""Bytes of file above which decoding runs with the cyclic garbage collector paused."""


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_jsonl` wrote: the session, how many items and records, the mode,
    and the file's format version (``0`` for the old plain format without a header)."""

    session_id: str
    items: int
    records: int
    mode: str
    version: int


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _name(target: object) -> str:
    if isinstance(target, (str, os.PathLike)):
        return str(target)
    return str(getattr(target, "name", "the file"))


# ---------------------------------------------------------------------- export


async def export_jsonl(
    store: Store, session_id: str, target: str | os.PathLike[str] | IO[str]
) -> int:
    """Write the session ``session_id`` of ``store`` to ``target`` (a path, or a text file
    open for writing) in the export format; returns how many items it wrote.

    A session the store does not hold is a :class:`~threadline.errors.UserError`.
    """
    session_id = check_session_id(session_id)
    store._check_open()
    info = await store._backend.session_info(session_id)
    if info is None:
        raise UserError(
            f"no session {session_id!r} in the session store {store._backend.where}: nothing to "
            "export"
        )
    session = store.session(session_id)
    items = await store._backend.read_json(session_id)
    records: dict[str, Any] = (
        await session.list_records() if "records" in store.capabilities else {}
    )
    metadata = records.pop(METADATA_KEY, None)
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "session_id": session_id,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "item_count": len(items),
        "metadata": metadata if isinstance(metadata, dict) else {},
        "records": records,
    }
    await asyncio.to_thread(_write, target, header, items)
    return len(items)


def _lines(header: dict[str, Any], texts: list[str]) -> Iterator[str]:
    yield _dump(header) + "\n"
    for start in range(0, len(texts), _CHUNK):
        yield "\n".join(texts[start : start + _CHUNK]) + "\n"


def _write(
    target: str | os.PathLike[str] | IO[str], header: dict[str, Any], texts: list[str]
) -> None:
    if not isinstance(target, (str, os.PathLike)):
        if not callable(getattr(target, "write", None)):
            raise UserError(
                f"export target must be a path or a text file open for writing, got "
                f"{type(target).__name__}"
            )
        for text in _lines(header, texts):
            target.write(text)
        return
    path = Path(target).expanduser()
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else "."
        )
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            for text in _lines(header, texts):
                out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


# ---------------------------------------------------------------------- import


@dataclass
class _Parsed:
    version: int
    session_id: str | None
    metadata: dict[str, Any]
    records: dict[str, Any]
    lines: Sequence[int] = ()
    """The line number of each item."""
    texts: list[str] = dataclasses.field(default_factory=list)
    """The JSON text each item is stored as: its line's text (checked), or its compact JSON."""
    kinds: list[int] = dataclasses.field(default_factory=list)
    call_ids: list[str | None] = dataclasses.field(default_factory=list)
    problem: str | None = None
    """Why the items are no history valid to send (a call without its output), if they are not."""


def _read_text(source: str | os.PathLike[str] | IO[str]) -> tuple[bytes | str, str]:
    name = _name(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise UserError(f"no such file: {path}")
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    read = getattr(source, "read", None)
    if not callable(read):
        raise UserError(
            f"import source must be a path or a file open for reading, got {type(source).__name__}"
        )
    data = read()
    if not isinstance(data, (str, bytes)):
        raise UserError(f"reading {name} gave {type(data).__name__}, not text")
    return data, name


def _utf8(data: bytes | str, name: str) -> tuple[bytes, str]:
    """The file as UTF-8 bytes and as text, or a :class:`UserError` naming the bad line."""
    if isinstance(data, str):
        try:
            return data.encode("utf-8"), data
        except UnicodeEncodeError as exc:
            number = data.count("\n", 0, exc.start) + 1
            raise UserError(
                f"{name}:{number} is not valid Unicode (a lone surrogate "
                f"{data[exc.start : exc.end]!r}); nothing was imported"
            ) from None
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(
            f"{name}:{number} is not UTF-8 text (byte {data[exc.start]:#04x} at column "
            f"{column}); export files are JSON lines in UTF-8; nothing was imported"
        ) from None


def _parse(data: bytes | str, name: str) -> _Parsed:
    """Every line checked, nothing written: the header (if any) and the items' rows."""
    blob, text = _utf8(data, name)
    # Split on line feeds only: str.splitlines would also split inside a JSON string that
    # holds U+2028 or another Unicode line separator.
    parsed = _Parsed(0, None, {}, {})
    raw = text.split("\n")
    if raw and not raw[-1]:
        raw.pop()  # the line feed that ends the last line
    start = next((i for i, line in enumerate(raw) if line and not line.isspace()), len(raw))
    if start < len(raw):
        value = _load_line(raw[start], name, start + 1)
        if isinstance(value, dict) and "format" in value:
            _header(parsed, value, name, start + 1)
            start += 1
    texts = raw[start:]
    del raw
    numbers: Sequence[int] = range(start + 1, start + 1 + len(texts))
    redo: set[int] = set()  # items stored as their own compact JSON, not as their line's text
    if not _braced(texts):
        # Blank lines, or lines with spaces around the object (or no object at all).
        kept = [(number, line) for number, line in zip(numbers, texts, strict=True) if line.strip()]
        numbers = [number for number, _ in kept]
        texts = [line for _, line in kept]
        redo.update(i for i, line in enumerate(texts) if line[0] != "{" or line[-1] != "}")
    # An escape may hide a lone surrogate, and a carriage return is padding: such lines are
    # stored as their item's compact JSON (which also refuses a lone surrogate).
    if b"\r" in blob:
        redo.update(i for i, line in enumerate(texts) if "\r" in line)
    if b"\\" in blob and b"\\u" in blob:
        redo.update(i for i, line in enumerate(texts) if "\\u" in line)
    deep_lines = _deep_lines(blob, numbers[0] if numbers else 1)
    deep = {i for i, number in enumerate(numbers) if number in deep_lines} if deep_lines else set()
    parsed.lines, parsed.texts = numbers, texts
    parsed.problem = _check_items(parsed, name, redo, deep)
    return parsed


def _braced(texts: list[str]) -> bool:
    """Whether every line starts with ``{`` and ends with ``}`` (as export writes them)."""
    try:
        return set(map(_first, texts)) <= {"{"} and set(map(_last, texts)) <= {"}"}
    except IndexError:  # an empty line
        return False


_first = operator.itemgetter(0)
_last = operator.itemgetter(-1)
_NOT_OPENING = bytes(byte for byte in range(256) if byte not in b"{[\n")
_MANY_OPENINGS = re.compile(b"[^\n]{%d}" % (MAX_DEPTH + 1))


def _deep_lines(blob: bytes, first: int) -> set[int]:
    """The numbers (from ``first`` on) of the lines that may nest deeper than
    :data:`MAX_DEPTH`: those holding more than that many ``{`` and ``[`` (inside strings or
    not), which every deeper line does. Usually none, found in one pass over the bytes."""
    openings = blob.translate(None, _NOT_OPENING)
    if _MANY_OPENINGS.search(openings) is None:
        return set()
    return {
        number
        for number, line in enumerate(openings.split(b"\n"), 1)
        if number >= first and len(line) > MAX_DEPTH
    }


def _check_items(parsed: _Parsed, name: str, redo: set[int], deep: set[int]) -> str | None:
    """Decode and check every item line, keeping each item's kind and call id (the decoded
    items themselves are dropped chunk by chunk); returns the pairing problem, if any.

    Items are checked as ``add_items`` checks them (:func:`validate_item`); a message
    (``type`` ``"message"`` or none, ``role`` a string or none) passes those checks by
    its shape alone, so it skips the call. Lines that need more (``deep``: the walk over
    the values; ``redo``: re-encoding) always take the full path.
    """
    texts, numbers = parsed.texts, parsed.lines
    kinds: list[int] = []
    call_ids: list[str | None] = []
    others: list[tuple[int, Item]] = []  # the items that are no message: only they can pair
    special = redo | deep
    for begin in range(0, len(texts), _DECODE_CHUNK):
        chunk = texts[begin : begin + _DECODE_CHUNK]
        values = decode_joined(ROW_SEPARATOR.join(chunk), len(chunk), _no_constants)
        if values is None:  # some line is not one JSON object: find and name it
            values = [
                _load_line(line, name, number)
                for line, number in zip(chunk, numbers[begin : begin + _DECODE_CHUNK], strict=True)
            ]
        for index, value in enumerate(values, begin):
            if (
                value.__class__ is dict
                and not (special and index in special)
                and value.get("type", "message") == "message"
            ):
                role = value.get("role")
                if role is None or role.__class__ is str:
                    kinds.append(KIND_USER if role == "user" else KIND_OTHER)
                    call_ids.append(None)
                    continue
            try:
                item = validate_item(value, index, values=index in deep)
                if index in redo:
                    texts[index] = encode_item(item, index)
            except UserError as exc:
                raise UserError(f"{name}:{numbers[index]}: {exc}; nothing was imported") from None
            kind, call_id = item_kind(item)
            kinds.append(kind)
            call_ids.append(call_id)
            if item.get("type", "message") != "message":
                others.append((index, item))
    parsed.kinds, parsed.call_ids = kinds, call_ids
    if not others or pairing_problem([item for _, item in others]) is None:
        return None
    # Messages take no part in pairing, so the check over the others alone is the check
    # over all of them; it runs over all again (messages as empty stand-ins) only to name
    # the right item.
    stand_ins: list[Item] = [{}] * len(texts)
    for index, item in others:
        stand_ins[index] = item
    return pairing_problem(stand_ins)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_line(line: str, name: str, number: int) -> Any:
    try:
        return json.loads(line, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            reason = exc.msg
        elif isinstance(exc, RecursionError):
            reason = "nested too deeply"
        else:
            reason = str(exc)
        raise UserError(
            f"{name}:{number} is not valid JSON ({reason}); nothing was imported"
        ) from None


def _parse_paused(data: bytes | str, name: str) -> _Parsed:
    # Decoding a big file makes many containers at once; the collector would run over them
    # again and again for nothing (decoded JSON holds no cycles).
    with gc_paused(len(data) > _GC_PAUSE_ABOVE):
        return _parse(data, name)


def _rows(parsed: _Parsed, codec: ItemCodec, session_id: str) -> EncodedRows:
    """The rows to write: the texts as they are (sealed by a codec that seals), with the
    kinds and call ids found while checking them and the token estimates of the texts."""
    texts = parsed.texts
    data: list[str | bytes]
    if codec.plain_json:
        data = list(texts)
    else:
        with gc_paused(len(texts) > 2000):
            data = [codec.seal(session_id, text) for text in texts]
    return EncodedRows(data, parsed.kinds, parsed.call_ids, estimate_token_counts(texts))


def _header(parsed: _Parsed, header: dict[str, Any], name: str, number: int) -> None:
    where = f"{name}:{number}"
    if header.get("format") != EXPORT_FORMAT:
        raise UserError(
            f"{where}: format {header.get('format')!r} is not a threadline session export "
            f"(expected {EXPORT_FORMAT!r})"
        )
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"{where}: the header's version must be an integer >= 1, got {version!r}")
    if version > EXPORT_VERSION:
        raise UserError(
            f"{where}: export format version {version} is newer than this threadline reads "
            f"(up to {EXPORT_VERSION}): upgrade threadline to import it"
        )
    session_id = header.get("session_id")
    if session_id is not None:
        try:
            session_id = check_session_id(session_id)
        except UserError as exc:
            raise UserError(f"{where}: the header's {exc}") from None
    metadata = header.get("metadata") or {}
    records = header.get("records") or {}
    if not isinstance(records, dict):
        raise UserError(f"{where}: the header's records must be an object of key to value")
    try:
        metadata = check_metadata(metadata, session_id or "?")
        for key in records:
            check_record_key(key)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    parsed.version, parsed.session_id = version, session_id
    parsed.metadata, parsed.records = metadata, dict(records)


async def import_jsonl(
    store: Store,
    source: str | os.PathLike[str] | IO[str],
    session_id: str | None = None,
    mode: ImportMode = "refuse",
) -> ImportResult:
    """Read an export file into ``store`` (see the module docstring for the format).

    ``session_id`` defaults to the header's. ``mode``: ``"refuse"`` (the default) refuses a
    session the store already holds; ``"append"`` adds the items after the session's own
    (the file's metadata and records are not imported); ``"replace"`` replaces the
    session's items, metadata and records with the file's. A bad line, a history with a
    call and no output, or a mode the store cannot honour raises
    :class:`~threadline.errors.UserError` with nothing written.
    """
    if mode not in _MODES:
        raise UserError(f"mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    store._check_open()
    data, name = await asyncio.to_thread(_read_text, source)
    parsed = await asyncio.to_thread(_parse_paused, data, name)
    del data
    target = session_id if session_id is not None else parsed.session_id
    if target is None:
        raise UserError(
            f"{name} has no header naming its session (the old plain format): pass session_id"
        )
    target = check_session_id(target)
    problem = parsed.problem
    if problem is not None:
        raise UserError(
            f"{name}:{_line_of(problem, parsed.lines)}: {problem}, which no model accepts; "
            "nothing was imported"
        )
    records: dict[str, Any] = {}
    if mode != "append":
        records = dict(parsed.records)
        records.pop(METADATA_KEY, None)
        if parsed.metadata:
            records[METADATA_KEY] = parsed.metadata
    if records and "records" not in store.capabilities:
        raise UserError(
            f"{name} holds session records (metadata, usage) that the session store "
            f"{store._backend.where} cannot keep: import with mode='append' to take the items only"
        )
    codec = store.codec
    rows = await asyncio.to_thread(_rows, parsed, codec, target)
    version = parsed.version
    del parsed
    session = store.session(target)
    payloads = {key: encode_record(codec, target, key, value) for key, value in records.items()}
    backend = store._backend
    async with session.lease():
        fence = session._fence()
        if mode == "refuse":
            if await backend.session_info(target) is not None:
                raise UserError(
                    f"session {target!r} already exists in the session store {backend.where}: "
                    "import with mode='append' or mode='replace', or into another session_id"
                )
            if rows:
                await backend.append(target, rows, fence, payloads or None)
            else:
                await backend.replace(target, [], fence)
                if payloads:
                    await backend.put_records(target, payloads, fence)
        elif mode == "append":
            if rows:
                await backend.append(target, rows, fence)
        else:
            await backend.replace(target, rows, fence)
            if "records" in store.capabilities:
                old = await backend.list_records(target, "")
                changes: dict[str, str | bytes | None] = {key: None for key, _ in old}
                changes.update(payloads)
                if changes:
                    await backend.put_records(target, changes, fence)
    return ImportResult(target, len(rows), len(records), mode, version)


def _line_of(problem: str, lines: Sequence[int]) -> int:
    """The line number of the item a problem names (``"item 3 ..."``), else 0."""
    words = problem.split(maxsplit=2)
    if len(words) >= 2 and words[0] == "item" and words[1].isdigit():
        index = int(words[1])
        if index < len(lines):
            return lines[index]
    return 0


class TransferMixin:
    """The export and import methods of :class:`~threadline.sessions.Store`."""

    async def export_jsonl(self, session_id: str, target: str | os.PathLike[str] | IO[str]) -> int:
        """Write one session in the versioned JSON lines format (see
        :mod:`threadline.sessions.transfer`); returns how many items it wrote."""
        return await export_jsonl(self, session_id, target)  # type: ignore[arg-type]

    async def import_jsonl(
        self,
        source: str | os.PathLike[str] | IO[str],
        session_id: str | None = None,
        mode: ImportMode = "refuse",
    ) -> ImportResult:
        """Read an export file into this store, atomically (see :func:`import_jsonl`)."""
        return await import_jsonl(self, source, session_id, mode)  # type: ignore[arg-type]
