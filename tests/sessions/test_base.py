"""The contract types: protocols, settings, capabilities, token estimates, windows, exports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import threadline.sessions as sessions
from threadline.errors import UserError
from threadline.items import (
    Item,
    assistant_message,
    function_call,
    function_call_output,
    user_message,
)
from threadline.sessions import (
    CAPABILITIES,
    InMemorySession,
    Session,
    SessionSettings,
    SQLiteSession,
    ThreadlineSession,
    capabilities_of,
    estimate_tokens,
)
from threadline.sessions._window import window_size
from threadline.sessions.codec import encode_items
from threadline.sessions.testing._reference import reference_window

from .test_lease import PlainSession


def test_public_names_are_complete_and_sorted() -> None:
    public = {name for name in dir(sessions) if not name.startswith("_")}
    modules = {
        "backend",
        "base",
        "codec",
        "encryption",
        "lease",
        "memory",
        "pending",
        "postgres",
        "redis",
        "sqlite",
        "store",
        "testing",
        "transfer",
        "annotations",
    }
    assert set(sessions.__all__) == public - modules
    assert len(sessions.__all__) == len(set(sessions.__all__))  # ruff (RUF022) keeps it sorted
    for name in sessions.__all__:
        assert getattr(sessions, name).__doc__ or name in ("CAPABILITIES", "DEFAULT_LEASE_TTL")


def test_backends_satisfy_both_protocols() -> None:
    memory, sqlite = InMemorySession("p"), SQLiteSession("p")
    try:
        for session in (memory, sqlite):
            assert isinstance(session, Session)
            assert isinstance(session, ThreadlineSession)
            assert capabilities_of(session) == CAPABILITIES
    finally:
        sqlite.close()
    plain = PlainSession("p")
    assert isinstance(plain, Session)
    assert not isinstance(plain, ThreadlineSession)
    assert capabilities_of(plain) == frozenset()


def test_settings_resolve_overlays_only_what_is_set() -> None:
    base = SessionSettings(limit=50, wait_for_lease=False, lease_ttl=10)
    assert base.resolve(None) is base
    resolved = base.resolve(SessionSettings(max_tokens=4000))
    assert resolved == SessionSettings(
        limit=50, max_tokens=4000, wait_for_lease=False, lease_ttl=10
    )
    assert base.resolve({"limit": 5, "wait_for_lease": True}).limit == 5
    assert base.resolve({"limit": 5, "wait_for_lease": True}).wait_for_lease is True

    @dataclass
    class ForeignSettings:  # e.g. the OpenAI Agents SDK's SessionSettings
        limit: int | None = None

    assert base.resolve(ForeignSettings(limit=3)) == SessionSettings(
        limit=3, wait_for_lease=False, lease_ttl=10
    )


def test_settings_defaults() -> None:
    unset = SessionSettings()
    assert unset.effective_wait is True
    assert unset.effective_ttl == 30.0
    assert SessionSettings(wait_for_lease=False, lease_ttl=2).effective_wait is False
    assert SessionSettings(lease_ttl=2).effective_ttl == 2.0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"limit": -1}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"max_tokens": True}, "max_tokens"),
        ({"wait_for_lease": "yes"}, "wait_for_lease"),
        ({"lease_timeout": -0.5}, "lease_timeout"),
        ({"lease_ttl": 0}, "lease_ttl"),
    ],
)
def test_bad_settings_are_user_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(UserError, match=field):
        SessionSettings(**kwargs)


def test_token_estimate_is_about_a_quarter_of_the_json() -> None:
    item = user_message("x" * 400)
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    assert estimate_tokens(item) == estimate_tokens(text) == -(-len(text) // 4)
    assert estimate_tokens("") == 1
    assert encode_items([item])[0].tokens == estimate_tokens(item)


_units = st.sampled_from(
    [
        [user_message("question")],
        [assistant_message("an answer of some length")],
        [function_call("a", "f", "{}"), function_call_output("a", "1")],
        [function_call("b", "g", "{}")],
        [function_call_output("b", "2")],
        [{"type": "reasoning", "id": "r", "summary": []}],
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    units=st.lists(_units, max_size=12),
    max_items=st.none() | st.integers(0, 15),
    max_tokens=st.none() | st.integers(0, 120),
)
def test_window_selection_matches_the_reference(
    units: list[list[Item]], max_items: int | None, max_tokens: int | None
) -> None:
    history = [item for unit in units for item in unit]
    rows = [(row.kind, row.call_id, row.tokens) for row in encode_items(history)]
    size = window_size(reversed(rows), max_items, max_tokens)
    assert size == len(reference_window(history, max_items, max_tokens))


async def test_an_unordered_batch_is_refused() -> None:
    from threadline.errors import UserError
    from threadline.sessions import InMemorySession

    session = InMemorySession("unordered")
    batch = (item for item in [{"role": "user", "content": "a"}])
    with pytest.raises(UserError, match="list of dicts, got generator"):
        await session.add_items(batch)  # type: ignore[arg-type]
    assert await session.get_items() == []
