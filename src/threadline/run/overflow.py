"""A model call refused as too long for the context window: a smaller window, then a compaction.

When the endpoint answers a model call of a run with a session with "context length exceeded"
(:class:`~threadline.errors.ContextWindowExceededError`), the runner does not give up at once:

1. **A smaller window.** It computes a smaller history budget (:func:`smaller_budget`: from
   the prompt size the endpoint reported and the model's context window when both are known,
   else half the history it sent), reads the session's window again under it and retries the
   call once.
2. **A compaction.** Refused again, it compacts the session now (in the foreground, under the
   writer lease the run already holds; the run's ``RunConfig(compaction=...)`` settings, the
   agent's model by default), reads ``[summary] + window`` under a budget computed again from
   the second refusal and retries once more. A compaction that fails or is rejected changes
   nothing; the retry is made with the smaller window all the same.
3. **A clear error.** Refused a third time, the run raises
   :class:`~threadline.errors.ContextWindowExceededError` saying what was tried and naming the
   fixes.

The stages count per run, not per call: a later call of the same run that overflows goes on
from the stage reached. The run's new input and the items it produced are never left out
(only the history before them is re-read), and a window never splits a function call from its
output. Each retry is logged (``threadline.run``, a warning), marked on its model span
(``context_retry``) and listed in ``result.context_retries``.

The error propagates unchanged when there is nothing this can shrink: a run without a session,
a resumed run (its history holds the interrupted turn), a history a handoff's input filter
rewrote, a history the server keeps (``previous_response_id``, ``conversation_id``), or a
stream that had already emitted events when the error came.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import ContextWindowExceededError
from ..items import Item
from ..models.base import ModelRequest
from ..models.context_windows import context_window_of
from ..sessions._handle import StoreSession
from ..sessions.codec import estimate_tokens
from .compaction import CompactionResult, CompactionSettings, compact_session
from .context_budget import SAFETY_MARGIN, estimate_request, reply_reserve

if TYPE_CHECKING:
    from ..agent import Agent
    from .config import RunConfig
    from .persistence import SessionMemory

__all__ = ["CallAttempt", "ContextRetry", "retry_after_overflow", "smaller_budget"]

logger = logging.getLogger("threadline.run")

MAX_RETRIES = 2
"""Retries per run: one with a smaller window, one after a compaction."""

Stage = Literal["smaller window", "compaction"]


@dataclass(frozen=True)
class ContextRetry:
    """One retry of a model call that the endpoint refused as too long for its context window
    (``result.context_retries``; see :mod:`threadline.run.overflow`).

    ``stage`` is ``"smaller window"`` (the first retry) or ``"compaction"`` (the second, after
    a compaction of the session); ``requested_tokens`` the prompt size the endpoint reported for the refused
    request, when it said; ``budget`` the history budget of the retry, in estimated tokens;
    ``items_before`` / ``items_after`` the stored history items sent before and in the retry
    (the run's new input and its own items are not counted: they are always sent);
    ``compaction`` what the compaction did (``None`` for the first stage, or when the session
    keeps no records to hold a summary).
    """

    stage: Stage
    requested_tokens: int | None
    budget: int
    items_before: int
    items_after: int
    compaction: CompactionResult | None = None

    def describe(self) -> str:
        """One line for people."""
        retried = (
            f"retried with {self.items_after} of {self.items_before} history items "
            f"(a budget of ~{self.budget} tokens)"
        )
        if self.stage == "smaller window":
            return retried
        if self.compaction is None:
            outcome = "not possible: the session keeps no records"
        elif self.compaction.compacted:
            outcome = "compacted"
        else:
            outcome = f"{self.compaction.status}: {self.compaction.reason}"
        return f"compacted the session ({outcome}), then {retried}"


@dataclass
class CallAttempt:
    """One attempt at a model call: the retry it is (``None`` for the first attempt) and how
    many stream events it emitted (a stream that had begun is not retried)."""

    retry: ContextRetry | None = None
    events: int = 0


class RunView(Protocol):
    """What :func:`retry_after_overflow` reads and rewrites of a run."""

    agent: Agent[Any]
    config: RunConfig
    memory: SessionMemory | None
    model_input: list[Item]
    history_len: int
    filtered: bool
    sent: int
    context_retries: list[ContextRetry]


def smaller_budget(
    history_tokens: int,
    request_tokens: int,
    requested_tokens: int | None,
    room: int | None,
) -> int:
    """The history budget (estimated tokens) of a retry after an overflow.

    ``history_tokens`` is the estimate of the stored history the refused request sent,
    ``request_tokens`` the estimate of the whole request, ``requested_tokens`` the prompt size
    the endpoint reported, and ``room`` the tokens the prompt may have (the context window less
    the reply's reserve), when known. With both, the reported-to-estimated ratio of this very
    request says how much history fits (less :data:`~threadline.run.context_budget.SAFETY_MARGIN`);
    otherwise, or when that would not shrink the history, half of it. Always below
    ``history_tokens`` (when it is positive).
    """
    halved = max(0, history_tokens // 2)
    if requested_tokens is None or room is None or request_tokens <= 0 or requested_tokens <= 0:
        return halved
    ratio = max(1.0, requested_tokens / request_tokens)
    fixed = max(0, request_tokens - history_tokens)
    fits = int((room / ratio - fixed) * SAFETY_MARGIN)
    if fits >= history_tokens:  # by our own numbers it fitted: the window we know is wrong
        return halved
    return max(0, fits)


def _not_retried(run: RunView, attempt: CallAttempt, server_state: bool) -> str | None:
    """Why an overflow of this call cannot be retried with less history, or ``None``."""
    memory = run.memory
    if memory is None:
        return "the run has no session, so no history to leave out"
    if memory.new_input is None:
        return "a resumed run's history holds its interrupted turn"
    if run.filtered:
        return "a handoff's input filter rewrote the history"
    if server_state or run.sent:
        return "the server keeps the history (previous_response_id or conversation_id)"
    if attempt.events:
        return "the stream had already begun"
    return None


async def retry_after_overflow(
    run: RunView,
    model: Any,
    request: ModelRequest,
    error: ContextWindowExceededError,
    attempt: CallAttempt,
    *,
    server_state: bool,
) -> ContextRetry:
    """Prepare the retry of ``request``, which the endpoint refused with ``error``: shrink
    ``run.model_input``'s history (compacting the session first on the second overflow of the
    run) and return what was done; the caller sends ``run.model_input`` again.

    Raises ``error`` itself when the call cannot be retried this way (see the module's text),
    and a new :class:`~threadline.errors.ContextWindowExceededError` naming the fixes once the
    retries are spent or there is no history left to leave out.
    """
    why = _not_retried(run, attempt, server_state)
    if why is not None:
        logger.debug("threadline: a context overflow is not retried: %s", why)
        raise error
    memory = run.memory
    assert memory is not None and memory.new_input is not None
    done = run.context_retries
    if len(done) >= MAX_RETRIES or not memory.history:
        raise _final_error(error, done) from error
    history_tokens = sum(estimate_tokens(item) for item in memory.history)
    settings = request.settings
    window = context_window_of(model, settings.context_window)
    room = None if window is None else window - reply_reserve(window, settings)
    budget = smaller_budget(
        history_tokens, estimate_request(model, request), error.requested_tokens, room
    )
    own = (memory.new_input + run.model_input[run.history_len :])[-memory.saved :]
    own = own if memory.saved else []
    own_tokens = sum(estimate_tokens(item) for item in own)
    stage: Stage = "compaction" if done else "smaller window"
    compaction = None
    if stage == "compaction":
        compaction = await _compact(run, budget // 2 + own_tokens)
    history = await _history(memory, budget, len(own), own_tokens)
    combined = await memory.merge(history, memory.new_input)
    run.model_input = combined + run.model_input[run.history_len :]
    run.history_len = len(combined)
    retry = ContextRetry(
        stage, error.requested_tokens, budget, len(memory.history), len(history), compaction
    )
    memory.history = history
    done.append(retry)
    logger.warning(
        "threadline: session %r: the model refused the request as too long for its context "
        "window (%s); %s",
        memory.session.session_id,
        "requested_tokens unknown"
        if error.requested_tokens is None
        else f"{error.requested_tokens} tokens requested",
        retry.describe(),
    )
    return retry


async def _history(memory: SessionMemory, budget: int, own: int, own_tokens: int) -> list[Item]:
    """The stored window under ``budget``, before the ``own`` newest items (this run's, which
    the run sends from memory): read with room for them, then cut them off."""
    if budget <= 0:
        return []
    limit = memory.settings.limit
    window = await memory.window(None if limit is None else limit + own, budget + own_tokens)
    if len(window) < own:
        return []
    return window[: len(window) - own]


async def _compact(run: RunView, keep_tokens: int) -> CompactionResult | None:
    """Compact the run's session now, keeping the newest ``keep_tokens`` raw; ``None`` when
    the session cannot keep a summary. Runs under the lease the run holds (the compaction
    sees it and writes under it); never raises for a failure of the model or the store."""
    memory = run.memory
    assert memory is not None
    session = memory.session
    if not isinstance(session, StoreSession) or "records" not in session.capabilities:
        return None
    settings = run.config.compaction or CompactionSettings()
    return await compact_session(
        session, agent=run.agent, settings=settings, run_config=run.config, keep_tokens=keep_tokens
    )


def _final_error(
    error: ContextWindowExceededError, retries: list[ContextRetry]
) -> ContextWindowExceededError:
    where = f"the model endpoint {error.url}" if error.url else "the model"
    if retries:
        tried = "; then ".join(retry.describe() for retry in retries)
        what = (
            f"{where} still refused the request as too long for the model's context window "
            f"after threadline {tried}"
        )
    else:
        what = (
            f"{where} refused the request as too long for the model's context window, and it "
            "carried no stored history to leave out"
        )
    return ContextWindowExceededError(
        f"{what}; the rest of the request (instructions, tools, the new input, this run's "
        "tool outputs) may not fit on its own, or the model's window is smaller than "
        "threadline thinks: give the real window as ModelSettings(context_window=...), lower "
        "SessionSettings(max_tokens=...) (--max-history-tokens N in the CLI), or shorten the "
        "instructions, tools or input",
        status_code=error.status_code,
        url=error.url,
        requested_tokens=error.requested_tokens,
    )
