"""Export and import across backends: memory -> SQLite -> encrypted SQLite -> memory."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from threadline.errors import UserError
from threadline.items import assistant_message, function_call, function_call_output, user_message
from threadline.sessions import EncryptionCodec, InMemoryStore, SQLiteStore

from ..backends import TEST_KEY


async def test_a_session_travels_across_backends(tmp_path: Path) -> None:
    history = [
        user_message("Plan a trip to SF \u2028 with a line separator"),
        function_call("c1", "flights", '{"to": "SFO"}'),
        function_call_output("c1", "3 flights"),
        assistant_message("Three flights found."),
    ]
    records = {"usage": {"turns": 1, "requests": 2}, "summary/0001": {"covers": [0, 4]}}
    stores = [
        InMemoryStore(),
        SQLiteStore(tmp_path / "plain.db"),
        SQLiteStore(tmp_path / "sealed.db", codec=EncryptionCodec(TEST_KEY, key_id="k1")),
        InMemoryStore(codec=EncryptionCodec(TEST_KEY, key_id="k2")),
        InMemoryStore(),
    ]
    first = stores[0].session("trip")
    await first.add_items(history)
    await first.set_metadata({"title": "Trip", "user": "u1"})
    await first.put_records(records)
    for hop, (source, target) in enumerate(itertools.pairwise(stores)):
        path = tmp_path / f"hop-{hop}.jsonl"
        assert await source.export_jsonl("trip", path) == 4
        result = await target.import_jsonl(path)
        assert result.session_id == "trip" and result.items == 4 and result.records == 3
        moved = target.session("trip")
        assert await moved.get_items() == history
        assert await moved.get_metadata() == {"title": "Trip", "user": "u1"}
        assert await moved.list_records("s") == {"summary/0001": {"covers": [0, 4]}}
        assert await moved.get_record("usage") == records["usage"]
    # The sealed store keeps no plaintext, yet exports the same file as the plain one.
    lines = [(tmp_path / f"hop-{n}.jsonl").read_text().splitlines()[1:] for n in (1, 2)]
    assert lines[0] == lines[1]
    assert b"Plan a trip" not in (tmp_path / "sealed.db").read_bytes()
    for store in stores:
        await store.aclose()


async def test_a_store_without_records_imports_items_only(tmp_path: Path) -> None:
    """A backend without "records": metadata in the file is refused unless appending."""
    from threadline.sessions import Store
    from threadline.sessions.codec import JsonCodec
    from threadline.sessions.memory import InMemoryBackend, InMemoryDatabase

    class NoRecords(InMemoryBackend):
        capabilities = InMemoryBackend.capabilities - {"records"}

    source = InMemoryStore()
    await source.session("s").add_items([user_message("hi")])
    await source.session("s").set_metadata({"title": "x"})
    path = tmp_path / "s.jsonl"
    await source.export_jsonl("s", path)
    plain = Store(NoRecords(InMemoryDatabase(), JsonCodec()))
    with pytest.raises(UserError, match="mode='append'"):
        await plain.import_jsonl(path)
    result = await plain.import_jsonl(path, mode="append")
    assert result.items == 1 and await plain.session("s").get_items() == [user_message("hi")]
    with pytest.raises(UserError, match="records"):
        await plain.list_sessions(metadata={"title": "x"})
    header = json.loads(path.read_text().splitlines()[0])
    assert header["metadata"] == {"title": "x"}
