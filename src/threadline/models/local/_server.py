"""The child process that runs llama.cpp's OpenAI-compatible server (``python -m`` this module).

The parent writes one JSON line of settings to our stdin and keeps the pipe open. We load
the model with ``xllamacpp.Server`` (which listens on 127.0.0.1 on a port the OS picks),
answer with one protocol line on the original stdout, then serve until stdin closes: when
the parent closes it, or dies, we exit. llama.cpp's own output (both streams) goes to the
log file the parent gave us as stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from typing import Any, TextIO

__all__ = ["PROTOCOL_PREFIX", "main"]

PROTOCOL_PREFIX = "threadline-local-server "


def _reply(channel: TextIO, **message: Any) -> None:
    channel.write(PROTOCOL_PREFIX + json.dumps(message) + "\n")
    channel.flush()


def _params(xllamacpp: Any, config: dict[str, Any]) -> Any:
    params = xllamacpp.CommonParams()
    params.model.path = config["model_path"]
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.api_keys = [config["api_key"]]
    params.chat_template = config["chat_template"]
    params.use_jinja = True
    params.n_ctx = int(config["context_size"])
    params.n_parallel = 1
    params.cpuparams.n_threads = int(config["threads"])
    params.cpuparams_batch.n_threads = int(config["threads"])
    params.n_threads_http = 2
    params.cache_ram_mib = 128
    params.ui = False
    params.sampling.temp = 0.0
    return params


def main() -> int:
    """Run the server until stdin closes; return the exit status."""
    # Ctrl-C in the user's terminal is for the parent (it cancels a reply), not for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol keeps the real stdout; anything else printed to fd 1 joins the log.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        config = json.loads(sys.stdin.readline())
        xllamacpp = importlib.import_module("xllamacpp")
        server = xllamacpp.Server(_params(xllamacpp, config))
    except Exception as exc:
        _reply(protocol, error=f"{type(exc).__name__}: {exc}")
        return 1
    _reply(protocol, address=str(server.listening_address), pid=os.getpid())
    try:
        while sys.stdin.read(4096):
            pass
    except (OSError, KeyboardInterrupt):
        pass
    del server
    return 0


if __name__ == "__main__":
    sys.stderr.flush()
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: llama.cpp's threads are already stopped (or the process is
    # going away anyway), and a slow teardown would only delay the parent's close().
    os._exit(status)
