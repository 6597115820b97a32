"""Starting, watching and stopping the local server's child process.

The child (:mod:`threadline.models.local._server`) reads one JSON line of settings from its
stdin, loads the model, and answers with one protocol line on its stdout: its address or an
error. It serves until its stdin closes, so closing that pipe (or this process dying) stops
it. These helpers hold no state; :class:`~threadline.models.local.LocalModelServer` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from threadline.errors import ModelError, ModelTimeoutError
from threadline.models.local._files import ENV_START_TIMEOUT
from threadline.models.local._server import PROTOCOL_PREFIX

__all__ = [
    "open_log",
    "spawn",
    "stop_process",
    "wait_until_healthy",
    "wait_until_loaded",
    "warm_up",
]

LOG_ROTATE_BYTES = 5 * 1024 * 1024
_POLL_SECONDS = 0.1


def open_log(path: Path) -> IO[bytes]:
    """``path`` opened for appending (moved to ``*.1`` first when it grew past 5 MB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    log = path.open("ab")
    log.write(
        f"\n--- threadline: starting the local model server (for pid {os.getpid()}) ---\n".encode()
    )
    log.flush()
    return log


def spawn(
    command: Sequence[str], settings: dict[str, Any], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output going to ``log_path``; send it ``settings``.

    The child gets a session of its own on POSIX, so Ctrl-C in the user's terminal reaches
    only this process (where it cancels a reply) and not the server.
    """
    try:
        log = open_log(log_path)
        try:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=os.name == "posix",
            )
        finally:
            log.close()
    except OSError as exc:
        raise ModelError(
            f"could not start the local model server ({exc}); check that {log_path.parent} "
            "is writable and that Python can start subprocesses"
        ) from exc
    try:
        assert process.stdin is not None
        process.stdin.write(json.dumps(settings).encode() + b"\n")
        process.stdin.flush()
    except OSError:
        pass  # it exited already: wait_until_loaded reports that and points to the log
    return process


def wait_until_loaded(
    process: subprocess.Popen[bytes],
    *,
    deadline: float,
    timeout: float,
    log_path: Path,
    on_wait: Callable[[], None],
) -> str:
    """The address the child reports once its model is loaded; ``on_wait`` runs while waiting.

    Raises :class:`ModelError` when the child fails or exits, :class:`ModelTimeoutError` when
    ``time.monotonic()`` passes ``deadline`` (``timeout`` is only quoted in the message).
    """
    assert process.stdout is not None
    replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=_read_reply, args=(process.stdout, replies), daemon=True).start()
    while True:
        try:
            reply = replies.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise ModelTimeoutError(
                    f"the local model did not load within {timeout:g} s; raise "
                    f"{ENV_START_TIMEOUT} or free up CPU, and see the log at {log_path}"
                ) from None
            on_wait()
            continue
        if reply is None:
            status = process.wait()
            raise ModelError(
                f"the local model server exited while starting (exit status {status}); "
                f"see the log at {log_path}"
            )
        if "error" in reply or "address" not in reply:
            raise ModelError(
                f"the local model server could not start ({reply.get('error', reply)}); "
                f"see the log at {log_path}"
            )
        return str(reply["address"]).rstrip("/")


def _read_reply(stream: IO[bytes], replies: queue.Queue[dict[str, Any] | None]) -> None:
    """Put the child's protocol message on ``replies``; ``None`` if its stdout closes first."""
    prefix = PROTOCOL_PREFIX.encode()
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            if not line.startswith(prefix):
                continue
            with contextlib.suppress(ValueError):
                message = json.loads(line[len(prefix) :])
                if isinstance(message, dict):
                    replies.put(message)
                    return
    replies.put(None)


def _opener() -> urllib.request.OpenerDirector:
    # Loopback traffic must not go through an HTTP proxy from the environment.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until_healthy(address: str, *, deadline: float, log_path: Path) -> None:
    """Poll ``{address}/health`` until it answers 200 (it is 503 while a model loads)."""
    opener = _opener()
    last = "no answer"
    while True:
        try:
            with opener.open(address + "/health", timeout=5) as answer:
                if answer.status == 200:
                    return
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise ModelTimeoutError(
                f"the local model server at {address} did not report healthy ({last}); "
                f"see the log at {log_path}",
                url=address,
            )
        time.sleep(_POLL_SECONDS)


def warm_up(address: str, api_key: str) -> None:
    """Answer one tiny request, so the prompt's fixed part is cached before the first turn.

    Best effort: a server that cannot answer shows it on the first real request, through the
    model client's full error handling.
    """
    body = {"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 1, "temperature": 0}
    request = urllib.request.Request(
        address + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
    )
    with contextlib.suppress(OSError), _opener().open(request, timeout=60) as answer:
        answer.read()


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Ask the child to exit by closing its stdin; terminate it, then kill it, if it lingers."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # Only now: a reader thread may still be blocked on stdout until the child is gone.
    if process.stdout is not None:
        with contextlib.suppress(OSError):
            process.stdout.close()
