"""The curated public surface: complete, sorted, resolvable, documented, and light to import."""

from __future__ import annotations

import inspect
import json
import pkgutil
import subprocess
import sys

import pytest

import threadline


def test_all_is_sorted_and_unique() -> None:
    assert threadline.__all__ == sorted(set(threadline.__all__))


def test_every_exported_name_resolves() -> None:
    for name in threadline.__all__:
        assert getattr(threadline, name) is not None, name


def test_every_public_name_of_the_submodules_is_exported() -> None:
    """Anything a user module lists in ``__all__`` and the top level should offer, it does."""
    wanted = {
        "threadline.agent",
        "threadline.errors",
        "threadline.run",
        "threadline.tracing",
        "threadline.usage",
        "threadline.context",
    }
    missing = []
    for module_name in wanted:
        module = __import__(module_name, fromlist=["__all__"])
        for name in module.__all__:
            if name.startswith("_") or name in {"Instructions", "DEFAULT_MAX_TURNS", "SpanKind"}:
                continue
            if name in {"span", "get_trace_processors", "is_tracing_disabled", "TContext"}:
                continue
            if name not in threadline.__all__:
                missing.append(f"{module_name}.{name}")
    assert missing == []


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        threadline.Nope  # noqa: B018


def test_public_names_have_docstrings() -> None:
    undocumented = []
    for name in threadline.__all__:
        value = getattr(threadline, name)
        if name in {"__version__", "AsyncOpenAI"} or not (
            inspect.isclass(value) or inspect.isfunction(value)
        ):
            continue
        if not inspect.getdoc(value):
            undocumented.append(name)
    assert undocumented == []


def test_every_module_has_a_docstring() -> None:
    import threadline as package

    missing = []
    for info in pkgutil.walk_packages(package.__path__, "threadline."):
        module = __import__(info.name, fromlist=["_"])
        if not (module.__doc__ or "").strip():
            missing.append(info.name)
    assert missing == []


def _modules_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out))


HEAVY = {"openai", "httpx", "httpx2", "rich", "asyncpg", "redis", "xllamacpp"}


def test_import_threadline_loads_no_heavy_dependency() -> None:
    loaded = _modules_after("import threadline")
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()


def test_core_names_load_no_model_client() -> None:
    loaded = _modules_after(
        "from threadline import Agent, Runner, RunConfig, SQLiteSession, function_tool"
    )
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()


def test_async_openai_is_still_importable_from_threadline() -> None:
    from openai import AsyncOpenAI

    assert threadline.AsyncOpenAI is AsyncOpenAI


def test_architecture_doc_names_every_module() -> None:
    from pathlib import Path

    root = Path(threadline.__file__).parent
    doc = (root.parent.parent / "docs" / "architecture.md").read_text()
    missing = [
        str(path.relative_to(root.parent))
        for path in sorted(root.rglob("*.py"))
        if path.name != "__init__.py" or path.parent == root
        if str(path.relative_to(root.parent)) not in doc and f"`{path.name}`" not in doc
    ]
    assert missing == []


def test_core_names_load_no_pydantic() -> None:
    """Building agents and sessions does not pay for pydantic (a tool or output_type does)."""
    loaded = _modules_after("from threadline import Agent, Runner, SQLiteSession, open_store")
    assert "pydantic" not in {m.split(".")[0] for m in loaded}
