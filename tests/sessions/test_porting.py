"""Session behaviour an app ported from the OpenAI Agents SDK relies on (issue 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from threadline import Agent, Runner
from threadline.errors import SessionClosedError, SessionError, SettingsError
from threadline.items import user_message
from threadline.sessions import InMemorySession, SessionSettings, SQLiteSession, SQLiteStore
from threadline.testing import ScriptedModel


def history(count: int) -> list[dict[str, Any]]:
    return [user_message(f"m{number}") for number in range(count)]


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    def build(session_id: str, **kwargs: Any) -> Any:
        if request.param == "memory":
            return InMemorySession(session_id, **kwargs)
        if request.param == "sqlite-memory":
            return SQLiteSession(session_id, **kwargs)
        return SQLiteSession(session_id, tmp_path / "ported.db", **kwargs)

    return build


async def test_a_settings_dict_is_coerced(make: Any) -> None:
    session = make("dict", session_settings={"limit": 2})
    assert isinstance(session.session_settings, SessionSettings)
    await session.add_items(history(5))
    assert await session.get_items() == history(5)[-2:]
    agent = Agent(name="A", model=ScriptedModel(["ok"]))
    model_input = await Runner.run(agent, "next", session=session)
    assert model_input.final_output == "ok"


def test_an_unknown_setting_is_a_type_error_naming_it(make: Any) -> None:
    with pytest.raises(SettingsError, match="'limitt'") as caught:
        make("typo", session_settings={"limitt": 1})
    assert isinstance(caught.value, TypeError)
    with pytest.raises(TypeError):
        make("wrong", session_settings=5)


def test_the_default_settings_are_an_object(make: Any) -> None:
    assert make("default").session_settings == SessionSettings()


async def test_the_sdks_own_settings_object_is_read(make: Any) -> None:
    from agents.memory import SessionSettings as SdkSettings

    session = make("sdk", session_settings=SdkSettings(limit=3))
    assert session.session_settings.limit == 3


async def test_get_items_falls_back_to_the_settings_limit(make: Any) -> None:
    session = make("limited", session_settings=SessionSettings(limit=3))
    await session.add_items(history(6))
    assert await session.get_items() == history(6)[-3:]
    assert await session.get_items(limit=5) == history(6)[-5:]
    assert await make("unlimited").get_items() == []


async def test_a_closed_handle_refuses_every_call(make: Any) -> None:
    session = make("closing")
    await session.add_items(history(2))
    session.close()
    session.close()  # twice is fine
    calls = [
        session.get_items(),
        session.add_items([]),
        session.add_items(history(1)),
        session.pop_item(),
        session.clear_session(),
        session.get_window(max_items=1),
        session.pop_turn(),
        session.replace_items([]),
        session.fork("elsewhere"),
    ]
    for pending in calls:
        with pytest.raises(RuntimeError, match="'closing' is closed"):
            await pending
    with pytest.raises(SessionClosedError):
        async with session.lease():
            pass
    assert session.closed


async def test_a_closed_handle_stays_closed_while_others_are_open(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first, second = SQLiteSession("s", path), SQLiteSession("s", path)
    await first.add_items(history(1))
    first.close()
    with pytest.raises(SessionClosedError):
        await first.add_items(history(1))
    assert await second.get_items() == history(1)
    second.close()


async def test_a_closed_store_closes_its_handles(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    session = store.session("s")
    await session.add_items(history(1))
    await store.aclose()
    with pytest.raises(SessionClosedError) as caught:
        await session.get_items()
    assert isinstance(caught.value, SessionError) and isinstance(caught.value, RuntimeError)
