"""The Redis backend: each backend method is one script on the session's slot.

Key layout in :mod:`._keys`, the scripts in :mod:`._scripts`, connections and failures in
:mod:`._client`. What a single script cannot do on a Cluster is done in two steps, each
atomic, with what holds in between written down here:

* **The store index** (``<prefix>index``, a sorted set of session ids by last write, for
  ``list_sessions``) is one key, so on a Cluster it sits on its own slot: the client updates it
  after the write script (``ZADD GT``, so a late update never moves a session back). A client
  that dies between the two leaves the session listed at its previous write time until its
  next write. On a single server the write script updates it in the same step. Sessions that
  expired by ttl or whose delete did not reach the index are dropped from it when a listing
  meets them.
* **Fork** reads the source in one script (a consistent snapshot), then writes the copy in
  one script on the target's slot that refuses a target holding items. The copy is the source
  as it was at the read; a write to the source after the read is not in it.
* **pop / pop_turn** read the newest items first (so a corrupt one is reported and kept, not
  removed), then remove them with a script that checks the session's write version is still
  the one read; a write in between makes it read again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import CorruptItemError, LeaseLostError, SchemaVersionError, SessionError, UserError
from ...items import Item
from .._window import check_fork_cut
from ..backend import (
    Fence,
    LeaseGrant,
    LeaseHolder,
    Payload,
    StoreBackend,
    StoreStats,
    TailWindow,
)
from ..base import SessionInfo
from ..codec import (
    KIND_CALL,
    KIND_OUTPUT,
    ROW_SEPARATOR,
    EncodedItem,
    ItemCodec,
    decode_joined,
    decode_payload,
    gc_paused,
)
from ._client import Connection
from ._keys import SessionKeys, meta_entry

__all__ = ["SCHEMA_VERSION", "RedisBackend"]

SCHEMA_VERSION = 1
"""The key layout this code writes (``<prefix>schema``); a newer one is refused."""

_GC_PAUSE_ABOVE = 2000
_KEYS_KEPT = 4096
_INDEX_PAGE = 200


class RedisBackend(StoreBackend):
    """Rows and transactions of one Redis server or Cluster (see the module docstring)."""

    capabilities = frozenset(
        {"window", "pop_turn", "replace", "fork", "lease", "records", "shared"}
    )

    def __init__(
        self, connection: Connection, codec: ItemCodec, *, prefix: str, ttl: float | None
    ) -> None:
        super().__init__(codec)
        self.connection = connection
        self.prefix = prefix
        self.ttl_ms = 0 if ttl is None else max(1, round(ttl * 1000))
        self.index_key = prefix + "index"
        self.schema_key = prefix + "schema"
        self._closed = False
        self._checked = False
        self._key_cache: dict[str, SessionKeys] = {}
        """The key names of recently used sessions (made again after a clear)."""
        self._join = ROW_SEPARATOR.encode("utf-8") if codec.plain_json else b""
        """The separator readers join payloads with (see :mod:`._scripts`); empty (a list of
        payloads) when the codec's payloads are not JSON text."""

    @property
    def where(self) -> str:
        return self.connection.config.where

    # ------------------------------------------------------------------ life cycle

    async def setup(self) -> None:
        self._open()
        self._checked = False
        await self._ready()

    async def close(self) -> None:
        self._closed = True
        await self.connection.aclose()

    def _open(self) -> Connection:
        if self._closed:
            raise SessionError(f"the session store {self.where} is closed: open a new store")
        return self.connection

    async def _ready(self) -> Connection:
        """The connection, once the stored key layout is known to be one this code reads."""
        connection = self._open()
        if self._checked:
            return connection
        async with connection.first_use():
            if not self._checked:
                await self._check_schema(connection)
        return connection

    async def _check_schema(self, connection: Connection) -> None:
        stored = await connection.command("GET", self.schema_key)
        if stored is None:
            await connection.command("SET", self.schema_key, SCHEMA_VERSION, "NX")
            stored = await connection.command("GET", self.schema_key)
        try:
            version = int(stored)
        except (TypeError, ValueError):
            raise SessionError(
                f"the session store {self.where} has {self.schema_key!r} = {stored!r}, which "
                "is not a threadline schema version: use another key prefix"
            ) from None
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the session store {self.where} (prefix {self.prefix!r}) has schema version "
                f"{version}, but this threadline only knows up to version {SCHEMA_VERSION}: "
                "upgrade threadline to open it"
            )
        self._checked = True

    # ------------------------------------------------------------------ helpers

    def _keys(self, session_id: str) -> SessionKeys:
        found = self._key_cache.get(session_id)
        if found is None:
            found = SessionKeys(self.prefix, session_id)
            if len(self._key_cache) >= _KEYS_KEPT:
                self._key_cache.clear()
            self._key_cache[session_id] = found
        return found

    def _write_keys(self, keys: SessionKeys) -> list[str]:
        listed = keys.writes()
        if not self.connection.cluster:
            listed.append(self.index_key)
        return listed

    def _write_args(self, session_id: str, fence: Fence | None) -> list[Any]:
        fence_value = "" if fence is None else _fence_value(fence)
        return [fence_value, os.urandom(16).hex(), self.ttl_ms, session_id]

    @staticmethod
    def _rows_args(rows: Sequence[EncodedItem]) -> list[Any]:
        args: list[Any] = [len(rows)]
        args += [row.data for row in rows]
        args += [meta_entry(row.kind, row.tokens, row.call_id) for row in rows]
        return args

    async def _write(
        self,
        script: str,
        session_id: str,
        fence: Fence | None,
        extra: list[Any],
        *,
        keys: SessionKeys | None = None,
    ) -> list[Any]:
        connection = await self._ready()
        keys = keys or self._keys(session_id)
        reply = await connection.script(
            script,
            self._write_keys(keys),
            [*self._write_args(session_id, fence), *extra],
        )
        answer = bytes(reply).split(b" ")  # "<status> <what goes with it>"
        status = answer[0]
        if status == b"LOST":
            assert fence is not None
            raise LeaseLostError(session_id, f"epoch {fence.epoch} is no longer the lease")
        if status in (b"OK", b"DUP") and len(answer) > 1 and answer[1] and connection.cluster:
            await connection.command("ZADD", self.index_key, "GT", answer[1], session_id)
        return answer

    def _decode(self, session_id: str, payloads: Sequence[bytes], offset: int) -> list[Item]:
        if not payloads:
            return []
        codec = self.codec
        if codec.plain_json:
            try:
                texts = [payload.decode("utf-8") for payload in payloads]
            except UnicodeDecodeError:
                texts = None
            if texts is not None:
                with gc_paused(len(texts) > _GC_PAUSE_ABOVE):
                    values = decode_joined(ROW_SEPARATOR.join(texts), len(texts))
                if values is not None:
                    return values
        items = []
        for index, payload in enumerate(payloads):
            item, problem = decode_payload(codec, session_id, payload)
            if item is None:
                raise CorruptItemError(session_id, offset + index, problem)
            items.append(item)
        return items

    def _decode_joined(self, joined: bytes, count: int) -> list[Item] | None:
        """The ``count`` items of payloads joined by the separator, or ``None`` when they are
        not all whole JSON objects (the caller then reads them as a list, which names the
        corrupt one)."""
        if count == 0:
            return []
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError:
            return None
        with gc_paused(count > _GC_PAUSE_ABOVE):
            return decode_joined(text, count)

    def _items_of(self, session_id: str, reply: Any) -> list[Item] | None:
        """The items of a ``read`` / ``window`` reply (see :mod:`._scripts`); ``None`` when its
        payloads came joined and do not decode (read them again as a list)."""
        if reply.__class__ is bytes:
            joined, _, counts = reply.rpartition(self._join)
            count, _, first = counts.partition(b" ")
            return self._decode_joined(joined, int(count) - int(first))
        return self._decode(session_id, reply[2], int(reply[1]))

    async def _read_items(
        self, session_id: str, name: str, keys: list[str], args: list[Any]
    ) -> list[Item]:
        """Run the reader ``name`` (``read`` or ``window``) and decode its items.

        With a JSON codec the payloads come joined (one string, decoded at once); when that
        does not decode, the reader runs again answering a list, and the items are decoded one
        by one, so a corrupt one is reported with its position.
        """
        connection = await self._ready()
        items = self._items_of(session_id, await connection.script(name, keys, [*args, self._join]))
        if items is None:
            items = self._items_of(session_id, await connection.script(name, keys, [*args, b""]))
        assert items is not None  # a list always decodes (or raises)
        return items

    # ------------------------------------------------------------------ one session's items

    async def append(
        self,
        session_id: str,
        rows: Sequence[EncodedItem],
        fence: Fence | None,
        records: Mapping[str, Payload | None] | None = None,
    ) -> None:
        args = self._rows_args(rows)
        if records:
            args += _records_args(records)
        await self._write("append", session_id, fence, args)

    # ------------------------------------------------------------------ session records

    async def get_record(self, session_id: str, key: str) -> Payload | None:
        connection = await self._ready()
        payload = await connection.command("HGET", self._keys(session_id).r, key)
        return None if payload is None else bytes(payload)

    async def list_records(self, session_id: str, prefix: str) -> list[tuple[str, Payload]]:
        connection = await self._ready()
        stored = await connection.command("HGETALL", self._keys(session_id).r)
        found = [(bytes(key).decode("utf-8"), bytes(value)) for key, value in stored.items()]
        return sorted((key, value) for key, value in found if key.startswith(prefix))

    async def put_records(
        self, session_id: str, records: Mapping[str, Payload | None], fence: Fence | None
    ) -> None:
        await self._write("put_records", session_id, fence, _records_args(records))

    async def read(self, session_id: str, limit: int | None) -> list[Item]:
        keys = self._keys(session_id)
        return await self._read_items(session_id, "read", [keys.d], [limit or 0])

    async def window(
        self, session_id: str, max_items: int | None, max_tokens: int | None
    ) -> list[Item]:
        keys = self._keys(session_id)
        return await self._read_items(
            session_id, "window", [keys.d, keys.m], [max_items or 0, max_tokens or 0]
        )

    async def window_since(
        self, session_id: str, start: int, max_items: int | None, max_tokens: int | None
    ) -> TailWindow:
        connection = await self._ready()
        keys = self._keys(session_id)
        args = [start, *(-1 if b == 0 else (b or 0) for b in (max_items, max_tokens))]
        answer = await connection.script("window_since", [keys.d, keys.m], [*args, self._join])
        count, tail_tokens, first, payloads, anchor = answer
        items = None
        if self._join:
            items = self._decode_joined(payloads, int(count) - int(first))
            if items is None:  # read again as a list, which names a corrupt payload
                answer = await connection.script("window_since", [keys.d, keys.m], [*args, b""])
                count, tail_tokens, first, payloads, anchor = answer
        if items is None:
            items = self._decode(session_id, payloads, int(first))
        anchored = None
        if anchor is not None and start > 0:
            anchored = self._decode(session_id, [anchor], start - 1)[0]
        return TailWindow(int(count), anchored, items, int(tail_tokens))

    async def window_after_record(
        self,
        session_id: str,
        key: str,
        max_items: int | None,
        max_tokens: int | None,
        start_for: Callable[[Payload], tuple[int, int | None, int | None] | None],
    ) -> tuple[Payload | None, list[Item] | TailWindow]:
        # one script: the record, or the plain window when there is none
        connection = await self._ready()
        keys = self._keys(session_id)
        script_keys = [keys.d, keys.m, keys.r]
        args = [key, max_items or 0, max_tokens or 0]
        reply = await connection.script("window_record", script_keys, [*args, self._join])
        if reply.__class__ is bytes:
            items = self._items_of(session_id, reply)
            if items is not None:
                return None, items
            reply = await connection.script("window_record", script_keys, [*args, b""])
        if len(reply) == 3:  # no record: the window as a list
            return None, self._decode(session_id, reply[2], int(reply[1]))
        payload = bytes(reply[0])
        plan = start_for(payload)
        if plan is None:
            return payload, await self.window(session_id, max_items, max_tokens)
        return payload, await self.window_since(session_id, *plan)

    async def pop(self, session_id: str, fence: Fence | None) -> Item | None:
        connection = await self._ready()
        keys = self._keys(session_id)
        fence_value = "" if fence is None else _fence_value(fence)
        while True:
            answer = await connection.script("peek", [keys.d, keys.h, keys.l], [fence_value])
            if answer[0] == b"LOST":
                assert fence is not None
                raise LeaseLostError(session_id, f"epoch {fence.epoch} is no longer the lease")
            count, version = int(answer[1]), answer[2]
            if count == 0:
                return None
            item = self._decode(session_id, [answer[3]], count - 1)[0]
            done = await self._write("trim", session_id, fence, [version, count - 1], keys=keys)
            if done[0] != b"CHANGED":
                return item

    async def pop_turn(self, session_id: str, fence: Fence | None) -> list[Item]:
        connection = await self._ready()
        keys = self._keys(session_id)
        fence_value = "" if fence is None else _fence_value(fence)
        while True:
            answer = await connection.script(
                "peek_turn", [keys.d, keys.m, keys.h, keys.l], [fence_value]
            )
            if answer[0] == b"LOST":
                assert fence is not None
                raise LeaseLostError(session_id, f"epoch {fence.epoch} is no longer the lease")
            version, position = answer[2], int(answer[3])
            if position < 0:
                return []
            items = self._decode(session_id, answer[4], position)
            done = await self._write("trim", session_id, fence, [version, position], keys=keys)
            if done[0] != b"CHANGED":
                return items

    async def replace(
        self, session_id: str, rows: Sequence[EncodedItem], fence: Fence | None
    ) -> None:
        await self._write("replace", session_id, fence, self._rows_args(rows))

    async def clear(self, session_id: str, fence: Fence | None) -> None:
        await self._write("clear", session_id, fence, [])

    async def fork(self, session_id: str, new_session_id: str, at: int | None) -> None:
        connection = await self._ready()
        source = self._keys(session_id)
        rows: list[tuple[bytes, bytes]] = []
        if at != 0:
            count, payloads, metas = await connection.script("snapshot", [source.d, source.m], [])
            if at is not None and at < count:
                check_fork_cut(session_id, at, _pairs(metas))
            if len(payloads) != len(metas):
                raise SessionError(
                    f"session {session_id!r} in {self.where} holds {len(payloads)} items but "
                    f"{len(metas)} window entries: its keys were changed outside threadline"
                )
            rows = list(zip(payloads, metas, strict=True))[: count if at is None else at]
        args: list[Any] = [len(rows), *(row[0] for row in rows), *(row[1] for row in rows)]
        answer = await self._write("fork_into", new_session_id, None, args)
        if answer[0] == b"FULL":
            raise UserError(
                f"cannot fork session {session_id!r} into {new_session_id!r}: that session "
                f"already holds {int(answer[1])} items; clear it first or pick a new id"
            )

    # ------------------------------------------------------------------ the store

    async def delete(self, session_id: str) -> bool:
        connection = await self._ready()
        keys = self._keys(session_id)
        script_keys = [keys.d, keys.m, keys.h, keys.b, keys.r, keys.x]
        if not connection.cluster:
            script_keys.append(self.index_key)
        # the id makes a retry after a dropped connection truthful (see the script)
        existed = await connection.script("delete", script_keys, [session_id, os.urandom(16).hex()])
        if connection.cluster:
            await connection.command("ZREM", self.index_key, session_id)
        return bool(existed)

    async def _infos(self, session_ids: list[bytes]) -> list[tuple[bytes, Any, Any, int]]:
        """``(id, created, updated, count)`` of each listed session (``created`` is ``None``
        for one that expired or was deleted)."""
        commands: list[tuple[Any, ...]] = []
        for member in session_ids:
            keys = self._keys(member.decode("utf-8"))
            commands += [("HMGET", keys.h, "c", "u"), ("LLEN", keys.d)]
        answers = await self.connection.pipeline(commands)
        return [
            (member, answers[2 * n][0], answers[2 * n][1], int(answers[2 * n + 1]))
            for n, member in enumerate(session_ids)
        ]

    async def _forget(self, members: list[bytes]) -> None:
        if members:
            await self.connection.command("ZREM", self.index_key, *members)

    async def list_sessions(
        self, limit: int | None, after: str | None
    ) -> tuple[list[SessionInfo], str | None]:
        connection = await self._ready()
        bound = None if after is None else _parse_cursor(after)
        found: list[SessionInfo] = []
        last: tuple[int, bytes] | None = None
        offset = 0
        wanted = None if limit is None else limit + 1
        while wanted is None or len(found) < wanted:
            top: Any = "+inf" if bound is None else bound[0]
            entries = await connection.command(
                "ZREVRANGEBYSCORE",
                self.index_key,
                top,
                "-inf",
                "WITHSCORES",
                "LIMIT",
                offset,
                _INDEX_PAGE,
            )
            if not entries:
                break
            offset += len(entries)
            pairs = [(bytes(member), int(score)) for member, score in entries]
            if bound is not None:
                pairs = [
                    (member, score)
                    for member, score in pairs
                    if score < bound[0] or member < bound[1]
                ]
            gone = []
            scores = dict(pairs)
            for member, created, updated, count in await self._infos([m for m, _ in pairs]):
                if created is None:
                    gone.append(member)
                    continue
                found.append(
                    SessionInfo.from_timestamps(
                        member.decode("utf-8"),
                        count,
                        int(created) / 1e6,
                        int(updated or created) / 1e6,
                    )
                )
                if wanted is not None and len(found) == wanted - 1:
                    last = (scores[member], member)
                if wanted is not None and len(found) >= wanted:
                    break
            await self._forget(gone)
            offset -= len(gone)
        if wanted is not None and len(found) >= wanted and last is not None:
            return found[:limit], _cursor(*last)
        return found, None

    async def session_info(self, session_id: str) -> SessionInfo | None:
        connection = await self._ready()
        keys = self._keys(session_id)
        created, updated, count = await connection.script("info", [keys.h, keys.d], [])
        if created is None:
            return None
        return SessionInfo.from_timestamps(
            session_id, int(count), int(created) / 1e6, int(updated or created) / 1e6
        )

    async def stats(self) -> StoreStats:
        connection = await self._ready()
        sessions = items = listed = 0
        start = 0
        while True:
            members = await connection.command(
                "ZRANGE", self.index_key, start, start + _INDEX_PAGE - 1
            )
            if not members:
                break
            start += len(members)
            listed += len(members)
            for _, created, _, count in await self._infos(list(members)):
                if created is not None:
                    sessions += 1
                    items += count
        details: dict[str, Any] = {
            "backend": "redis",
            "server": self.where,
            "cluster": connection.cluster,
            "prefix": self.prefix,
            "index_entries": listed,
            "session_ttl": None if not self.ttl_ms else self.ttl_ms / 1000,
        }
        return StoreStats(sessions, items, details)

    # ------------------------------------------------------------------ lease primitives

    async def lease_acquire(self, session_id: str, owner: str, ttl: float) -> LeaseGrant:
        connection = await self._ready()
        keys = self._keys(session_id)
        answer = await connection.script(
            "acquire", [keys.l, keys.e], [owner, max(1, round(ttl * 1000)), self.ttl_ms]
        )
        if int(answer[0]) == 1:
            return LeaseGrant(True, int(answer[1]))
        epoch, _, holder = answer[1].decode("utf-8").partition(" ")
        left = int(answer[2])
        return LeaseGrant(False, int(epoch), holder, max(left, 0) / 1000)

    async def lease_holders(self, session_ids: Sequence[str]) -> dict[str, LeaseHolder]:
        unique = list(dict.fromkeys(session_ids))
        if not unique:
            return {}
        await self._ready()
        commands: list[tuple[Any, ...]] = []
        for session_id in unique:
            key = self._keys(session_id).l
            commands += [("GET", key), ("PTTL", key)]
        answers = await self.connection.pipeline(commands)
        now = time.time()
        found: dict[str, LeaseHolder] = {}
        for n, session_id in enumerate(unique):
            value, left = answers[2 * n], answers[2 * n + 1]
            if not value or not isinstance(left, int) or left <= 0:
                continue  # free, released, or expired (PTTL -2); -1 would be a lease with no expiry
            text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            epoch, _, owner = text.partition(" ")
            if not owner or not epoch.isdigit():
                continue
            found[session_id] = LeaseHolder(session_id, owner, int(epoch), now + left / 1000)
        return found

    async def lease_renew(self, session_id: str, fence: Fence, ttl: float) -> bool:
        connection = self._open()
        keys = self._keys(session_id)
        kept = await connection.script(
            "renew", [keys.l], [_fence_value(fence), max(1, round(ttl * 1000))]
        )
        return bool(kept)

    async def lease_release(self, session_id: str, fence: Fence) -> None:
        if self._closed:
            return  # the lease expires after its ttl
        keys = self._keys(session_id)
        await self.connection.script("release", [keys.l], [_fence_value(fence)])


def _records_args(records: Mapping[str, Payload | None]) -> list[Any]:
    args: list[Any] = [len(records)]
    for key, payload in records.items():
        args += [f"-{key}", b""] if payload is None else [f"+{key}", payload]
    return args


def _fence_value(fence: Fence) -> str:
    return f"{fence.epoch} {fence.owner}"


def _pairs(metas: Sequence[bytes]) -> list[tuple[int, int, str | None]]:
    pairs: list[tuple[int, int, str | None]] = []
    for position, meta in enumerate(metas):
        kind = meta[0] - 48
        if kind in (KIND_CALL, KIND_OUTPUT):
            call_id = meta[meta.index(b":") + 1 :].decode("utf-8")
            pairs.append((position, kind, call_id))
    return pairs


def _cursor(score: int, member: bytes) -> str:
    return f"r{score}.{member.hex()}"


def _parse_cursor(after: str) -> tuple[int, bytes]:
    stamp, dot, member = after[1:].partition(".")
    try:
        if not after.startswith("r") or not dot or not stamp.isdigit():
            raise ValueError(after)
        return int(stamp), bytes.fromhex(member)
    except ValueError:
        raise UserError(
            f"after={after!r} is not a cursor of this store: pass a page's next_cursor"
        ) from None
