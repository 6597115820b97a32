"""The one exception tree of threadline.

```
ThreadlineError
├── UserError                  misuse: bad arguments, bad items, missing configuration
│   ├── SettingsError             a setting that does not exist or has the wrong type (a TypeError too)
│   ├── InvalidItemError          an item that cannot be stored as JSON (a TypeError too)
│   ├── ModelNotConfiguredError   no way to resolve a model (says the ways to fix it)
│   ├── MissingDependencyError    an optional extra is not installed (names the extra)
│   ├── PendingRunError           the session holds a run waiting for tool-call approvals
│   └── StaleRunStateError        a RunState that was already resumed (or replaced) was resumed
├── RunError                   a run could not complete
│   ├── MaxTurnsExceeded          the agent loop ran past ``max_turns``
│   ├── ModelBehaviorError        the model produced something unusable
│   │   └── ToolArgumentsError       a tool was called with arguments that fail its schema
│   ├── ToolError                 a tool raised and the tool is set to propagate errors
│   ├── GuardrailTripwireTriggered   a guardrail stopped the run
│   │   ├── InputGuardrailTripwireTriggered    an input guardrail rejected the input
│   │   ├── OutputGuardrailTripwireTriggered   an output guardrail rejected the final output
│   │   ├── ToolInputGuardrailTripwireTriggered    a tool input guardrail stopped the run
│   │   └── ToolOutputGuardrailTripwireTriggered   a tool output guardrail stopped the run
│   └── ModelError                the model endpoint failed (HTTP status, network, timeout)
│       ├── ModelAuthenticationError   401/403: the key is missing or wrong
│       ├── ContextWindowExceededError the request did not fit the model's context window
│       ├── ModelRateLimitError        429 after the client's retries
│       ├── ModelTimeoutError          no answer within the timeout
│       └── ModelConnectionError       the endpoint could not be reached
└── SessionError               the session store failed or holds bad data
    ├── SessionBusyError          another run holds the session's writer lease
    ├── LeaseLostError            a run's lease was taken over: its writes are refused
    ├── SessionClosedError        the session handle or its store was closed (a RuntimeError too)
    ├── CorruptItemError          a stored row cannot be decoded
    ├── SchemaVersionError        the store was written by a newer threadline
    ├── SchemaMissingError        a database server holds no (or an older) threadline schema
    └── StoreUnavailableError     the store's server cannot be reached, refused the login,
        │                         dropped the connection or has no free connection
        └── StoreServerError      the same, raised by the Redis store (also: it is full)
```

Every message says what happened and what to do about it, in one line.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ContextWindowExceededError",
    "CorruptItemError",
    "GuardrailTripwireTriggered",
    "InputGuardrailTripwireTriggered",
    "InvalidItemError",
    "LeaseLostError",
    "MaxTurnsExceeded",
    "MissingDependencyError",
    "ModelAuthenticationError",
    "ModelBehaviorError",
    "ModelConnectionError",
    "ModelError",
    "ModelNotConfiguredError",
    "ModelRateLimitError",
    "ModelTimeoutError",
    "NestedRunError",
    "OutputGuardrailTripwireTriggered",
    "PendingRunError",
    "RunError",
    "SchemaMissingError",
    "SchemaVersionError",
    "SessionBusyError",
    "SessionClosedError",
    "SessionError",
    "SettingsError",
    "StaleRunStateError",
    "StoreServerError",
    "StoreUnavailableError",
    "ThreadlineError",
    "ToolArgumentsError",
    "ToolError",
    "ToolInputGuardrailTripwireTriggered",
    "ToolOutputGuardrailTripwireTriggered",
    "UserError",
]


class ThreadlineError(Exception):
    """Base class of every error threadline raises on purpose."""


class UserError(ThreadlineError):
    """The library was used in a way it does not support; the message says how to fix it."""


class SettingsError(UserError, TypeError):
    """A setting that does not exist, or a settings value of the wrong type.

    Also a ``TypeError``, as the OpenAI Agents SDK raises for an unknown setting.
    """


class InvalidItemError(UserError, TypeError):
    """An item or batch that cannot be stored: not a JSON object, or not serialisable as JSON
    that reads back equal (``NaN``, a set, a non-string key, a lone surrogate, ...).

    Also a ``TypeError``, as the OpenAI Agents SDK's sessions raise for a value ``json.dumps``
    refuses.
    """


class ModelNotConfiguredError(UserError):
    """No model could be resolved for an agent."""


class MissingDependencyError(UserError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {package!r}: "
            f"install it with pip install -e '.[{extra}]' in a threadline checkout "
            f"(the extra {extra!r})"
        )


class PendingRunError(UserError):
    """A new run was started on a session whose last run waits for tool-call approvals.

    ``session_id`` names the session and ``tool_calls`` the ``(tool name, call id)`` pairs
    awaiting a decision. Resolve them (approve or reject, then resume with
    ``Runner.run(agent, state, session=session)``) or discard the pending run.
    """

    def __init__(self, session_id: str, tool_calls: list[tuple[str, str]]) -> None:
        self.session_id = session_id
        self.tool_calls = tool_calls
        calls = ", ".join(f"{name} ({call_id})" for name, call_id in tool_calls) or "none"
        super().__init__(
            f"session {session_id!r} has a run waiting for approval of tool calls {calls}: "
            "load it with 'state = await RunState.from_session(agent, session)', approve or "
            "reject each of state.interruptions and resume with "
            "'Runner.run(agent, state, session=session)', or drop it with "
            "'await session.discard_pending_run()' before starting a new run"
        )


class NestedRunError(UserError):
    """A run was started on a session that a run still going holds, from inside that run (a
    tool, hook or guardrail of the outer run called ``Runner.run`` with the same session).

    The inner run would wait for the outer run's lease, and the outer run for the inner run:
    refused at once instead. Give the inner run a session of its own, or none.
    ``session_id`` names the session.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"a run was started on session {session_id!r} from inside a run that holds it "
            "(a tool, hook or guardrail called Runner.run with the same session); it would "
            "wait for the outer run's lease forever. Give the inner run a session of its "
            "own, or none"
        )


class StaleRunStateError(UserError):
    """A :class:`~threadline.RunState` was resumed after it had been resumed already.

    Each interruption has an id; the session stores the id of the one it waits for, so a state
    resumed twice, or resumed after another process resumed (or discarded) it, is refused.
    """


class RunError(ThreadlineError):
    """A run could not complete."""


class MaxTurnsExceeded(RunError):
    """The agent loop used more model calls than ``max_turns`` allows."""

    def __init__(self, max_turns: int) -> None:
        self.max_turns = max_turns
        super().__init__(
            f"the run exceeded max_turns={max_turns}: raise max_turns "
            "(Runner.run(..., max_turns=N)) or check why the agent keeps calling tools"
        )


class ModelBehaviorError(RunError):
    """The model returned something the run cannot use (unknown tool, invalid final output)."""


class ToolArgumentsError(ModelBehaviorError):
    """The model called a tool with arguments that do not match its schema.

    The runner shows the message to the model as the tool's output so that it can call again.
    """

    def __init__(self, tool_name: str, message: str) -> None:
        self.tool_name = tool_name
        self.message = message
        problem = " ".join(message.split())
        super().__init__(
            f"tool {tool_name!r} was called with invalid arguments: {problem}; "
            "call it again with arguments that match its parameters schema"
        )


class ToolError(RunError):
    """A tool raised and was configured to propagate the exception."""

    def __init__(self, tool_name: str, message: str) -> None:
        self.tool_name = tool_name
        super().__init__(f"tool {tool_name!r} failed: {message}")


class GuardrailTripwireTriggered(RunError):
    """A guardrail's tripwire stopped the run; ``guardrail_result`` holds its outcome."""

    def __init__(self, kind: str, guardrail_result: Any) -> None:
        self.guardrail_result = guardrail_result
        guardrail = getattr(guardrail_result, "guardrail", None)
        name = guardrail.get_name() if guardrail is not None else "?"
        super().__init__(
            f"{kind} guardrail {name!r} triggered its tripwire; the run stopped "
            f"(see .guardrail_result.output.output_info for why)"
        )


class InputGuardrailTripwireTriggered(GuardrailTripwireTriggered):
    """An input guardrail rejected the run's input; nothing of it was stored."""

    def __init__(self, guardrail_result: Any) -> None:
        super().__init__("input", guardrail_result)


class OutputGuardrailTripwireTriggered(GuardrailTripwireTriggered):
    """An output guardrail rejected the final output; the step that made it was not stored."""

    def __init__(self, guardrail_result: Any) -> None:
        super().__init__("output", guardrail_result)


class ModelError(RunError):
    """The model endpoint failed. ``status_code`` is set for HTTP errors, ``url`` when known."""

    def __init__(self, message: str, *, status_code: int | None = None, url: str | None = None):
        self.status_code = status_code
        self.url = url
        super().__init__(message)


class ModelAuthenticationError(ModelError):
    """The endpoint refused the credentials (HTTP 401 or 403)."""


class ContextWindowExceededError(ModelError):
    """The endpoint refused the request because it does not fit the model's context window.

    The message names the fixes: send less history (``--max-history-tokens`` in the CLI,
    ``SessionSettings(max_tokens=...)`` in code) or tell threadline the model's window
    (``ModelSettings(context_window=...)``), so that the runner's default window fits it.
    ``requested_tokens`` is the prompt size the endpoint reported, when it said. In a run with
    a session the runner first retries the call with a smaller window, then after compacting
    the session (``result.context_retries``; docs/context.md); this error reaches the caller
    when those retries did not help, or could not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        url: str | None = None,
        requested_tokens: int | None = None,
    ):
        self.requested_tokens = requested_tokens
        super().__init__(message, status_code=status_code, url=url)


class ModelRateLimitError(ModelError):
    """The endpoint kept answering HTTP 429 after the client's retries."""


class ModelTimeoutError(ModelError):
    """The endpoint did not answer within the timeout."""


class ModelConnectionError(ModelError):
    """The endpoint could not be reached."""


class SessionError(ThreadlineError):
    """The session store failed or holds data that cannot be read."""


class SessionBusyError(SessionError):
    """Another run holds this session's writer lease and the caller chose not to wait.

    ``holder`` names the holder when the store knows it (``"pid 4242 on host-a"``) and
    ``expires_in`` says in how many seconds its lease runs out unless the holder renews it.
    """

    def __init__(
        self,
        session_id: str,
        waited: float | None = None,
        *,
        holder: str | None = None,
        expires_in: float | None = None,
    ) -> None:
        self.session_id = session_id
        self.waited = waited
        self.holder = holder
        self.expires_in = expires_in
        who = "another run is writing to it"
        if holder:
            who = f"a run in {holder} is writing to it"
        if expires_in is not None:
            who += (
                f" (its lease runs out in {max(expires_in, 0.0):.1f}s unless renewed; a holder "
                "that died is taken over then)"
            )
        if waited is None:
            hint = "wait for it to finish or run with SessionSettings(wait_for_lease=True)"
        else:
            hint = (
                f"gave up after waiting {waited:g}s; raise SessionSettings(lease_timeout=...) "
                "or set it to math.inf to wait as long as it takes"
            )
        super().__init__(f"session {session_id!r} is busy: {who}; {hint}")


class LeaseLostError(SessionError):
    """A run's writer lease was taken over by another run (the holder stalled past its ttl).

    Every write made under a lease carries its fencing token; the store refuses a stale one
    inside the write transaction, so the stalled run writes nothing more.
    """

    def __init__(self, session_id: str, detail: str = "") -> None:
        self.session_id = session_id
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"session {session_id!r}: this run lost its writer lease{extra}; another run took "
            "the session over after the lease expired, so this write was refused and nothing "
            "more of this run is stored; retry the turn, or raise SessionSettings(lease_ttl=...) "
            "if the run stalls for long"
        )


class SessionClosedError(SessionError, RuntimeError):
    """The session handle, or the store behind it, was closed.

    Also a ``RuntimeError``, as the OpenAI Agents SDK raises for a closed session.
    """


class CorruptItemError(SessionError):
    """A stored item cannot be decoded; the history is not silently shortened."""

    def __init__(self, session_id: str, position: int | str, reason: str) -> None:
        self.session_id = session_id
        self.position = position
        what = f"stored item at position {position}" if isinstance(position, int) else position
        super().__init__(
            f"session {session_id!r}: {what} is corrupt ({reason}); "
            "export the session to inspect it, or remove the item"
        )


class SchemaVersionError(SessionError):
    """The store was created by a newer version of threadline than this one."""


class SchemaMissingError(SessionError):
    """A database server's store has no threadline schema yet, or an older one.

    Server stores never create or upgrade their schema on their own: run
    ``threadline db migrate --store URL`` (or ``await store.setup()``) once per deployment.
    """


class StoreUnavailableError(SessionError):
    """The store's server could not be reached, refused the login, dropped the connection
    (a restart, a network cut) or had no free connection in time.

    ``server`` names it (``host:port/database``, never a password). Reads were retried before
    this was raised; a write was retried only where a retry cannot apply it twice.
    """

    def __init__(self, message: str, *, server: str = "") -> None:
        self.server = server
        super().__init__(message)


class StoreServerError(StoreUnavailableError):
    """The database server behind a store failed: unreachable, a dropped connection, refused
    credentials, or out of memory.

    ``server`` names it (``"Redis at 10.0.0.5:6379/0"``, never with a password); ``reason``
    says what went wrong. Reads are retried before this is raised; a write is retried only
    when the retry cannot apply it twice.
    """

    def __init__(self, server: str, reason: str) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"the session store {server} failed: {reason}", server=server)


class _ToolGuardrailTripwire(GuardrailTripwireTriggered):
    """A tool guardrail's ``raise_exception`` behavior stopped the run.

    ``guardrail`` and ``output`` (its ``ToolGuardrailFunctionOutput``) are as in the OpenAI
    Agents SDK; nothing of the step that made the call was stored.
    """

    _kind = "tool"

    def __init__(self, guardrail: Any, output: Any) -> None:
        self.guardrail = guardrail
        self.output = output
        self.guardrail_result = None
        name = guardrail.get_name() if hasattr(guardrail, "get_name") else "?"
        RunError.__init__(
            self,
            f"{self._kind} guardrail {name!r} stopped the run (raise_exception); see "
            ".output.output_info for why",
        )


class ToolInputGuardrailTripwireTriggered(_ToolGuardrailTripwire):
    """A tool input guardrail stopped the run before the tool ran."""

    _kind = "tool input"


class ToolOutputGuardrailTripwireTriggered(_ToolGuardrailTripwire):
    """A tool output guardrail stopped the run after the tool ran."""

    _kind = "tool output"
