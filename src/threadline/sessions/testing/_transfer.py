"""Store-level conformance tests of export and import (the JSON lines format)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ...errors import UserError
from ...items import assistant_message, function_call, function_call_output, user_message
from ..transfer import EXPORT_FORMAT, EXPORT_VERSION
from ._harness import ConformanceHarness, asyncio_test

__all__ = ["TransferTests"]


def _history() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "be brief"},
        user_message('Line\u2028separator, tab\t, quote " and ünïcode 🙂'),
        function_call("c1", "lookup", '{"q": "x"}'),
        function_call_output("c1", "found"),
        assistant_message("Done."),
    ]


class TransferTests(ConformanceHarness):
    """``store.export_jsonl`` / ``store.import_jsonl``."""

    @asyncio_test
    async def test_export_then_import_round_trip(self, store: Any, tmp_path: Path) -> None:
        session = store.session("export-src")
        await session.add_items(_history())
        records = "records" in store.capabilities
        if records:
            await session.set_metadata({"title": "T", "user": "u1"})
            await session.put_records({"notes/1": {"a": [1, 2]}})
        path = tmp_path / "out.jsonl"
        assert await store.export_jsonl("export-src", path) == len(_history())
        lines = path.read_text(encoding="utf-8").split("\n")
        header = json.loads(lines[0])
        assert header["format"] == EXPORT_FORMAT and header["version"] == EXPORT_VERSION
        assert header["session_id"] == "export-src" and header["item_count"] == 5
        assert [json.loads(line) for line in lines[1:] if line] == _history()
        if records:
            assert header["metadata"] == {"title": "T", "user": "u1"}
            assert header["records"] == {"notes/1": {"a": [1, 2]}}
        result = await store.import_jsonl(path, session_id="export-copy")
        assert (result.session_id, result.items, result.version) == ("export-copy", 5, 1)
        copy = store.session("export-copy")
        assert await copy.get_items() == _history()
        if records:
            assert await copy.get_metadata() == {"title": "T", "user": "u1"}
            assert await copy.get_record("notes/1") == {"a": [1, 2]}
        # Without session_id the header's id is used, and an existing session is refused.
        with pytest.raises(UserError, match="already exists"):
            await store.import_jsonl(path)

    @asyncio_test
    async def test_bad_line_writes_nothing(self, store: Any, tmp_path: Path) -> None:
        path = tmp_path / "bad.jsonl"
        header = {"format": EXPORT_FORMAT, "version": 1, "session_id": "bad-import"}
        good = [json.dumps(item) for item in _history()]
        cases = [
            ("{not json", "not valid JSON"),
            ('{"type": 5, "content": "x"}', "'type' must be a string"),
            ('{"role": "user", "content": NaN}', "NaN"),
            ("[1, 2]", "dict"),
        ]
        for bad, problem in cases:
            lines = [json.dumps(header), *good[:2], bad, *good[2:]]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            with pytest.raises(UserError, match=rf"bad.jsonl:4\b.*{problem}"):
                await store.import_jsonl(path)
            assert await store.session_info("bad-import") is None
        path.write_bytes(json.dumps(header).encode() + b"\n" + good[0].encode() + b"\n\xff\n")
        with pytest.raises(UserError, match=r"bad.jsonl:3 is not UTF-8"):
            await store.import_jsonl(path)
        lines = [json.dumps(header), good[0], json.dumps(function_call("c9", "f", "{}"))]
        path.write_text("\n".join(lines), encoding="utf-8")
        with pytest.raises(UserError, match=r"bad.jsonl:3: .*no function_call_output"):
            await store.import_jsonl(path)
        assert await store.session_info("bad-import") is None

    @asyncio_test
    async def test_headers_are_checked(self, store: Any, tmp_path: Path) -> None:
        path = tmp_path / "h.jsonl"
        for header, problem in [
            ({"format": "something.else", "version": 1}, "not a threadline session export"),
            ({"format": EXPORT_FORMAT, "version": EXPORT_VERSION + 1}, "newer"),
            ({"format": EXPORT_FORMAT, "version": "1"}, "version"),
        ]:
            path.write_text(json.dumps(header) + "\n", encoding="utf-8")
            with pytest.raises(UserError, match=problem):
                await store.import_jsonl(path, session_id="headers")
        assert await store.session_info("headers") is None

    @asyncio_test
    async def test_modes(self, store: Any, tmp_path: Path) -> None:
        source = store.session("modes-src")
        await source.add_items(_history()[:2])
        records = "records" in store.capabilities
        if records:
            await source.set_metadata({"from": "file"})
        path = tmp_path / "modes.jsonl"
        await store.export_jsonl("modes-src", path)
        target = store.session("modes-dst")
        await target.add_items([user_message("mine")])
        if records:
            await target.set_metadata({"from": "target"})
            await target.put_records({"old/1": 1})
        result = await store.import_jsonl(path, session_id="modes-dst", mode="append")
        assert result.items == 2 and result.records == 0
        assert await target.get_items() == [user_message("mine"), *_history()[:2]]
        if records:
            assert await target.get_metadata() == {"from": "target"}
        await store.import_jsonl(path, session_id="modes-dst", mode="replace")
        assert await target.get_items() == _history()[:2]
        if records:
            assert await target.list_records() == {"metadata": {"from": "file"}}
        with pytest.raises(UserError, match="mode"):
            await store.import_jsonl(path, session_id="modes-dst", mode="merge")

    @asyncio_test
    async def test_old_plain_format_and_file_objects(self, store: Any, tmp_path: Path) -> None:
        path = tmp_path / "plain.jsonl"
        path.write_text("\n".join(json.dumps(i) for i in _history()) + "\n\n", encoding="utf-8")
        with pytest.raises(UserError, match="pass session_id"):
            await store.import_jsonl(path)
        result = await store.import_jsonl(path, session_id="plain")
        assert result.version == 0 and result.items == 5
        assert await store.session("plain").get_items() == _history()
        out = io.StringIO()
        assert await store.export_jsonl("plain", out) == 5
        back = await store.import_jsonl(io.StringIO(out.getvalue()), session_id="plain-2")
        assert back.version == 1
        assert await store.session("plain-2").get_items() == _history()
        with pytest.raises(UserError, match="no session"):
            await store.export_jsonl("missing", tmp_path / "missing.jsonl")
        assert not (tmp_path / "missing.jsonl").exists()

    @asyncio_test
    async def test_empty_session_round_trip(self, store: Any, tmp_path: Path) -> None:
        session = store.session("empty-export")
        await session.add_items([user_message("x")])
        await session.clear_session()
        path = tmp_path / "empty.jsonl"
        assert await store.export_jsonl("empty-export", path) == 0
        await store.import_jsonl(path, session_id="empty-import")
        info = await store.session_info("empty-import")
        assert info is not None and info.item_count == 0

    @asyncio_test
    async def test_blank_lines_escapes_and_line_endings(self, store: Any, tmp_path: Path) -> None:
        header = json.dumps({"format": EXPORT_FORMAT, "version": 1, "session_id": "odd-lines"})
        lines = [
            "",
            header,
            "   ",
            '{"role": "user", "content": "caf\\u00e9, spaced"}',
            "",
            '  {"role":"assistant","content":"padded"}  ',
            '{"role":"user","content":"crlf"}\r',
        ]
        path = tmp_path / "odd.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = await store.import_jsonl(path)
        assert result.session_id == "odd-lines" and result.items == 3
        items = await store.session("odd-lines").get_items()
        assert items == [
            {"role": "user", "content": "café, spaced"},
            {"role": "assistant", "content": "padded"},
            {"role": "user", "content": "crlf"},
        ]
        out = tmp_path / "again.jsonl"
        await store.export_jsonl("odd-lines", out)
        body = out.read_text(encoding="utf-8").split("\n")[1:]
        assert body[0] == '{"role":"user","content":"café, spaced"}'  # escapes re-encoded
        assert [json.loads(line) for line in body if line] == items
        lines.insert(5, '{"role": "user", "content": "\\ud800"}')  # a lone surrogate, line 6
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.raises(UserError, match=r"odd.jsonl:6: .*not valid Unicode"):
            await store.import_jsonl(path, session_id="odd-2")
        assert await store.session_info("odd-2") is None
