"""Export and import across backends: memory -> SQLite -> encrypted SQLite -> memory."""

from __future__ import annotations

import io
import itertools
import json
import sqlite3
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


def _export_file(path: Path, lines: list[str], session_id: str = "checked") -> Path:
    header = {"format": "threadline.session", "version": 1, "session_id": session_id}
    path.write_text("\n".join([json.dumps(header), *lines]) + "\n", encoding="utf-8")
    return path


async def test_lines_that_join_into_other_objects_are_refused(tmp_path: Path) -> None:
    """Decoding many lines at once cannot be fooled: a line that is not one whole object is
    named even when its neighbours would make up for it (an open string swallowing the
    separator after it, a line holding two objects)."""
    store = SQLiteStore(tmp_path / "s.db")
    lines = ['{"role":"user","content":"ok"}', '{"a":"}', '{","b":1}', '{"c":1},{"d":2}']
    path = _export_file(tmp_path / "tricky.jsonl", lines)
    with pytest.raises(UserError, match=r"tricky.jsonl:3 is not valid JSON"):
        await store.import_jsonl(path)
    assert await store.session_info("checked") is None
    await store.aclose()


def _nested(depth: int, text: str = "x") -> dict[str, object]:
    value: object = text
    for _ in range(depth - 1):
        value = [value]
    return {"role": "user", "content": "deep", "extra": value}


async def test_depth_is_checked_on_every_line(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    brackets = {"role": "user", "content": "[[[[" * 100 + "{{{{" * 100}  # in a string: fine
    fine = [json.dumps(brackets), json.dumps(_nested(100)), json.dumps(user_message("hi"))]
    path = _export_file(tmp_path / "fine.jsonl", fine)
    assert (await store.import_jsonl(path)).items == 3
    assert await store.session("checked").get_items() == [
        brackets,
        _nested(100),
        user_message("hi"),
    ]
    deep = [json.dumps(user_message("a")), json.dumps(_nested(101)), json.dumps(user_message("b"))]
    path = _export_file(tmp_path / "deep.jsonl", deep, "deep")
    with pytest.raises(UserError, match=r"deep.jsonl:3: .*nests deeper than 100"):
        await store.import_jsonl(path)
    assert await store.session_info("deep") is None
    await store.aclose()


async def test_checks_and_kinds_of_every_item_type(tmp_path: Path) -> None:
    """Messages take the short path, everything else the full check; the kinds found on the
    way are the ones add_items stores (turn starts for fork(at_turn=), pairs for windows)."""
    history = [
        {"role": "system", "content": "sys"},
        user_message("one"),
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
        function_call("c1", "f", "{}"),
        {"type": "reasoning", "summary": []},
        function_call_output("c1", "out"),
        {"type": "custom_tool_call", "call_id": "k1", "name": "g", "input": "?"},
        {"type": "custom_tool_call_output", "call_id": "k1", "output": "!"},
        {"role": "user", "content": "two", "type": None},
        {"content": "no role"},
        assistant_message("done"),
        user_message("three"),
    ]
    plain = SQLiteStore(tmp_path / "a.db")
    await plain.session("direct").add_items(history)
    path = tmp_path / "kinds.jsonl"
    await plain.export_jsonl("direct", path)
    await plain.import_jsonl(path, session_id="imported")
    imported = plain.session("imported")
    assert await imported.get_items() == history

    def columns(session_id: str) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(tmp_path / "a.db")
        try:
            return conn.execute(
                "SELECT i.kind, i.call_id, i.tokens, i.data FROM threadline_items AS i "
                "JOIN threadline_sessions AS s ON s.sid = i.sid WHERE s.session_id = ? "
                "ORDER BY i.seq",
                (session_id,),
            ).fetchall()
        finally:
            conn.close()

    assert columns("imported") == columns("direct")
    window = await imported.get_window(max_items=3)
    assert window == await plain.session("direct").get_window(max_items=3)
    forked = await imported.fork("turns", at_turn=-1)
    assert await forked.get_items() == history[:-1]
    bad = [json.dumps(item) for item in history if item.get("call_id") != "k1" or "name" in item]
    path = _export_file(tmp_path / "unpaired.jsonl", bad, "unpaired")
    with pytest.raises(UserError, match=r"unpaired.jsonl:8: item 6 is a call \(call_id 'k1'\)"):
        await plain.import_jsonl(path)
    await plain.aclose()


async def test_nan_and_surrogates_in_text_sources(tmp_path: Path) -> None:
    store = InMemoryStore()
    good = json.dumps(user_message("fine"))
    for bad, problem in [
        ('{"role":"user","content":Infinity}', "Infinity is not JSON"),
        ('{"role":"user","content":"\\udc00"}', "not valid Unicode"),
    ]:
        lines = [good] * 1500 + [bad] + [good] * 10
        path = _export_file(tmp_path / "big.jsonl", lines, "big")
        with pytest.raises(UserError, match=rf"big.jsonl:1502\b.*{problem}"):
            await store.import_jsonl(path)
    header = json.dumps({"format": "threadline.session", "version": 1, "session_id": "s"})
    text = "\n".join([header, good, '{"role":"user","content":"\ud800"}'])
    with pytest.raises(UserError, match=r"the file:3 is not valid Unicode"):
        await store.import_jsonl(io.StringIO(text))
    assert await store.session_info("big") is None and await store.session_info("s") is None
    await store.aclose()
