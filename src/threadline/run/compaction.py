"""Compaction: older turns of a long conversation summarised by a model, never in the way.

When the part of a session's history that no summary covers passes
``SessionSettings.compact_at`` tokens, the run that just stored its turn starts a background
task (``result.compaction``) that summarises the older whole turns, keeping the newest ones
raw. The summary is stored beside the items (:mod:`threadline.sessions._summary`), and
``get_window`` puts it first. The properties, each tested:

* *non-destructive* — raw items stay; the summary is a session record naming the range
  ``[0, end)`` it covers;
* *incremental* — a compaction sends the model the previous summary plus the newly covered
  turns, never the whole history again;
* *byte-stable* — the summary item is the same bytes until the next compaction;
* *never in the way* — it runs after the turn is stored and the result does not wait for it;
  a failure, a timeout or a summary that does not shrink the context changes nothing and is
  reported through tracing (a ``compaction`` span with ``error`` set) and logging
  (``threadline.run``);
* *safe* — it cuts only where a turn starts and no call waits for its output; the model is
  called without holding the session, then the check that the covered range is unchanged and
  the write (one atomic record write) happen under the session's fenced writer lease.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import UserError
from ..items import Item, message_text, user_message
from ..models.base import Model, ModelRequest, ModelResponse
from ..models.settings import ModelSettings
from ..sessions._handle import StoreSession
from ..sessions._summary import (
    SUMMARY_RECORD,
    Summary,
    item_digest,
    read_summary,
    tail_since,
)
from ..sessions.base import SessionSettings
from ..sessions.lease import held_lease, writer_lease
from ..tracing import span
from ..usage import Usage
from ._compaction_plan import DEFAULT_INSTRUCTIONS, clean_summary, plan_cut, render_prompt
from .model_resolution import resolve_model, resolve_provider

if TYPE_CHECKING:
    from ..agent import Agent
    from .config import RunConfig
    from .persistence import SessionMemory

__all__ = [
    "CompactionResult",
    "CompactionSettings",
    "check_compactable",
    "compact_session",
    "start_compaction",
    "wait_for_compactions",
]

logger = logging.getLogger("threadline.run")

DEFAULT_KEEP_TOKENS = 2000
"""Tokens of newest turns an explicit compaction keeps raw when no setting says otherwise."""

_MAX_ROUNDS = 16


@dataclass
class CompactionSettings:
    """How compaction summarises (``RunConfig(compaction=...)``; when it starts is
    ``SessionSettings.compact_at``).

    * ``model`` — the summarising model: a name (through the run's provider) or a
      :class:`~threadline.Model`; ``None``: the model the run's agent uses.
    * ``timeout`` — seconds one compaction may take in all (model calls and the wait for the
      session); past it, nothing changes.
    * ``keep_tokens`` — the newest whole turns within this many tokens stay raw (at least the
      last turn); ``None``: half of ``compact_at`` (2000 without it).
    * ``max_input_tokens`` — the most history (previous summary included) one summariser
      request carries; a longer backlog is summarised oldest first in several rounds.
    * ``summary_words`` — the length the model is asked to keep the summary within.
    * ``instructions`` — replaces the summariser's instructions (``{words}`` is filled in).
    """

    model: str | Model | None = None
    timeout: float = 60.0
    keep_tokens: int | None = None
    max_input_tokens: int = 8000
    summary_words: int = 250
    instructions: str | None = None

    def __post_init__(self) -> None:
        if self.model is not None and not isinstance(self.model, (str, Model)):
            raise UserError(
                f"CompactionSettings.model must be a model name or a Model, "
                f"got {type(self.model).__name__}"
            )
        timeout = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise UserError(f"CompactionSettings.timeout must be seconds > 0, got {timeout!r}")
        for name, allow_none, low in (
            ("keep_tokens", True, 0),
            ("max_input_tokens", False, 1),
            ("summary_words", False, 1),
        ):
            value = getattr(self, name)
            if value is None and allow_none:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(
                    f"CompactionSettings.{name} must be an integer >= {low}, got {value!r}"
                )
        if self.instructions is not None and not isinstance(self.instructions, str):
            raise UserError("CompactionSettings.instructions must be a string or None")


Status = Literal["compacted", "skipped", "failed", "rejected"]


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did.

    ``status``: ``"compacted"`` (a new summary is stored), ``"skipped"`` (nothing to do: below
    ``compact_at``, or a single turn), ``"failed"`` (the model or the store failed, it timed
    out, or the history changed meanwhile) or ``"rejected"`` (the model's summary was empty or
    would not shrink the context). Only ``"compacted"`` changed anything. ``reason`` says why;
    ``summary`` is the summary now stored (``None`` when there is none); ``covered`` the items
    ``[start, end)`` newly covered; ``usage`` the summariser's tokens (not the run's).
    """

    session_id: str
    status: Status
    reason: str = ""
    summary: Summary | None = None
    covered: tuple[int, int] = (0, 0)
    rounds: int = 0
    usage: Usage = field(default_factory=Usage)
    duration: float = 0.0

    @property
    def compacted(self) -> bool:
        """Whether a new summary was stored."""
        return self.status == "compacted"

    def describe(self) -> str:
        """One line for people (what ``threadline chat`` prints)."""
        if self.compacted and self.summary is not None:
            start, end = self.covered
            return (
                f"compacted items {start}-{end - 1} into the summary: it covers {end} items "
                f"(~{self.summary.covered_tokens} tokens) in ~{self.summary.tokens} tokens"
            )
        return f"compaction {self.status}: {self.reason}"


class _Stop(Exception):
    """Ends a compaction early with a status and a reason."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------- entry points


def check_compactable(session: object) -> StoreSession:
    """``session`` if it can keep a compaction summary, else :class:`UserError`."""
    if not isinstance(session, StoreSession) or "records" not in session.capabilities:
        raise UserError(
            f"compaction needs a threadline store's session that keeps records; "
            f"{type(session).__name__} does not: drop compact_at or use a threadline store "
            "(InMemoryStore, SQLiteStore, open_store(...))"
        )
    return session


async def compact_session(
    session: Any,
    *,
    model: str | Model | None = None,
    agent: Agent[Any] | None = None,
    settings: CompactionSettings | None = None,
    run_config: RunConfig | None = None,
    keep_tokens: int | None = None,
) -> CompactionResult:
    """Compact ``session`` now, whatever ``compact_at`` says, and return what happened.

    The model is ``model``, else ``settings.model``, else the run config's or ``agent``'s,
    else the default provider's (the local model when nothing else is configured). Keeps the
    newest whole turns within ``keep_tokens`` raw (default: ``settings.keep_tokens``, else half
    of ``compact_at``, else 2000). Never raises for a failure of the model or the store: the
    result says ``"failed"`` and the failure is traced and logged; bad arguments are a
    :class:`UserError`.
    """
    from .config import RunConfig

    store_session = check_compactable(session)
    store_session._usable()  # a closed session is an error here, not a failed compaction
    config = run_config or RunConfig()
    chosen = settings or getattr(config, "compaction", None) or CompactionSettings()
    if model is not None:
        if not isinstance(model, (str, Model)):
            raise UserError(f"model must be a model name or a Model, got {type(model).__name__}")
        chosen = CompactionSettings(**{**vars(chosen), "model": model})
    resolved = SessionSettings().resolve(store_session.session_settings)
    resolved = resolved.resolve(config.session_settings)
    if keep_tokens is not None:
        chosen = CompactionSettings(**{**vars(chosen), "keep_tokens": keep_tokens})
    summariser, model_settings = _summariser(chosen, agent, config)
    return await _compact(store_session, summariser, model_settings, chosen, resolved, config)


def start_compaction(
    memory: SessionMemory | None, config: RunConfig, agent: Agent[Any]
) -> asyncio.Task[CompactionResult] | None:
    """After a run: start the background compaction of its session when ``compact_at`` is set.

    Returns the task (``result.compaction``), which never raises; ``None`` without
    ``compact_at``. The run's result does not wait for it.
    """
    if memory is None or memory.settings.compact_at is None:
        return None
    session = check_compactable(memory.session)
    settings = getattr(config, "compaction", None) or CompactionSettings()
    task = asyncio.get_running_loop().create_task(
        _auto(session, settings, memory.settings, config, agent)
    )
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    _register_exit_hook()
    return task


async def wait_for_compactions() -> list[CompactionResult]:
    """Wait for the background compactions started on this event loop; their results.

    For tests, scripts and CLIs that end soon after a run (``asyncio.run`` cancels what is
    still pending when its coroutine returns; a cancelled compaction writes nothing).
    """
    loop = asyncio.get_running_loop()
    tasks = [task for task in list(_pending) if task.get_loop() is loop]
    if not tasks:
        return []
    return list(await asyncio.gather(*tasks))


# ---------------------------------------------------------------------- the work


def _summariser(
    settings: CompactionSettings, agent: Agent[Any] | None, config: RunConfig
) -> tuple[Model, ModelSettings]:
    """The summarising model, and its settings: the agent's own (without tool settings) when
    it is the agent's model, else the model's defaults."""
    chosen = settings.model
    if isinstance(chosen, Model):
        return chosen, ModelSettings()
    if chosen is None and agent is not None:
        own = agent.model_settings.resolve(config.model_settings)
        own = dataclasses.replace(own, tool_choice=None, parallel_tool_calls=None)
        return resolve_model(agent, config), own
    if chosen is None and isinstance(config.model, Model):
        return config.model, ModelSettings()
    name = chosen if chosen is not None else config.model
    model = resolve_provider(config.model_provider).get_model(
        name if isinstance(name, str) else None
    )
    return model, ModelSettings()


def _default_keep(settings: SessionSettings) -> int:
    if settings.compact_at is not None:
        return settings.compact_at // 2
    if settings.max_tokens is not None:
        return settings.max_tokens // 4
    return DEFAULT_KEEP_TOKENS


async def _auto(
    session: StoreSession,
    settings: CompactionSettings,
    session_settings: SessionSettings,
    config: RunConfig,
    agent: Agent[Any],
) -> CompactionResult:
    compact_at = session_settings.compact_at
    assert compact_at is not None
    try:
        summary = await read_summary(session)
        start = summary.end if summary is not None else 0
        tail = await tail_since(session, start, 0, 0)
        if summary is not None and not summary.holds(tail):
            tail = await tail_since(session, 0, 0, 0)
        if tail.tail_tokens <= compact_at:
            return CompactionResult(
                session.session_id,
                "skipped",
                f"the unsummarised history is {tail.tail_tokens} tokens, "
                f"not past compact_at={compact_at}",
                summary,
            )
        summariser, model_settings = _summariser(settings, agent, config)
    except Exception as exc:
        return _report(
            session, "failed", f"{type(exc).__name__}: {exc}", 0.0, config, trigger="after run"
        )
    return await _compact(session, summariser, model_settings, settings, session_settings, config)


async def _compact(
    session: StoreSession,
    model: Model,
    model_settings: ModelSettings,
    settings: CompactionSettings,
    session_settings: SessionSettings,
    config: RunConfig,
) -> CompactionResult:
    began = time.monotonic()
    keep = settings.keep_tokens if settings.keep_tokens is not None else None
    if keep is None:
        keep = _default_keep(session_settings)
    name = str(getattr(model, "model", type(model).__name__))
    work = _Work(session, model, name, settings, session_settings, keep, began)
    work.traced = not config.tracing_disabled
    work.model_settings = model_settings
    with span(
        "compaction",
        session.session_id,
        disabled=config.tracing_disabled,
        session_id=session.session_id,
        model=name,
    ) as opened:
        try:
            result = await work.run()
        except Exception as exc:  # never in the way: a failure is reported, never raised
            result = work.outcome("failed", f"{type(exc).__name__}: {exc}")
        if opened is not None:
            opened.attributes.update(
                status=result.status,
                covered=list(result.covered),
                rounds=result.rounds,
                usage=vars(result.usage).copy(),
            )
            if result.status in ("failed", "rejected"):
                opened.error = result.reason
    _log(result)
    return result


class _Work:
    """One compaction: rounds of (plan, ask the model, check, write) until caught up."""

    def __init__(
        self,
        session: StoreSession,
        model: Model,
        name: str,
        settings: CompactionSettings,
        session_settings: SessionSettings,
        keep: int,
        began: float,
    ) -> None:
        self.session = session
        self.model = model
        self.name = name
        self.settings = settings
        self.max_tokens = session_settings.max_tokens
        self.keep = keep
        self.deadline = began + settings.timeout
        self.began = began
        self.usage = Usage()
        self.rounds = 0
        self.first_start: int | None = None
        self.summary: Summary | None = None
        self.traced = True
        self.model_settings = ModelSettings()

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Stop("failed", f"timed out after {self.settings.timeout:g} s")
        return left

    def outcome(self, status: Status, reason: str = "") -> CompactionResult:
        if self.rounds and status != "compacted":
            reason = f"{self.rounds} round(s) compacted, then: {reason}"
            status = "compacted"
        start = self.first_start or 0
        end = self.summary.end if self.summary is not None and self.rounds else start
        return CompactionResult(
            self.session.session_id,
            status,
            reason,
            self.summary,
            (start, end),
            self.rounds,
            self.usage,
            time.monotonic() - self.began,
        )

    async def run(self) -> CompactionResult:
        try:
            while self.rounds < _MAX_ROUNDS:
                limited = await self.round()
                if not limited:
                    break
        except _Stop as stop:
            if stop.status == "skipped" and self.rounds:
                return self.outcome("compacted")
            return self.outcome(stop.status, stop.reason)
        return self.outcome("compacted")

    async def round(self) -> bool:
        session = self.session
        stored = await read_summary(session)
        base = stored
        tail = await tail_since(session, base.end if base is not None else 0)
        if base is not None and not base.holds(tail):
            base = None  # the range it covered changed (undo, clear): start again from 0
            tail = await tail_since(session, 0)
        self.summary = stored if not self.rounds else self.summary
        start = base.end if base is not None else 0
        base_tokens = base.tokens if base is not None else 0
        plan, why = plan_cut(
            tail.items, self.keep, max(1, self.settings.max_input_tokens - base_tokens)
        )
        if plan is None:
            raise _Stop("skipped", why)
        covered = tail.items[: plan.cut]
        text = await self.ask(base, covered)
        new = Summary(
            text=text,
            end=start + plan.cut,
            anchor=item_digest(covered[-1]),
            covered_tokens=(base.covered_tokens if base is not None else 0) + plan.covered_tokens,
            compactions=(base.compactions if base is not None else 0) + 1,
            created_at=time.time(),
            model=self.name,
        )
        self.check_size(new, base_tokens + plan.covered_tokens)
        await self.write(stored, new)
        if self.first_start is None:
            self.first_start = start
        self.rounds += 1
        self.summary = new
        return plan.limited

    async def ask(self, base: Summary | None, covered: list[Item]) -> str:
        template = self.settings.instructions or DEFAULT_INSTRUCTIONS
        instructions = template.replace("{words}", str(self.settings.summary_words))
        request = ModelRequest(
            instructions=instructions,
            input=[user_message(render_prompt(base.text if base else None, covered))],
            settings=self.model_settings,
        )
        with span("model", self.name, disabled=not self.traced, purpose="compaction") as opened:
            try:
                response: ModelResponse = await asyncio.wait_for(
                    self.model.get_response(request), self.remaining()
                )
            except TimeoutError:
                raise _Stop("failed", f"timed out after {self.settings.timeout:g} s") from None
            if opened is not None:
                opened.attributes["usage"] = vars(response.usage).copy()
        self.usage.add(response.usage)
        text = clean_summary(
            "\n".join(
                message_text(item)
                for item in response.output
                if item.get("type", "message") == "message" and item.get("role") == "assistant"
            )
        )
        if not text:
            raise _Stop("rejected", "the model returned no summary text")
        return text

    def check_size(self, new: Summary, replaced_tokens: int) -> None:
        if new.tokens >= replaced_tokens:
            raise _Stop(
                "rejected",
                f"the summary (~{new.tokens} tokens) is not shorter than what it replaces "
                f"(~{replaced_tokens} tokens)",
            )
        if self.max_tokens is not None and new.tokens > self.max_tokens // 2:
            raise _Stop(
                "rejected",
                f"the summary (~{new.tokens} tokens) would take more than half of "
                f"max_tokens={self.max_tokens}",
            )

    async def write(self, stored: Summary | None, new: Summary) -> None:
        session = self.session
        if held_lease(session.store, session.session_id) is not None:
            await self._check_and_put(stored, new)
            return
        async with writer_lease(session, wait=True, timeout=self.remaining()):
            await self._check_and_put(stored, new)

    async def _check_and_put(self, stored: Summary | None, new: Summary) -> None:
        session = self.session
        current = await read_summary(session)
        if (current and current.to_record()) != (stored and stored.to_record()):
            raise _Stop("skipped", "another compaction wrote a summary meanwhile")
        check = await tail_since(session, new.end, 0, 0)
        if not new.holds(check):
            raise _Stop("failed", "the history changed while the summary was written")
        await session.put_records({SUMMARY_RECORD: new.to_record()})


def _report(
    session: StoreSession,
    status: Status,
    reason: str,
    duration: float,
    config: RunConfig,
    *,
    trigger: str,
) -> CompactionResult:
    result = CompactionResult(session.session_id, status, reason, duration=duration)
    with span(
        "compaction",
        session.session_id,
        disabled=config.tracing_disabled,
        session_id=session.session_id,
        trigger=trigger,
        status=status,
    ) as opened:
        if opened is not None:
            opened.error = reason
    _log(result)
    return result


def _log(result: CompactionResult) -> None:
    if result.status in ("failed", "rejected"):
        logger.warning(
            "threadline: session %r: compaction %s (%s); the history and its window are unchanged",
            result.session_id,
            result.status,
            result.reason,
        )
    else:
        logger.debug("threadline: session %r: %s", result.session_id, result.describe())


# ---------------------------------------------------------------------- background tasks

_pending: set[asyncio.Task[CompactionResult]] = set()
_exit_hook = False


def _register_exit_hook() -> None:
    """Run :func:`_finish_at_exit` when the interpreter exits, before thread pools stop
    taking work (a store's blocking calls run on them): ``threading``'s exit hooks run before
    ``atexit``'s, the ones registered last first."""
    global _exit_hook
    if _exit_hook:
        return
    _exit_hook = True
    # the thread pools' own hook (registered when concurrent.futures.thread is first
    # imported) must come before ours, so that ours runs first: import it now, in case no
    # pool was made yet (a store whose reads so far all ran on its writer thread)
    import concurrent.futures.thread  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading exit hooks")
        register(_finish_at_exit)
    except RuntimeError:
        atexit.register(_finish_at_exit)


def _finish_at_exit() -> None:
    """At interpreter exit, let the compactions pending on this thread's ``run_sync`` loop
    finish: each is bounded by its own timeout, and writes atomically or not at all. (Those of
    other threads' loops are cancelled when their loops shut down: nothing is written.)"""
    from . import _sync_loop

    loop = getattr(_sync_loop._local, "loop", None)  # this (the exiting) thread's loop only:
    if loop is None or loop.is_closed() or loop.is_running():  # another's may still be used
        return
    tasks = [task for task in list(_pending) if task.get_loop() is loop and not task.done()]
    if not tasks:
        return
    try:
        loop.run_until_complete(asyncio.wait(tasks))
    except Exception:  # pragma: no cover - exit must go on
        logger.debug("threadline: pending compactions could not finish at exit")
