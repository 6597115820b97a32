"""The event loop behind ``Runner.run_sync``: one per thread, kept between calls.

Why kept: what one call creates on the loop — a session's connection pool, an ``AsyncOpenAI``
client the caller holds, the provider's client for this loop — is bound to that loop, and the
next call on the same thread must find it still usable. Why per thread: a loop runs on one
thread at a time, and two threads may call ``run_sync`` at once.

A kept loop is still shut down the way ``asyncio.run`` ends (pending tasks cancelled, async
generators finalized — which closes the per-loop clients — the default executor joined, then
closed), so nothing it holds is left for the garbage collector to warn about:

* when its thread has ended: the thread's local storage drops a token, and the loop is shut
  down by the next ``run_sync`` call in any thread, or at interpreter exit;
* at interpreter exit, for the main thread's loop (and any ended thread's).

The loops of daemon threads still running at exit are left alone: they may be in use.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref

__all__ = ["shutdown_ended", "thread_loop"]


class _Token:
    """Lives in one thread's local storage: gone means the thread has ended."""


_local = threading.local()
_lock = threading.Lock()
_loops: dict[asyncio.AbstractEventLoop, weakref.ref[_Token]] = {}
_atexit_registered = False


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's ``run_sync`` loop, made on first use; ended threads' loops are shut down.

    Call only when no loop is running in this thread.
    """
    global _atexit_registered
    shutdown_ended()
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is not None and not loop.is_closed():
        return loop
    loop = asyncio.new_event_loop()
    token = _Token()
    _local.loop, _local.token = loop, token
    with _lock:
        _loops[loop] = weakref.ref(token)
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True
    return loop


def shutdown_ended() -> None:
    """Shut down the loops of threads that have ended (from this thread, which runs none)."""
    with _lock:
        ended = [loop for loop, token in _loops.items() if token() is None]
        for loop in ended:
            del _loops[loop]
    for loop in ended:
        _shutdown(loop)


def _shutdown_at_exit() -> None:
    own = getattr(_local, "loop", None)
    with _lock:
        doomed = [loop for loop, token in _loops.items() if token() is None or loop is own]
        for loop in doomed:
            del _loops[loop]
    for loop in doomed:
        _shutdown(loop)


def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does after its coroutine: cancel, finalize, join, close."""
    if loop.is_closed() or loop.is_running():
        return
    try:
        tasks = list(asyncio.all_tasks(loop))
        for task in tasks:
            task.cancel()
        if tasks:
            results = loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            for task, result in zip(tasks, results, strict=True):
                if isinstance(result, Exception):
                    loop.call_exception_handler(
                        {
                            "message": "unhandled exception in a task of Runner.run_sync's loop",
                            "exception": result,
                            "task": task,
                        }
                    )
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
