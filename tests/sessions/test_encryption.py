"""Encryption at rest: the envelope, keys, rotation, re-encryption and every way opening fails.

The conformance suite runs on the encrypted configurations too (``tests/backends.py``); these
tests check what it cannot: the bytes on disk, and that each failure names its cause.
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from threadline.errors import CorruptItemError, UserError
from threadline.items import user_message
from threadline.sessions import (
    EncryptionCodec,
    InMemoryStore,
    SQLiteStore,
    key_from_env,
    new_key,
    open_store,
    reencrypt,
)

K1 = bytes(range(32))
K2 = bytes(range(100, 132))


def _items(tag: str, count: int = 4) -> list[dict[str, Any]]:
    """A turn with a tool call whose every readable text holds ``SECRET<tag>``."""
    items: list[dict[str, Any]] = []
    for i in range(count):
        items += [
            user_message(f"SECRET{tag} question {i} über café"),
            {
                "type": "function_call",
                "call_id": f"call_{tag}_{i}",
                "name": f"SECRET{tag}_lookup",
                "arguments": f'{{"q": "SECRET{tag} {i}"}}',
            },
            {
                "type": "function_call_output",
                "call_id": f"call_{tag}_{i}",
                "output": f"SECRET{tag}",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": f"SECRET{tag} answer {i}"}],
            },
        ]
    return items


def _files(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def _assert_no_plaintext(db: Path, items: list[dict[str, Any]]) -> None:
    import json

    needles = {b"SECRET", "SECRET".encode("utf-16-le")}
    for item in items:
        needles.add(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode())
        for value in item.values():
            if isinstance(value, str) and not value.startswith("call_") and len(value) > 6:
                needles.add(value.encode("utf-8"))
    for path in _files(db):
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} found in clear in {path.name}"


def _payloads(db: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT s.session_id, i.data FROM threadline_items AS i "
            "JOIN threadline_sessions AS s USING (sid) ORDER BY s.session_id, i.seq"
        ).fetchall()


async def test_nothing_readable_reaches_the_file_before_or_after_rotation(tmp_path: Path) -> None:
    db = tmp_path / "enc.db"
    written: list[dict[str, Any]] = []
    async with SQLiteStore(db, codec=EncryptionCodec(K1, key_id="k1")) as store:
        for n in range(3):
            batch = _items(f"s{n}")
            await store.session(f"user-{n}").add_items(batch)
            written += batch
        await store.session("user-0").fork("user-0-fork", at=4)
        _assert_no_plaintext(db, written)  # the WAL still holds the writes here
    _assert_no_plaintext(db, written)
    assert {EncryptionCodec(K1).key_id_of(data) for _, data in _payloads(db)} == {"k1"}

    rotated = EncryptionCodec(K2, key_id="k2", old_keys={"k1": K1})
    async with SQLiteStore(db, codec=rotated) as store:
        assert await store.session("user-1").get_items() == _items("s1")  # old key still reads
        later = _items("late", 1)
        await store.session("user-1").add_items(later)
        written += later
        assert {rotated.key_id_of(d) for _, d in _payloads(db)} == {"k1", "k2"}
        assert await reencrypt(store) == 3 * 16 + 4 + 4
        _assert_no_plaintext(db, written)
    assert {rotated.key_id_of(data) for _, data in _payloads(db)} == {"k2"}
    _assert_no_plaintext(db, written)

    async with SQLiteStore(db, codec=EncryptionCodec(K2, key_id="k2")) as store:  # k1 retired
        assert await store.session("user-1").get_items() == _items("s1") + later
        assert await store.session("user-0-fork").get_items() == _items("s0")[:4]


def test_the_envelope_layout() -> None:
    codec = EncryptionCodec(K1, key_id="prod-2026")
    sealed = codec.seal("s", '{"role":"user","content":"hi"}')
    assert sealed[:4] == b"TLE1"
    assert sealed[4] == len(b"prod-2026")
    assert sealed[5:14] == b"prod-2026"
    assert len(sealed) == 4 + 1 + 9 + 12 + len('{"role":"user","content":"hi"}') + 16
    assert codec.seal("s", "x") != codec.seal("s", "x")  # a fresh nonce each time
    assert codec.open("s", sealed) == '{"role":"user","content":"hi"}'
    assert codec.key_id_of(sealed) == "prod-2026"
    assert (codec.name, codec.plain_json, codec.searchable) == ("encryption", False, False)
    assert codec.key_ids == frozenset({"prod-2026"})
    assert "prod-2026" in repr(codec) and K1.hex() not in repr(codec)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"role":"user"}', "not an encrypted envelope"),
        (b"TLE2\x02k1" + bytes(40), "envelope version b'2' is newer"),
        (b"TLE1", "truncated envelope (no key id)"),
        (b"TLE1\x02k1" + bytes(10), "truncated envelope under key id 'k1'"),
        (b"TLE1\x00" + bytes(40), "bad key id"),
        ("TLE1 as text", "stored as str"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(payload: Any, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        EncryptionCodec(K1).open("s", payload)
    assert reason in str(caught.value)


async def _one_item_store(db: Path) -> None:
    async with SQLiteStore(db, codec=EncryptionCodec(K1, key_id="k1")) as store:
        await store.session("alice").add_items([user_message("SECRET alice")])
        await store.session("bob").add_items([user_message("SECRET bob")])


async def _read_alice(db: Path, codec: EncryptionCodec) -> CorruptItemError:
    async with SQLiteStore(db, codec=codec) as store:
        with pytest.raises(CorruptItemError) as caught:
            await store.session("alice").get_items()
        with pytest.raises(CorruptItemError):
            await store.session("alice").get_window(max_items=5)
        with pytest.raises(CorruptItemError):
            await store.session("alice").pop_item()
    return caught.value


async def test_a_wrong_key_is_a_corrupt_item_naming_the_key_id(tmp_path: Path) -> None:
    db = tmp_path / "enc.db"
    await _one_item_store(db)
    error = await _read_alice(db, EncryptionCodec(K2, key_id="k1"))
    assert error.session_id == "alice" and error.position == 0
    assert "authentication failed under key id 'k1'" in str(error)
    assert "encryption codec cannot open it" in str(error)


async def test_a_missing_key_id_is_a_corrupt_item_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "enc.db"
    await _one_item_store(db)
    error = await _read_alice(db, EncryptionCodec(K2, key_id="k2"))
    assert "sealed under key id 'k1', which this codec does not hold (it holds 'k2')" in str(error)


async def test_tampered_ciphertext_is_a_corrupt_item(tmp_path: Path) -> None:
    db = tmp_path / "enc.db"
    await _one_item_store(db)
    with sqlite3.connect(db) as conn:
        (data,) = conn.execute("SELECT data FROM threadline_items WHERE sid = 1").fetchone()
        flipped = data[:-20] + bytes([data[-20] ^ 1]) + data[-19:]
        conn.execute("UPDATE threadline_items SET data = ? WHERE sid = 1", (flipped,))
    error = await _read_alice(db, EncryptionCodec(K1, key_id="k1"))
    assert "authentication failed under key id 'k1'" in str(error)


async def test_a_payload_moved_to_another_session_does_not_open(tmp_path: Path) -> None:
    db = tmp_path / "enc.db"
    await _one_item_store(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE threadline_items SET data = (SELECT data FROM threadline_items WHERE sid = 2) "
            "WHERE sid = 1"
        )
    error = await _read_alice(db, EncryptionCodec(K1, key_id="k1"))
    assert "a payload of another session" in str(error)


async def test_a_payload_moved_in_memory_does_not_open() -> None:
    store = InMemoryStore(codec=EncryptionCodec(K1))
    await store.session("a").add_items([user_message("a")])
    await store.session("b").add_items([user_message("b")])
    sessions = store.database.sessions
    sessions["a"].rows[0] = sessions["b"].rows[0]
    with pytest.raises(CorruptItemError, match="authentication failed under key id 'k1'"):
        await store.session("a").get_items()
    assert await store.session("b").get_items() == [user_message("b")]


async def test_reencrypt_one_session_and_refusals(tmp_path: Path) -> None:
    store = InMemoryStore(codec=EncryptionCodec(K1))
    await store.session("a").add_items(_items("a", 1))
    assert await reencrypt(store, "a") == 4
    assert await reencrypt(store, "nobody") == 0
    with pytest.raises(UserError, match="needs a store whose codec is an EncryptionCodec"):
        await reencrypt(InMemoryStore())
    with pytest.raises(UserError, match="cannot search: its encryption codec"):
        await store.search("SECRETa")


async def test_reencrypt_stops_at_an_item_no_key_opens(tmp_path: Path) -> None:
    db = tmp_path / "enc.db"
    await _one_item_store(db)
    async with SQLiteStore(db, codec=EncryptionCodec(K2, key_id="k2")) as store:
        with pytest.raises(CorruptItemError, match="key id 'k1'"):
            await reencrypt(store)
    assert {EncryptionCodec(K1).key_id_of(d) for _, d in _payloads(db)} == {"k1"}


async def test_open_store_takes_the_codec(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'url.db'}"
    async with open_store(url, codec=EncryptionCodec(K1)) as store:
        await store.session("s").add_items([user_message("SECRET")])
        assert "search" not in store.capabilities
    _assert_no_plaintext(tmp_path / "url.db", [user_message("SECRET")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": b"short"}, "must be 32 bytes (got 5 bytes)"),
        ({"key": "x" * 32}, "must be 32 bytes (got str)"),
        ({"key": K1, "key_id": ""}, "key id must be 1 to 64 characters"),
        ({"key": K1, "key_id": "a b"}, "key id must be 1 to 64 characters"),
        ({"key": K1, "old_keys": {"k1": K2}}, "both the current key and an old key"),
        ({"key": K1, "old_keys": [("k0", K2)]}, "old_keys must map key ids to keys"),
        ({"key": K1, "old_keys": {"k0": b"x"}}, "key of key id 'k0' must be 32 bytes"),
    ],
)
def test_bad_keys_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as caught:
        EncryptionCodec(**kwargs)
    assert message in str(caught.value)


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    assert len(key) == 32 and new_key() != key
    monkeypatch.setenv("THREADLINE_ENCRYPTION_KEY", base64.b64encode(key).decode())
    assert key_from_env() == key
    monkeypatch.setenv("MY_KEY", base64.urlsafe_b64encode(key).decode().rstrip("=") + "\n")
    assert key_from_env("MY_KEY") == key
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(UserError, match="variable MY_KEY is not set"):
        key_from_env("MY_KEY")
    monkeypatch.setenv("MY_KEY", "not base64 at all!")
    with pytest.raises(UserError, match="key in MY_KEY is not valid base64"):
        key_from_env("MY_KEY")
    monkeypatch.setenv("MY_KEY", base64.b64encode(b"x" * 16).decode())
    with pytest.raises(UserError, match="MY_KEY is 16 bytes long once decoded; it must be 32"):
        key_from_env("MY_KEY")


def test_importing_sessions_does_not_import_cryptography() -> None:
    code = (
        "import sys, threadline.sessions\n"
        "print(any(m.split('.')[0] == 'cryptography' for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_missing_cryptography_names_the_encryption_extra() -> None:
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from threadline.sessions import EncryptionCodec\n"
        "try:\n"
        "    EncryptionCodec(bytes(32))\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.startswith("MissingDependencyError")
    assert "pip install 'threadline[encryption]'" in out
    assert "'cryptography'" in out
