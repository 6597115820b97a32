"""Store-level conformance tests of fork independence: forks against plain Python lists.

A fork is a new session holding a copy of a prefix of another; a backend may share the rows
rather than copy them (SQLite does), so these tests check that nothing done to a parent or
a fork afterwards (appends, pops, undo, clear, replace, delete, forks of forks) shows in any
other session, on reads, windows, exports and searches.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ...items import Item, assistant_message, is_user_message, message_text, user_message
from ._harness import ConformanceHarness, asyncio_test
from ._reference import reference_pop_turn, reference_window
from ._stateful import _batches, _budgets, _token_budgets, _turns

__all__ = ["ForkTests"]

T = TypeVar("T")

_picks = st.integers(min_value=0, max_value=999)


async def _exported(store: Any, session_id: str) -> list[Item]:
    out = io.StringIO()
    await store.export_jsonl(session_id, out)
    return [json.loads(line) for line in out.getvalue().split("\n")[1:] if line]


def _holding(models: dict[str, list[Item]], word: str) -> set[tuple[str, int]]:
    """Where a search for ``word`` must find it: (session, position) of each message with it."""
    return {
        (session_id, position)
        for session_id, items in models.items()
        for position, item in enumerate(items)
        if word in message_text(item).replace(",", " ").split()
    }


class ForkTests(ConformanceHarness):
    """``fork`` keeps every session independent (see the module docstring)."""

    @asyncio_test
    async def test_a_fork_never_changes_with_its_parent(self, store: Any) -> None:
        parent = store.session("fork-parent")
        self.require(parent, "fork")
        history = [
            user_message("alpha words"),
            assistant_message("one"),
            user_message("beta words"),
            assistant_message("two"),
            user_message("gamma words"),
            assistant_message("three"),
        ]
        await parent.add_items(history)
        whole = await parent.fork("fork-whole")
        part = await parent.fork("fork-part", at=4)
        deeper = await part.fork("fork-deeper", at=2)
        await part.add_items([user_message("delta words")])
        again = await part.fork("fork-again")  # a fork of a fork that has items of its own
        models = {
            "fork-parent": list(history),
            "fork-whole": list(history),
            "fork-part": [*history[:4], user_message("delta words")],
            "fork-deeper": history[:2],
            "fork-again": [*history[:4], user_message("delta words")],
        }
        searchable = "search" in store.capabilities

        async def check() -> None:
            for session_id, items in models.items():
                session = store.session(session_id)
                assert await session.get_items() == items, session_id
                assert await session.get_items(limit=3) == items[-3:], session_id
                if await store.session_info(session_id) is not None:
                    assert await _exported(store, session_id) == items, session_id
            if not searchable:
                return
            for word in ("alpha", "beta", "gamma", "delta", "three"):
                found = {(hit.session_id, hit.position) for hit in await store.search(word)}
                assert found == _holding(models, word), word
            hits = await store.search("beta", session_id="fork-part")
            assert [(h.session_id, h.position) for h in hits] == [("fork-part", 2)]

        await check()
        popped = await parent.fork("fork-popped")  # a fork that pops into what it shares
        await popped.pop_item()
        await popped.pop_item()
        await popped.add_items([assistant_message("its own")])
        models["fork-popped"] = [*history[:4], assistant_message("its own")]
        await check()
        await parent.pop_item()
        await parent.add_items([assistant_message("three, again")])
        models["fork-parent"][-1] = assistant_message("three, again")
        await check()
        if "pop_turn" in store.capabilities:
            await parent.pop_turn()
            await parent.pop_turn()
            del models["fork-parent"][2:]
            await check()
        await parent.add_items([user_message("epsilon words")])
        models["fork-parent"].append(user_message("epsilon words"))
        await check()
        if "replace" in store.capabilities:
            await parent.replace_items([user_message("zeta")])
            models["fork-parent"] = [user_message("zeta")]
            await check()
        await parent.clear_session()
        models["fork-parent"] = []
        await check()
        await parent.add_items(history[:1])
        assert await store.delete_session("fork-parent")
        del models["fork-parent"]
        await check()
        await whole.pop_item()
        models["fork-whole"].pop()
        await deeper.clear_session()
        models["fork-deeper"] = []
        await again.pop_item()
        models["fork-again"].pop()
        await check()

    @asyncio_test
    async def test_forks_behave_like_lists(self, store: Any) -> None:
        probe = store.session("fork-probe")
        self.require(probe, "fork")
        await _run_machine(self, store, self.stateful_examples)


async def _run_machine(suite: ConformanceHarness, store: Any, examples: int) -> None:
    loop = asyncio.get_running_loop()
    offered = suite.capabilities if suite.capabilities is not None else store.capabilities

    class ForksVersusLists(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = f"forks-{uuid.uuid4().hex[:8]}-"
            self.models: dict[str, list[Item]] = {self.prefix + "0": []}
            self.made = 1

        def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

        def pick(self, pick: int) -> str:
            names = sorted(self.models)
            return names[pick % len(names)]

        def session(self, name: str) -> Any:
            return store.session(name)

        def teardown(self) -> None:
            for name in self.models:
                self.run(store.delete_session(name))

        @rule(pick=_picks, batch=_batches)
        def add(self, pick: int, batch: list[Item]) -> None:
            name = self.pick(pick)
            self.run(self.session(name).add_items(batch))
            self.models[name].extend(batch)

        @rule(pick=_picks, turn=_turns)
        def add_turn(self, pick: int, turn: list[Item]) -> None:
            name = self.pick(pick)
            self.run(self.session(name).add_items(turn))
            self.models[name].extend(turn)

        @rule(pick=_picks, cut=_picks, into_empty=st.booleans())
        def fork(self, pick: int, cut: int, into_empty: bool) -> None:
            name = self.pick(pick)
            model = self.models[name]
            # Cuts that never part a call from its output: before a user message, or the end.
            cuts: list[int | None] = [None, len(model)]
            cuts += [i for i, item in enumerate(model) if is_user_message(item)]
            at = cuts[cut % len(cuts)]
            empty = [other for other, items in self.models.items() if not items and other != name]
            if into_empty and empty:
                target = empty[0]
            else:
                target = f"{self.prefix}{self.made}"
                self.made += 1
            self.run(self.session(name).fork(target, at=at))
            self.models[target] = list(model if at is None else model[:at])

        @rule(pick=_picks)
        def pop(self, pick: int) -> None:
            name = self.pick(pick)
            expected = self.models[name].pop() if self.models[name] else None
            assert self.run(self.session(name).pop_item()) == expected

        @precondition(lambda self: "pop_turn" in offered)
        @rule(pick=_picks)
        def pop_turn(self, pick: int) -> None:
            name = self.pick(pick)
            assert self.run(self.session(name).pop_turn()) == reference_pop_turn(self.models[name])

        @rule(pick=_picks)
        def clear(self, pick: int) -> None:
            name = self.pick(pick)
            self.run(self.session(name).clear_session())
            self.models[name].clear()

        @precondition(lambda self: "replace" in offered)
        @rule(pick=_picks, batch=_batches)
        def replace(self, pick: int, batch: list[Item]) -> None:
            name = self.pick(pick)
            self.run(self.session(name).replace_items(batch))
            self.models[name] = list(batch)

        @rule(pick=_picks)
        def delete(self, pick: int) -> None:
            name = self.pick(pick)
            self.run(store.delete_session(name))
            del self.models[name]
            if not self.models:
                self.models[f"{self.prefix}{self.made}"] = []
                self.made += 1

        @rule(pick=_picks, limit=_budgets)
        def get(self, pick: int, limit: int | None) -> None:
            name = self.pick(pick)
            model = self.models[name]
            expected = model if limit is None else model[max(0, len(model) - limit) :]
            assert self.run(self.session(name).get_items(limit)) == (expected if limit != 0 else [])

        @precondition(lambda self: "window" in offered)
        @rule(pick=_picks, max_items=_budgets, max_tokens=_token_budgets)
        def window(self, pick: int, max_items: int | None, max_tokens: int | None) -> None:
            name = self.pick(pick)
            got = self.run(
                self.session(name).get_window(max_items=max_items, max_tokens=max_tokens)
            )
            assert got == reference_window(self.models[name], max_items, max_tokens)

        @rule(pick=_picks)
        def export(self, pick: int) -> None:
            name = self.pick(pick)
            if self.run(store.session_info(name)) is not None:
                assert self.run(_exported(store, name)) == self.models[name]

        @invariant()
        def every_session_holds_its_own_items(self) -> None:
            for name, model in self.models.items():
                assert self.run(self.session(name).get_items()) == model, name

    run_machine: Callable[..., None] = run_state_machine_as_test  # untyped in older releases
    await asyncio.to_thread(
        run_machine,
        ForksVersusLists,
        settings=settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
