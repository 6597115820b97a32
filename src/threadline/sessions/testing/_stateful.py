"""The stateful part of the conformance suite: a backend against a plain Python list.

Hypothesis drives random sequences of ``add_items`` / ``get_items(limit)`` / ``pop_item`` /
``clear_session`` (plus ``get_window`` and ``pop_turn`` when the backend has them) against a
session and a list side by side; every read must agree with the list.

Hypothesis is synchronous, so the machine runs in a worker thread and hands every session call
back to the test's own event loop: a backend whose connections belong to the loop that first
used them (asyncpg pools, ``redis.asyncio`` clients) sees one loop throughout.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from ...items import Item, assistant_message, function_call, function_call_output, user_message
from ..base import capabilities_of
from ._reference import check_window, reference_pop_turn, reference_window

__all__ = ["run_stateful"]

T = TypeVar("T")

_text = st.text(max_size=24)
_call_ids = st.sampled_from(["c1", "c2", "c3"])

_units: st.SearchStrategy[list[Item]] = st.one_of(
    _text.map(lambda text: [user_message(text)]),
    _text.map(lambda text: [assistant_message(text)]),
    st.tuples(_call_ids, _text).map(
        lambda pair: [
            function_call(pair[0], "tool", '{"q": 1}'),
            function_call_output(pair[0], pair[1]),
        ]
    ),
    _text.map(lambda text: [{"type": "reasoning", "id": "rs", "summary": [text]}]),
)
_batches = st.lists(_units, max_size=4).map(lambda units: [item for unit in units for item in unit])
_turns = st.tuples(_text, st.lists(_units, max_size=3), _text).map(
    lambda turn: [
        user_message(turn[0]),
        *(item for unit in turn[1] for item in unit),
        assistant_message(turn[2]),
    ]
)
_budgets = st.none() | st.integers(min_value=0, max_value=14)
_token_budgets = st.none() | st.integers(min_value=0, max_value=160)


async def run_stateful(suite: Any, make_session: Any, examples: int) -> None:
    """Run the list-comparison state machine against sessions from ``make_session``.

    Awaited on the test's event loop; every session call runs on that loop.
    """
    loop = asyncio.get_running_loop()

    class SessionVersusList(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.session = self.run(suite.new(make_session, f"stateful-{uuid.uuid4().hex}"))
            offered = suite.capabilities
            self.offered = offered if offered is not None else capabilities_of(self.session)
            self.model: list[Item] = []

        def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

        def teardown(self) -> None:
            self.run(self.session.clear_session())

        @rule(batch=_batches)
        def add(self, batch: list[Item]) -> None:
            self.run(self.session.add_items(batch))
            self.model.extend(batch)

        @rule(turn=_turns)
        def add_turn(self, turn: list[Item]) -> None:
            self.run(self.session.add_items(turn))
            self.model.extend(turn)

        @rule(limit=_budgets)
        def get(self, limit: int | None) -> None:
            if limit is None:
                expected = self.model
            else:
                expected = self.model[max(0, len(self.model) - limit) :] if limit else []
            assert self.run(self.session.get_items(limit)) == expected

        @rule()
        def pop(self) -> None:
            expected = self.model.pop() if self.model else None
            assert self.run(self.session.pop_item()) == expected

        @rule()
        def clear(self) -> None:
            self.run(self.session.clear_session())
            self.model.clear()

        @precondition(lambda self: "window" in self.offered)
        @rule(max_items=_budgets, max_tokens=_token_budgets)
        def window(self, max_items: int | None, max_tokens: int | None) -> None:
            got = self.run(self.session.get_window(max_items=max_items, max_tokens=max_tokens))
            assert got == reference_window(self.model, max_items, max_tokens)
            check_window(self.model, got, max_items, max_tokens)

        @precondition(lambda self: "pop_turn" in self.offered)
        @rule()
        def pop_turn(self) -> None:
            assert self.run(self.session.pop_turn()) == reference_pop_turn(self.model)

    run_machine: Callable[..., None] = run_state_machine_as_test  # untyped in older releases
    await asyncio.to_thread(
        run_machine,
        SessionVersusList,
        settings=settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
