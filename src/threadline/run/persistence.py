"""The session side of a run: lease, load history, persist input and each completed step.

DESIGN §7: the user input is written first, then each completed step (model output plus the
outputs of the calls it made) as one batch, so stored history never holds a function call
without its output. A cancelled or failed run loses at most the step in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ..errors import NestedRunError, UserError
from ..items import Item, encode_item, repair_orphans
from ..models.base import ModelRequest
from ..sessions._handle import StoreSession
from ..sessions._usage import USAGE_KEY, UsageLedger, calibrated_budget, calibration_ratio
from ..sessions._window import window_of_items
from ..sessions.base import SessionSettings, capabilities_of
from ..sessions.codec import estimate_tokens
from ..sessions.lease import declared_parameters, held_lease, writer_lease
from ..sessions.pending import PENDING_RUN_RECORD
from ..usage import Usage
from .config import RunConfig, SessionInputCallback

__all__ = ["SessionMemory", "check_session", "session_memory", "wants_wrapper"]

logger = logging.getLogger("threadline.run")

_REQUIRED = ("get_items", "add_items", "pop_item", "clear_session")


def check_session(session: object) -> None:
    """Raise :class:`UserError` unless ``session`` has the session contract's members."""
    missing = [name for name in _REQUIRED if not callable(getattr(session, name, None))]
    session_id = getattr(session, "session_id", None)
    if missing or not isinstance(session_id, str):
        what = ", ".join(missing + ([] if isinstance(session_id, str) else ["session_id"]))
        raise UserError(
            f"session must implement the Session protocol; {type(session).__name__} lacks {what}"
        )


def _declares_wrapper(method: Any) -> bool:
    """Whether ``method`` names a ``wrapper`` parameter (``**kwargs`` alone does not count)."""
    return "wrapper" in declared_parameters(method)[0]


def wants_wrapper(session: Any) -> bool:
    """Whether ``session`` opted in to receiving the run context (the OpenAI Agents SDK's
    convention: all four contract methods declare a ``wrapper`` parameter)."""
    return all(_declares_wrapper(getattr(session, name, None)) for name in _REQUIRED)


class SessionMemory:
    """Reads history for a run and writes what the run adds.

    A session whose four contract methods declare ``wrapper`` gets the run's
    :class:`~threadline.RunContextWrapper` on every call (tenant routing, as in the SDK).
    """

    def __init__(
        self,
        session: Any,
        settings: SessionSettings,
        input_callback: SessionInputCallback | None,
        context: Any = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.input_callback = input_callback
        self._extra: dict[str, Any] = {"wrapper": context} if wants_wrapper(session) else {}
        self.keeps_records = "records" in capabilities_of(session)
        """Whether the session keeps records (a pending run is stored with it)."""
        self._context = context
        self.usage: UsageLedger | None = None
        """This run's usage accounting, once :meth:`load_history` opened it (stores only)."""
        self.history: list[Item] = []
        """The stored window :meth:`start` read (what the run sends before its new input)."""
        self.new_input: list[Item] | None = None
        """The new input :meth:`start` was given (``None`` in a resumed run)."""
        self.saved = 0
        """Items this run appended so far: the newest ``saved`` stored items are the run's."""
        self._deferred: _RunLease | None = None
        """The run's lease, when :func:`session_memory` left it to the start read to take
        (with the read, in one store operation); taken by whatever touches the session
        first."""

    async def _settle(self) -> None:
        """Take the run's lease now if it was left to the start read (a path that does not
        make that read)."""
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            assert deferred.stack is not None
            await deferred.stack.enter_async_context(deferred.writer_lease(self.session))

    async def token_budget(self) -> int | None:
        """The window's ``max_tokens`` in estimated tokens, calibrated for this session."""
        await self._settle()
        session, context = self.session, self._context
        if (
            self.usage is None
            and context is not None
            and isinstance(session, StoreSession)
            and "records" in session.capabilities
        ):
            total, start = await session._usage_start()
            self.usage = UsageLedger(total, context.usage, start=start)
        ratio = None if self.usage is None else self.usage.ratio
        return calibrated_budget(self.settings.max_tokens, ratio)

    def note_request(self, request: ModelRequest, reported: Usage) -> None:
        """Calibrate with one model call: its reported input tokens against the estimate."""
        if self.usage is not None:  # (a session never runs with server-side state)
            self.usage.sample(reported.input_tokens, estimate_request(request))

    async def load_history(self, default_max_tokens: int | None = None) -> list[Item]:
        """The stored window this run sends, repaired so that it is valid to send.

        ``default_max_tokens`` (the budget that fits the model's context window, in estimated
        tokens) applies when the settings set no ``max_tokens``: an explicit setting always
        wins.
        """
        limit, max_tokens = self.settings.limit, await self.token_budget()
        if max_tokens is None:
            max_tokens = default_max_tokens
        return await self.window(limit, max_tokens)

    async def window(self, limit: int | None, max_tokens: int | None) -> list[Item]:
        """The newest stored items within ``limit`` items and ``max_tokens`` estimated tokens,
        repaired so that they are valid to send (no calibration: the budget is as given)."""
        await self._settle()
        get_window = getattr(self.session, "get_window", None)
        extra = self._extra
        if callable(get_window) and (not extra or _declares_wrapper(get_window)):
            history = await get_window(max_items=limit, max_tokens=max_tokens, **extra)
        else:
            if limit is None:  # no argument: a session's get_items(self) works too
                history = await self.session.get_items(**extra)
            else:
                history = await self.session.get_items(limit, **extra)
            if max_tokens is not None:  # no get_window: the same window, cut here
                history = window_of_items(list(history), None, max_tokens)
        return self._repaired(list(history), limit, max_tokens)

    def _repaired(
        self, history: list[Item], limit: int | None, max_tokens: int | None
    ) -> list[Item]:
        repaired = repair_orphans(history)
        logger.debug(
            "threadline: session %r: window of %d items (max_items=%s, max_tokens=%s)%s",
            self.session.session_id,
            len(repaired),
            limit,
            max_tokens,
            "" if len(repaired) == len(history) else f", {len(history)} before orphan repair",
        )
        return repaired

    def _writes_run_items_apart(self) -> bool:
        """Whether the input and the last step go through the store's own run writes
        (``StoreSession._add_run_items``): a threadline store session whose ``add_items`` is
        the store's (a subclass that overrides it gets ``add_items`` for them too)."""
        session = self.session
        return (
            isinstance(session, StoreSession)
            and not self._extra
            and type(session).add_items is StoreSession.add_items
        )

    def _reads_once(self) -> bool:
        """Whether the run's start is one read: a threadline store session that keeps
        records, whose window and records are the store's own."""
        session = self.session
        return (
            isinstance(session, StoreSession)
            and not self._extra
            and "records" in session.capabilities
            and type(session).get_window is StoreSession.get_window
            and type(session).get_record is StoreSession.get_record
        )

    async def _start_read(
        self, default_max_tokens: int | None, refuse: Callable[[Any], None] | None
    ) -> list[Item]:
        """:meth:`load_history` and the pending-run check as one read of the store: the
        usage record (calibration), the pending-run record, the summary and the window."""
        session = self.session
        assert isinstance(session, StoreSession)
        context, settings = self._context, self.settings
        chosen: list[tuple[int | None, int | None]] = []

        def budget(values: Mapping[str, Any]) -> tuple[int | None, int | None]:
            ratio = None if context is None else calibration_ratio(values.get(USAGE_KEY))
            max_tokens = calibrated_budget(settings.max_tokens, ratio)
            if max_tokens is None:
                max_tokens = default_max_tokens
            chosen[:] = [(settings.limit, max_tokens)]
            return chosen[0]

        keys = (USAGE_KEY, PENDING_RUN_RECORD)
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            history, values, count = await session._window_and_records(keys, budget)
        else:  # the run's lease and this read: one store operation
            assert deferred.stack is not None
            _, (history, values, count) = await deferred.stack.enter_async_context(
                session._lease_and_start(
                    deferred.wait, deferred.timeout, deferred.ttl, keys, budget
                )
            )
        if refuse is not None:
            refuse(values.get(PENDING_RUN_RECORD))
        if context is not None and self.usage is None:
            # the count is where the run's first item lands: its usage record's start
            self.usage = UsageLedger(values.get(USAGE_KEY), context.usage, start=count)
        return self._repaired(history, *chosen[0])

    async def start(
        self,
        new_items: list[Item],
        *,
        save: bool = True,
        refuse: Callable[[Any], None] | None = None,
        default_max_tokens: int | None = None,
    ) -> list[Item]:
        """Load history, merge the new input into it, persist the new input (unless ``save``
        is false: a guarded input is saved once the guardrails passed).

        ``refuse`` (given the session's pending-run record, ``None`` when there is none;
        it raises to refuse the run) is fed from the same read as the history for a
        threadline store session (one read of the store: usage record, pending run, summary,
        window), else from a read beside it; either way before anything is written.
        ``default_max_tokens`` is passed to :meth:`load_history`. Returns the items to send
        to the model.
        """
        if self._reads_once():
            history = await self._start_read(default_max_tokens, refuse)
        elif refuse is None:
            history = await self.load_history(default_max_tokens)
        else:
            history = await _beside(self.load_history(default_max_tokens), self._check(refuse))
        self.history, self.new_input = history, list(new_items)
        combined = await self.merge(history, new_items)
        if save:
            await self.save(new_items, run_input=True)
        return combined

    async def _check(self, refuse: Callable[[Any], None]) -> None:
        await self._settle()
        refuse(await self.session.get_record(PENDING_RUN_RECORD))

    async def merge(self, history: list[Item], new_items: list[Item]) -> list[Item]:
        """``history`` followed by ``new_items``, or what ``session_input_callback`` makes of
        them."""
        if self.input_callback is None:
            return history + new_items
        merged = self.input_callback(list(history), list(new_items))
        if inspect.isawaitable(merged):
            merged = await merged
        if not isinstance(merged, list):
            raise UserError(
                f"session_input_callback must return a list of items, got {type(merged).__name__}"
            )
        return merged

    async def save(
        self,
        items: list[Item],
        records: Mapping[str, Any] | None = None,
        *,
        run_input: bool = False,
        last: bool = False,
    ) -> None:
        """Append one completed step (or the input) as one atomic batch, with ``records``
        (session records, in the same transaction) when given.

        ``run_input``: the items are the run's new input, which a threadline store may let
        reach the disk while the model works (committed before this returns, on disk before
        the next step's write is acknowledged; see ``StoreBackend.append_input``). ``last``:
        the step that ends the run (a threadline store session may end the lease it holds
        in the same transaction; see ``StoreSession._last_write_ends_lease``)."""
        await self._settle()
        batch: dict[str, Any] = {}
        if (items or records) and self.usage is not None and self._context is not None:
            # the run's usage so far rides with the step (or the pending run), in its transaction
            batch.update(self.usage.records(self._context.usage))
        if records:
            batch.update(records)
        if items and (run_input or last) and self._writes_run_items_apart():
            await self.session._add_run_items(
                list(items), records=batch or None, run_input=run_input, last=last
            )
        elif batch:
            if items:
                await self.session.add_items(list(items), records=batch, **self._extra)
            else:
                await self.session.put_records(batch)
        elif items:
            await self.session.add_items(list(items), **self._extra)
        self.saved += len(items)


async def _beside(main: Awaitable[list[Item]], other: Awaitable[None]) -> list[Item]:
    """``main``'s result once ``other`` finished too; either one's error is raised."""
    task = asyncio.ensure_future(other)
    try:
        result = await main
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    await task
    return result


def estimate_request(request: ModelRequest) -> int:
    """Threadline's token estimate of what one request sends: its items (as stored windows
    count them), its instructions and its tool schemas, four characters a token."""
    tokens = sum(estimate_tokens(item) for item in request.input)
    extra = len(request.instructions or "")
    for tool in request.tools:
        extra += len(tool.name) + len(tool.description) + len(encode_item(tool.parameters))
    return tokens + -(-extra // 4)


class _Held:
    """A run's hold on a session, seen by the runs its tools and hooks start."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True


_running: contextvars.ContextVar[dict[tuple[int, str], _Held]] = contextvars.ContextVar(
    "threadline_running_sessions"
)


def _run_key(session: Any) -> tuple[int, str]:
    """Which session a run holds: the store's identity (the session object's, for sessions
    without one) and the session id, so two handles on one session are the same."""
    return id(getattr(session, "store", session)), str(getattr(session, "session_id", ""))


@contextlib.contextmanager
def _hold(session: Any) -> Any:
    """Mark ``session`` held by this run for the code it runs (tools, hooks, guardrails copy
    the context); a run started there on the same session raises :class:`NestedRunError`
    instead of waiting for the lease forever."""
    key = _run_key(session)
    held = _running.get({})
    outer = held.get(key)
    if outer is not None and outer.active:
        raise NestedRunError(key[1])
    mine = _Held()
    token = _running.set({**held, key: mine})
    try:
        yield
    finally:
        mine.active = False
        with contextlib.suppress(ValueError):  # exited in another context: nothing to undo
            _running.reset(token)


@asynccontextmanager
async def session_memory(
    session: Any, config: RunConfig, context: Any = None, *, starts_with_read: bool = False
) -> AsyncIterator[SessionMemory | None]:
    """Hold the session's writer lease for the whole run; yields ``None`` without a session.

    ``context`` is the run's context wrapper, passed to sessions that ask for it.
    ``starts_with_read``: the run's first use of the session is :meth:`SessionMemory.start`
    (a new run); on a threadline store session that holds no lease yet the lease is then
    taken by that start read, with it, in one store operation (before it, nothing of the
    run touches the session).
    """
    if session is None:
        yield None
        return
    check_session(session)
    own = getattr(session, "session_settings", None)  # ours, or any object with these fields
    settings = SessionSettings().resolve(own).resolve(config.session_settings)
    if settings.compact_at is not None:
        from .compaction import check_compactable

        check_compactable(session)  # before the run, not after it
    with _hold(session):
        memory = SessionMemory(session, settings, config.session_input_callback, context)
        if starts_with_read and memory._reads_once() and not _leased(session):
            async with contextlib.AsyncExitStack() as stack:
                memory._deferred = _RunLease(stack, settings)
                yield memory
            return
        async with _RunLease(None, settings).writer_lease(session):
            yield memory


def _leased(session: StoreSession) -> bool:
    """Whether this task already holds a lease on ``session`` (a run then joins it)."""
    return held_lease(session.store, session.session_id) is not None


class _RunLease:
    """How a run takes its lease, from its resolved settings (the run's over the session's);
    ``stack``, when the lease is left to the start read: the run's exit stack, which holds the
    lease once taken."""

    __slots__ = ("stack", "timeout", "ttl", "wait")

    def __init__(self, stack: contextlib.AsyncExitStack | None, settings: SessionSettings) -> None:
        self.stack = stack
        self.wait = settings.effective_wait
        self.timeout = settings.effective_timeout  # None: no bound
        self.ttl = settings.effective_ttl

    def writer_lease(self, session: Any) -> Any:
        """The plain lease block (every value explicit: "no bound" is ``math.inf``, and the
        ttl reaches the lease even when only the run set it)."""
        return writer_lease(
            session,
            wait=self.wait,
            timeout=math.inf if self.timeout is None else self.timeout,
            ttl=self.ttl,
        )
