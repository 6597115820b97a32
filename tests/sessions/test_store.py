"""open_store URLs, settings spellings, codecs and the schema migration that adds search."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from threadline.errors import CorruptItemError, SessionBusyError, UserError
from threadline.items import assistant_message, user_message
from threadline.sessions import (
    InMemorySession,
    InMemoryStore,
    SessionSettings,
    SQLiteSession,
    SQLiteStore,
    capabilities_of,
    open_store,
    search_terms,
    store_schemes,
)
from threadline.sessions.sqlite._schema import MIGRATIONS, SCHEMA_VERSION

from ..backends import ScrambleCodec

# ---------------------------------------------------------------------- open_store


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///rel/chat.db", "rel/chat.db"),
        ("chat.db", "chat.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
async def test_sqlite_urls(url: str, expected: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    store = open_store(url)
    try:
        assert isinstance(store, SQLiteStore)
        want = expected if expected == ":memory:" else str((tmp_path / expected).resolve())
        assert store.db_path == want
        await store.session("s").add_items([user_message("x")])
    finally:
        await store.aclose()


async def test_absolute_sqlite_url_and_options(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/abs.db?synchronous=normal&lock_timeout=2")
    try:
        assert store.db_path == str(tmp_path / "abs.db")
        level = await store._engine.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert level == 1 and store._engine.lock_timeout == 2
    finally:
        await store.aclose()


def test_memory_url() -> None:
    assert isinstance(open_store("memory://"), InMemoryStore)
    assert store_schemes() == [
        "memory",
        "postgres",
        "postgresql",
        "redis",
        "redis+cluster",
        "rediss",
        "rediss+cluster",
        "sqlite",
    ]


@pytest.mark.parametrize(
    "url, problem",
    [
        ("mongodb://h/db", "unknown store URL scheme 'mongodb://'"),
        ("sqlite://somehost/x.db", "names a file, not a host"),
        ("sqlite:///x.db?readers=many", "readers='many'"),
        ("sqlite:///x.db?cache=big", "unknown option 'cache'"),
        ("sqlite:///", "names no database file"),
        ("memory://elsewhere", "nothing after the scheme"),
        ("", "non-empty"),
    ],
)
def test_bad_store_urls_are_user_errors(url: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem.replace("(", r"\(").replace("?", r"\?")):
        open_store(url)


def test_an_unknown_scheme_never_echoes_a_password() -> None:
    with pytest.raises(UserError) as caught:
        open_store("mysql://app:s3cret@db.internal/chat")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


# ---------------------------------------------------------------------- settings spellings


def test_math_inf_is_the_spelling_of_no_bound() -> None:
    assert SessionSettings(lease_timeout=math.inf).effective_timeout is None
    assert SessionSettings().effective_timeout is None
    assert SessionSettings(lease_timeout=2).effective_timeout == 2.0
    finite = SessionSettings(lease_timeout=0.5)
    assert finite.resolve(SessionSettings(lease_timeout=math.inf)).effective_timeout is None
    assert finite.resolve(SessionSettings()).effective_timeout == 0.5


@pytest.mark.parametrize(
    "kwargs", [{"lease_timeout": math.nan}, {"lease_ttl": math.inf}, {"lease_ttl": math.nan}]
)
def test_nan_and_infinite_ttls_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UserError, match=next(iter(kwargs))):
        SessionSettings(**kwargs)


async def test_busy_error_names_the_holder() -> None:
    store = InMemoryStore()
    session = store.session("held")
    async with session.lease():
        other = InMemoryStore(store.database).session("held")
        with pytest.raises(SessionBusyError) as caught:
            async with other.lease(wait=False):
                pass
    message = str(caught.value)
    assert caught.value.holder is not None and caught.value.holder.startswith("pid ")
    assert "lease runs out in" in message and caught.value.holder in message


def test_handles_declare_their_capabilities() -> None:
    assert capabilities_of(InMemorySession("x")) == {
        "window",
        "pop_turn",
        "replace",
        "fork",
        "lease",
        "records",
    }
    assert "search" in InMemoryStore().capabilities
    assert "shared" not in SQLiteStore(":memory:").capabilities


def test_search_terms_follow_the_index_rules() -> None:
    assert search_terms("Golden-Gate café_au_lait 42!") == [
        "golden",
        "gate",
        "cafe",
        "au",
        "lait",
        "42",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Hello World 42",
        "ASCII only: tabs\tand\nnew lines, PUNCTUATION!?",
        "",
        "Straße",
        "ﬁne Ǆ café",
        "İstanbul ΣΊΣΥΦΟΣ",
        "mixed ASCII and Ångström",
    ],
)
def test_fold_fast_path_matches_the_unicode_rules(text: str) -> None:
    import unicodedata

    from threadline.sessions._search import fold

    folded = unicodedata.normalize("NFKD", text.casefold())
    expected = "".join(ch for ch in folded if not unicodedata.combining(ch))
    assert fold(text) == expected


# ---------------------------------------------------------------------- codecs


async def test_a_codec_keeps_plaintext_out_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sealed.db"
    store = SQLiteStore(path, codec=ScrambleCodec())
    secret = "the launch code is swordfish-9931"
    session = store.session("vault")
    await session.add_items([user_message(secret), assistant_message("noted: swordfish-9931")])
    assert await session.get_items(limit=1) == [assistant_message("noted: swordfish-9931")]
    assert "search" not in store.capabilities
    with pytest.raises(UserError, match="scramble codec keeps item text out"):
        await store.search("swordfish")
    await store.aclose()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # noqa: ASYNC240
    assert b"swordfish" not in data and b"launch" not in data
    reopened = SQLiteStore(path)  # the wrong codec: payloads are reported, never garbage
    try:
        with pytest.raises(Exception, match="corrupt"):
            await reopened.session("vault").get_items()
    finally:
        await reopened.aclose()


# ---------------------------------------------------------------------- migration to v2


async def test_a_version_1_file_gains_search_and_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)  # type: ignore[arg-type]
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO threadline_sessions VALUES (1, 'old', 3, 100.0, 200.0), "
        "(2, 'older', 1, 50.0, 60.0)"
    )
    rows = [
        (1, 0, 1, None, 5, json.dumps(user_message("Where is the Golden Gate?"))),
        (1, 1, 0, None, 5, json.dumps(assistant_message("San Francisco."))),
        (1, 2, 0, None, 5, "not json at all"),
        (2, 0, 1, None, 5, json.dumps(user_message("golden hour"))),
    ]
    conn.executemany("INSERT INTO threadline_items VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("INSERT INTO threadline_leases VALUES ('old', 'someone', 0)")
    conn.close()
    store = SQLiteStore(path)
    try:
        await store.setup()
        hits = await store.search("golden", limit=10)
        assert sorted((h.session_id, h.position) for h in hits) == [("old", 0), ("older", 0)]
        assert [i.session_id for i in await store.list_sessions()] == ["old", "older"]
        with pytest.raises(CorruptItemError, match="position 2"):  # still reported
            await store.session("old").get_items(limit=1)
        assert await store.session("older").get_items() == [user_message("golden hour")]
        async with store.session("old").lease() as lease:
            assert lease.epoch == 1
    finally:
        await store.aclose()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert check.execute(
        "INSERT INTO threadline_fts(threadline_fts) VALUES ('integrity-check')"
    ).rowcount in (-1, 0, 1)
    check.close()


async def test_sqlite_session_spelling_is_unchanged(tmp_path: Path) -> None:
    session = SQLiteSession("user_123", tmp_path / "conversations.db")
    await session.add_items([user_message("hi")])
    assert session.store.session("user_123").db_path == session.db_path
    assert await session.store.session("user_123").get_items() == [user_message("hi")]
    session.close()


# ---------------------------------------------------------------------- migration to v3


async def test_a_version_2_file_gains_records_and_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for steps in MIGRATIONS[:2]:
        for step in steps:
            step(conn) if callable(step) else conn.execute(step)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO threadline_sessions VALUES (1, 'old', 1, 100.0, 200.0, 0)")
    conn.execute(
        "INSERT INTO threadline_items VALUES (1, 0, 1, NULL, 5, ?)",
        (json.dumps(user_message("kept")),),
    )
    conn.close()
    store = SQLiteStore(path)
    try:
        session = store.session("old")
        assert await session.get_items() == [user_message("kept")]
        await session.put_records({"meta": {"title": "kept"}})
        assert await session.get_record("meta") == {"title": "kept"}
    finally:
        await store.aclose()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()


async def test_a_version_3_file_gains_shared_forks_and_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for steps in MIGRATIONS[:3]:
        for step in steps:
            step(conn) if callable(step) else conn.execute(step)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO threadline_sessions VALUES (1, 'old', 2, 100.0, 200.0, 0)")
    history = [user_message("kept"), user_message("too")]
    conn.executemany(
        "INSERT INTO threadline_items VALUES (1, ?, 1, NULL, 5, ?)",
        [(seq, json.dumps(item)) for seq, item in enumerate(history)],
    )
    conn.close()
    store = SQLiteStore(path)
    try:
        session = store.session("old")
        assert await session.get_items() == history
        fork = await session.fork("new", at=1)
        await session.pop_item()
        await session.pop_item()
        assert await fork.get_items() == history[:1] and await session.get_items() == []
    finally:
        await store.aclose()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    check.close()


async def test_a_record_moved_to_another_key_or_session_is_corrupt(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "moved.db")
    try:
        await store.session("a").put_records({"meta": "mine", "usage": 1})
        await store.session("b").put_records({"meta": "theirs"})

        def tamper(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE threadline_records SET data = (SELECT data FROM threadline_records "
                "WHERE key = 'usage') WHERE key = 'meta' AND sid = 1"
            )

        await store._engine.write(tamper)
        with pytest.raises(CorruptItemError, match=r"record 'meta'.*not stored under this key"):
            await store.session("a").get_record("meta")
        assert await store.session("a").get_record("usage") == 1
        assert await store.session("b").get_record("meta") == "theirs"
    finally:
        await store.aclose()
