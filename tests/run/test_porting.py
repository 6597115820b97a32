"""Runner behaviour a port from the OpenAI Agents SDK relies on (issue 9's differences)."""

from __future__ import annotations

from typing import Any

import pytest

from threadline import Agent, RunContextWrapper, Runner
from threadline.errors import SessionError
from threadline.items import Item
from threadline.testing import ScriptedModel, call


class TenantSession:
    """The SDK's opt-in: every contract method declares ``wrapper`` to route by tenant."""

    def __init__(self) -> None:
        self.session_id = "shared-id"
        self.by_tenant: dict[str, list[Item]] = {}
        self.calls: list[tuple[str, Any]] = []

    def _items(self, wrapper: RunContextWrapper[Any] | None) -> list[Item]:
        tenant = "default" if wrapper is None else wrapper.context["tenant"]
        return self.by_tenant.setdefault(tenant, [])

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[Item]:
        self.calls.append(("get_items", wrapper))
        items = self._items(wrapper)
        return list(items if limit is None else items[-limit:])

    async def add_items(
        self, items: list[Item], *, wrapper: RunContextWrapper[Any] | None = None
    ) -> None:
        self.calls.append(("add_items", wrapper))
        self._items(wrapper).extend(items)

    async def pop_item(self, *, wrapper: RunContextWrapper[Any] | None = None) -> Item | None:
        items = self._items(wrapper)
        return items.pop() if items else None

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        self._items(wrapper).clear()


async def test_sessions_that_declare_wrapper_get_the_run_context() -> None:
    session = TenantSession()
    agent = Agent(name="A", model=ScriptedModel(["for a", "for b", "a again"]))
    await Runner.run(agent, "hello a", session=session, context={"tenant": "a"})
    await Runner.run(agent, "hello b", session=session, context={"tenant": "b"})
    await Runner.run(agent, "a again", session=session, context={"tenant": "a"})
    assert set(session.by_tenant) == {"a", "b"}
    assert [i.get("content") for i in session.by_tenant["a"] if i.get("role") == "user"] == [
        "hello a",
        "a again",
    ]
    assert all(wrapper is not None for _, wrapper in session.calls)


class NoLimitSession:
    """A custom session whose ``get_items`` takes no ``limit`` at all."""

    def __init__(self) -> None:
        self.session_id = "plain"
        self.items: list[Item] = []

    async def get_items(self) -> list[Item]:
        return list(self.items)

    async def add_items(self, items: list[Item]) -> None:
        self.items.extend(items)

    async def pop_item(self) -> Item | None:
        return self.items.pop() if self.items else None

    async def clear_session(self) -> None:
        self.items.clear()


async def test_get_items_is_called_without_a_limit_when_none_applies() -> None:
    session = NoLimitSession()
    agent = Agent(name="A", model=ScriptedModel(["one", "two"]))
    await Runner.run(agent, "first", session=session)
    await Runner.run(agent, "second", session=session)
    assert [i.get("role") or i.get("type") for i in session.items] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


class FailingSaves(NoLimitSession):
    """Saves the input, then fails every later write."""

    async def add_items(self, items: list[Item]) -> None:
        if self.items:
            raise SessionError("the disk is full")
        self.items.extend(items)


async def test_a_streamed_handoff_is_reported_before_its_save_fails() -> None:
    model = ScriptedModel([[call("transfer_to_b", {})], "B speaking"])
    b = Agent(name="B", model=model)
    a = Agent(name="A", model=model, handoffs=[b])
    result = Runner.run_streamed(a, "x", session=FailingSaves())
    agents = []
    with pytest.raises(SessionError, match="disk is full"):
        async for event in result.stream_events():
            if event.type == "agent_updated_stream_event":
                agents.append(event.new_agent.name)
    assert agents == ["A", "B"]
