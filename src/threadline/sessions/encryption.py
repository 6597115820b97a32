"""Encryption at rest: an item codec that seals every stored payload with AES-GCM.

:class:`EncryptionCodec` is an :class:`~threadline.sessions.ItemCodec`: pass it to a store
(``SQLiteStore(path, codec=EncryptionCodec(key))``) and every item's JSON is sealed before the
write transaction and opened again on read. It needs ``cryptography``
(``pip install 'threadline[encryption]'``), imported only when a codec is made.

**Envelope** (bytes, version 1)::

    b"TLE1" | key id length (1 byte) | key id (ASCII) | nonce (12 bytes) | ciphertext + tag (16)

**Keys.** A key is 32 random bytes, the *master* key of its key id. Each session's item key is
derived from it with HKDF-SHA256 (salt ``b"threadline/items/v1"``, info ``key id \\0 session
id``), so no two sessions share a key. The associated data is the envelope's header and the
session id: a payload copied into another session, given another key id, or changed in any
bit fails to open. Each item gets a fresh random nonce.

**Rotation.** A codec holds one *current* key id (new writes) and any number of older ones
(still readable). :func:`reencrypt` rewrites items under the current key through the public
session API, under each session's writer lease.

Opening fails with a ``ValueError`` whose message names the key id (a key this codec does not
hold, or authentication that failed under it); stores report it as
:class:`~threadline.errors.CorruptItemError`. A history is never shown partly decrypted.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependencyError, UserError

if TYPE_CHECKING:
    from ._base_store import Store

__all__ = ["KEY_ENV_VAR", "EncryptionCodec", "key_from_env", "new_key", "reencrypt"]

KEY_ENV_VAR = "THREADLINE_ENCRYPTION_KEY"
"""The environment variable :func:`key_from_env` reads by default."""

MAGIC = b"TLE1"
_NONCE = 12
_TAG = 16
_KEY_BYTES = 32
_SALT = b"threadline/items/v1"
_KEY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CACHE = 4096


def new_key() -> bytes:
    """A fresh random 32-byte master key (store it base64-encoded, see :func:`key_from_env`)."""
    return os.urandom(_KEY_BYTES)


def key_from_env(name: str = KEY_ENV_VAR) -> bytes:
    """The 32-byte master key held base64-encoded in the environment variable ``name``.

    Raises :class:`~threadline.errors.UserError` naming the variable when it is unset, not
    base64, or not 32 bytes long.
    """
    value = os.environ.get(name)
    if not value:
        raise UserError(
            f"the encryption key variable {name} is not set: set it to 32 random bytes in "
            "base64, e.g. the output of: openssl rand -base64 32"
        )
    text = value.strip().replace("-", "+").replace("_", "/")  # the URL-safe alphabet too
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise UserError(f"the encryption key in {name} is not valid base64") from None
    if len(key) != _KEY_BYTES:
        raise UserError(
            f"the encryption key in {name} is {len(key)} bytes long once decoded; it must be "
            f"{_KEY_BYTES} (32 random bytes, base64-encoded)"
        )
    return key


def _check_key(key_id: object, key: object) -> tuple[str, bytes]:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise UserError(
            f"key id must be 1 to 64 characters of letters, digits and ._:- , got {key_id!r}"
        )
    if not isinstance(key, (bytes, bytearray)) or len(key) != _KEY_BYTES:
        size = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise UserError(
            f"the key of key id {key_id!r} must be {_KEY_BYTES} bytes (got {size}); "
            "new_key() makes one, key_from_env() reads one"
        )
    return key_id, bytes(key)


def _import_cryptography() -> tuple[Any, Any, Any, Any]:
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:
        raise MissingDependencyError(
            "cryptography", "encryption", "encryption at rest (EncryptionCodec)"
        ) from None
    return AESGCM, HKDF, hashes, InvalidTag


class EncryptionCodec:
    """An item codec that encrypts each stored payload with AES-256-GCM.

    ``key`` is the current 32-byte master key and ``key_id`` its name, written into every new
    envelope; ``old_keys`` maps older key ids to their keys, which stay readable (rotation).
    Payloads are bytes; nothing of an item's content is stored in clear, so ``searchable``
    is ``False`` (a store with this codec offers no ``search``).
    """

    name: str = "encryption"
    plain_json: bool = False
    searchable: bool = False

    def __init__(
        self, key: bytes, *, key_id: str = "k1", old_keys: Mapping[str, bytes] | None = None
    ) -> None:
        self._aesgcm, self._hkdf, self._hashes, self._invalid_tag = _import_cryptography()
        current, current_key = _check_key(key_id, key)
        keys = {current: current_key}
        if old_keys is not None:
            if not isinstance(old_keys, Mapping):
                raise UserError(f"old_keys must map key ids to keys, got {type(old_keys).__name__}")
            for old_id, old_key in old_keys.items():
                checked_id, checked = _check_key(old_id, old_key)
                if checked_id == current:
                    raise UserError(f"key id {current!r} is both the current key and an old key")
                keys[checked_id] = checked
        self._keys = keys
        self.key_id = current
        """The key id new writes are sealed under."""
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key id this codec can open (the current one and the old ones)."""
        return frozenset(self._keys)

    def __repr__(self) -> str:
        old = sorted(set(self._keys) - {self.key_id})
        return f"EncryptionCodec(key_id={self.key_id!r}, old_key_ids={old!r})"

    def _cipher(self, key_id: str, session_id: str) -> Any:
        slot = (key_id, session_id)
        with self._lock:
            cipher = self._cache.get(slot)
            if cipher is not None:
                self._cache.move_to_end(slot)
                return cipher
        info = key_id.encode("ascii") + b"\0" + session_id.encode("utf-8", "surrogatepass")
        derived = self._hkdf(
            algorithm=self._hashes.SHA256(), length=_KEY_BYTES, salt=_SALT, info=info
        ).derive(self._keys[key_id])
        cipher = self._aesgcm(derived)
        with self._lock:
            self._cache[slot] = cipher
            if len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return cipher

    def seal(self, session_id: str, data: str) -> bytes:
        """The envelope of ``data`` under the current key, bound to ``session_id``."""
        key_id = self.key_id.encode("ascii")
        header = MAGIC + bytes([len(key_id)]) + key_id
        nonce = os.urandom(_NONCE)
        aad = header + session_id.encode("utf-8", "surrogatepass")
        sealed = self._cipher(self.key_id, session_id).encrypt(nonce, data.encode("utf-8"), aad)
        return header + nonce + bytes(sealed)

    def open(self, session_id: str, payload: str | bytes) -> str:
        """The JSON sealed in ``payload`` for ``session_id``; ``ValueError`` names the problem."""
        key_id, header, nonce, sealed = _parse(payload)
        if key_id not in self._keys:
            held = ", ".join(repr(k) for k in sorted(self._keys))
            raise ValueError(
                f"it is sealed under key id {key_id!r}, which this codec does not hold "
                f"(it holds {held}): pass that key in old_keys"
            )
        aad = header + session_id.encode("utf-8", "surrogatepass")
        try:
            plain = self._cipher(key_id, session_id).decrypt(nonce, sealed, aad)
        except self._invalid_tag:
            raise ValueError(
                f"authentication failed under key id {key_id!r}: a wrong key for that id, "
                "a tampered payload, or a payload of another session"
            ) from None
        return bytes(plain).decode("utf-8")

    def key_id_of(self, payload: str | bytes) -> str:
        """The key id a stored payload was sealed under (``ValueError`` if it is no envelope)."""
        return _parse(payload)[0]


def _parse(payload: str | bytes) -> tuple[str, bytes, bytes, bytes]:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ValueError(f"stored as {type(payload).__name__}, not an encrypted envelope")
    raw = bytes(payload)
    if not raw.startswith(MAGIC):
        if raw.startswith(b"TLE"):
            raise ValueError(f"envelope version {raw[3:4]!r} is newer than this threadline knows")
        raise ValueError("not an encrypted envelope (no TLE1 header): stored in clear?")
    if len(raw) < len(MAGIC) + 1:
        raise ValueError("truncated envelope (no key id)")
    size = raw[len(MAGIC)]
    start = len(MAGIC) + 1
    key_bytes = raw[start : start + size]
    header = raw[: start + size]
    body = raw[start + size :]
    try:
        key_id = key_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("damaged envelope (its key id is not ASCII)") from None
    if size == 0 or len(key_bytes) < size or not _KEY_ID.fullmatch(key_id):
        raise ValueError("damaged envelope (bad key id)")
    if len(body) < _NONCE + _TAG:
        raise ValueError(f"truncated envelope under key id {key_id!r}")
    return key_id, header, body[:_NONCE], body[_NONCE:]


async def reencrypt(store: Store, session_id: str | None = None) -> int:
    """Rewrite a session's items (all sessions' when ``session_id`` is ``None``) under the
    store's current key; returns how many items were rewritten.

    Built on the public session API: for each session it takes the writer lease, reads every
    item and writes them back with ``replace_items`` (one atomic transaction, so a crash leaves
    the old or the new payloads, never a mix). An item no key opens raises
    :class:`~threadline.errors.CorruptItemError` and that session is left as it was. The
    lease excludes runs, not writes made outside any lease: one landing between the read and
    the rewrite would be replaced away, so run this when nothing writes without a lease.
    """
    if not isinstance(getattr(store, "codec", None), EncryptionCodec):
        raise UserError(f"reencrypt needs a store whose codec is an EncryptionCodec, got {store!r}")
    if session_id is not None:
        ids = [session_id]
    else:
        ids = [info.session_id for info in await store.list_sessions()]
    rewritten = 0
    for one in ids:
        session = store.session(one)
        async with session.lease():
            items = await session.get_items()
            if items:
                await session.replace_items(items)
        rewritten += len(items)
    return rewritten
