"""The harness shared by the conformance tests: the factory fixture and helpers."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from ...items import Item, assistant_message, function_call, function_call_output, user_message
from ..base import capabilities_of

__all__ = ["ConformanceHarness", "SessionFactory", "asyncio_test", "sample_history"]

SessionFactory = Callable[[str], Any]
"""Returns a new session handle for a session id, or an awaitable of one."""

asyncio_test = pytest.mark.asyncio
"""Marks each async test, so the suite also runs under pytest-asyncio's strict mode."""


def sample_history() -> list[Item]:
    """Three turns: plain, with a tool call, plain; ten items."""
    return [
        user_message("What city is the Golden Gate Bridge in?"),
        assistant_message("San Francisco."),
        user_message("And the weather there?"),
        function_call("call_1", "get_weather", '{"city": "San Francisco"}'),
        function_call_output("call_1", "foggy, 14 C"),
        assistant_message("Foggy and 14 C."),
        user_message("What state is it in?"),
        {"type": "reasoning", "id": "rs_1", "summary": []},
        assistant_message("California."),
        {"role": "system", "content": "note"},
    ]


class ConformanceHarness:
    """What every conformance test class has: the factory fixture and two helpers."""

    capabilities: ClassVar[frozenset[str] | None] = None
    """Optional capabilities to test; ``None`` tests every one the session implements."""

    stateful_examples: ClassVar[int] = 30
    """How many random operation sequences the stateful test tries."""

    @pytest.fixture
    def make_session(self) -> SessionFactory:
        """Override in the subclass: a factory of session handles."""
        raise NotImplementedError("override the make_session fixture in your test class")

    async def new(self, make_session: SessionFactory, session_id: str) -> Any:
        """A session from the factory (awaited if the factory is async)."""
        session = make_session(session_id)
        if inspect.isawaitable(session):
            session = await session
        return session

    def require(self, session: Any, capability: str) -> None:
        """Skip the current test unless the backend offers ``capability``."""
        offered = self.capabilities if self.capabilities is not None else capabilities_of(session)
        if capability not in offered:
            pytest.skip(f"the backend does not offer {capability!r}")
