"""Starting, sharing and stopping the server process, with a stand-in child (no model needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from threadline.errors import ModelError, ModelTimeoutError
from threadline.models import local
from threadline.models.local import _process
from threadline.models.local._prompt import chat_template

from .conftest import FAKE_SERVER, FakeServer


def _gone(pid: int, within: float = 10.0) -> bool:
    """True once no process ``pid`` runs (a zombie counts as gone), waiting up to ``within``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        except OSError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.05)
    return False


def test_start_reports_progress_and_serves_on_a_loopback_port(fake: FakeServer) -> None:
    seen: list[local.LocalModelStatus] = []
    url = fake.server.start(progress=seen.append)

    host_port = url.removeprefix("http://").removesuffix("/v1")
    host, port = host_port.split(":")
    assert host == "127.0.0.1" and 0 < int(port) < 65536
    assert fake.server.running and fake.server.base_url == url
    assert fake.server.pid == fake.child_pid()
    stages = [status.stage for status in seen]
    assert stages[0] == "preparing" and stages[-1] == "ready"
    assert set(stages) == {"preparing", "loading", "ready"}
    assert [s.elapsed for s in seen] == sorted(s.elapsed for s in seen)
    assert url in seen[-1].message


def test_the_child_gets_the_model_template_key_and_threads(
    make_fake: Callable[..., FakeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_LOCAL_THREADS", "3")
    monkeypatch.setenv("THREADLINE_LOCAL_CONTEXT", "2048")
    fake = make_fake("ok")
    fake.server.start()
    settings = fake.settings()
    assert settings["threads"] == 3 and settings["context_size"] == 2048
    assert settings["chat_template"] == chat_template()
    assert settings["model_path"] == str(fake.server.config.model_path)
    assert settings["api_key"] == fake.server.api_key and len(settings["api_key"]) >= 24
    # The warm-up request has been answered before start() returned.
    assert fake.requests()[0]["max_tokens"] == 1


def test_loading_reports_progress_while_it_waits(make_fake: Callable[..., FakeServer]) -> None:
    fake = make_fake("slow")
    seen: list[local.LocalModelStatus] = []
    fake.server.start(progress=seen.append)
    waiting = [
        s for s in seen if s.stage == "loading" and s.message.startswith("loading the model (")
    ]
    assert len(waiting) >= 3  # about ten a second during the 0.6 s load


def test_start_is_idempotent_and_thread_safe(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[object] = []
    real_spawn = _process.spawn

    def counting_spawn(*args: object, **kwargs: object) -> object:
        spawned.append(args)
        return real_spawn(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "spawn", counting_spawn)
    urls: list[str] = []
    threads = [threading.Thread(target=lambda: urls.append(fake.server.start())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(spawned) == 1
    assert len(set(urls)) == 1 and len(urls) == 4
    assert fake.server.start() == urls[0]


def test_shared_is_one_server_per_process(no_shared_server: None) -> None:
    first = local.LocalModelServer.shared()
    assert local.LocalModelServer.shared() is first
    assert not first.running  # nothing starts until asked


def test_close_stops_the_child_and_start_works_again(fake: FakeServer) -> None:
    first_url = fake.server.start()
    first_pid = fake.child_pid()
    fake.server.close()
    assert _gone(first_pid)
    assert not fake.server.running
    assert fake.server.base_url is None and fake.server.api_key is None and fake.server.pid is None
    fake.server.close()  # closing twice is fine
    second_url = fake.server.start()
    assert fake.server.running and fake.server.pid == fake.child_pid() != first_pid
    assert second_url.startswith("http://127.0.0.1:") and first_url.startswith("http://127.0.0.1:")


def test_a_child_that_reports_an_error_is_a_model_error_pointing_to_the_log(
    make_fake: Callable[..., FakeServer],
) -> None:
    fake = make_fake("error")
    with pytest.raises(ModelError, match="could not start") as caught:
        fake.server.start()
    assert "cannot load the model" in str(caught.value)
    assert str(fake.server.log_path) in str(caught.value)
    assert not fake.server.running and _gone(fake.child_pid())


def test_a_child_that_exits_is_a_model_error_with_its_status(
    make_fake: Callable[..., FakeServer],
) -> None:
    fake = make_fake("exit")
    with pytest.raises(ModelError, match=r"exited while starting \(exit status 3\)"):
        fake.server.start()
    assert not fake.server.running


def test_a_child_that_never_loads_times_out_and_is_stopped(
    make_fake: Callable[..., FakeServer],
) -> None:
    fake = make_fake("hang", start_timeout=0.5)
    with pytest.raises(ModelTimeoutError, match="THREADLINE_LOCAL_START_TIMEOUT"):
        fake.server.start()
    assert not fake.server.running
    assert _gone(fake.child_pid())


def test_the_log_records_each_start_and_is_rotated(fake: FakeServer) -> None:
    log = fake.server.log_path
    log.parent.mkdir(parents=True)
    log.write_bytes(b"x" * (_process.LOG_ROTATE_BYTES + 1))
    fake.server.start()
    assert log.with_name(log.name + ".1").stat().st_size == _process.LOG_ROTATE_BYTES + 1
    assert b"starting the local model server" in log.read_bytes()


@pytest.mark.skipif(os.name != "posix", reason="sessions and signals are POSIX")
def test_ctrl_c_in_the_terminal_does_not_reach_the_server(fake: FakeServer) -> None:
    fake.server.start()
    pid = fake.server.pid
    assert pid is not None
    assert os.getsid(pid) != os.getsid(0)  # its own session: not in our process group
    assert os.getpgid(pid) != os.getpgid(0)


_SCRIPT = """
import sys
from pathlib import Path
from threadline.models import local
local.require_server_package = lambda model_path=None: None
model = Path(sys.argv[1])
server = local.LocalModelServer(model_path=model, cache=model.parent / "cache")
server._command = (sys.executable, {fake!r}, "ok", sys.argv[2])
server.start()
print(server.pid, flush=True)
if sys.argv[3] == "kill":
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
@pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL")
def test_the_server_stops_when_its_process_exits_or_dies(tmp_path: Path, how: str) -> None:
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF")
    script = _SCRIPT.format(fake=str(FAKE_SERVER))
    run = subprocess.run(
        [sys.executable, "-c", script, str(model), str(tmp_path / "record"), how],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == (-signal.SIGKILL if how == "kill" else 0), run.stderr
    pid = int(run.stdout.strip())
    assert _gone(pid)
