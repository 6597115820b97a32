"""The layers of docs/architecture.md hold: imports inside threadline point one way, down.

Every import a module of ``src/threadline`` makes of another threadline module (at module
level or inside a function, relative or absolute) is checked against the layer order below;
``threadline/__init__.py`` is the curated facade and may name anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import threadline

ROOT = Path(threadline.__file__).parent

LAYERS: list[list[str]] = [
    ["errors", "_aio"],
    ["items"],
    ["usage"],
    ["context"],
    ["sessions"],
    ["models"],
    ["tools"],
    ["agent_output"],
    ["agent", "guardrails"],
    ["tracing"],
    ["run"],
    ["testing"],
    ["server"],
    ["cli"],
]
"""Bottom first: a module may import its own layer and the layers above it in this list."""

RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path) -> list[tuple[int, str]]:
    return _imports_of(
        path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py"
    )


def _imports_of(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    package = module.split(".")
    if not is_package:
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{alias.name}" for alias in node.names]
                found += [(node.lineno, name) for name in [target, *names]]
            elif node.module:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.startswith("threadline.")]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_every_top_level_module_has_a_layer() -> None:
    names = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    names -= {"__init__", "__pycache__", "py"}
    assert sorted(names - set(RANK)) == []


def test_imports_point_down_the_layers() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == ROOT / "__init__.py":
            continue
        own = _layer(_module_name(path))
        assert own is not None, path
        for line, name in _imported(path):
            layer = _layer(name)
            if layer is not None and RANK[layer] > RANK[own]:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    assert upward == []


def test_the_check_sees_upward_imports() -> None:
    """The checker itself: relative, absolute and function-level imports are all seen."""
    source = "from ..run import Runner\ndef f():\n    import threadline.cli\n"
    imported = _imports_of(source, "threadline.sessions.probe", is_package=False)
    assert (1, "threadline.run") in imported and (3, "threadline.cli") in imported
    assert RANK[_layer("threadline.run") or ""] > RANK["sessions"]
