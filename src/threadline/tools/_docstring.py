"""Read a tool's description and its parameters' descriptions from a docstring.

Three common layouts are understood, and by default all three are tried on the same docstring:

* Google: an ``Args:`` (or ``Arguments:``, ``Parameters:``, ``Keyword Args:``...) section whose
  entries look like ``name: text`` or ``name (type): text``;
* NumPy: a ``Parameters`` heading underlined with dashes, entries ``name : type`` with the text
  indented below;
* Sphinx: ``:param name: text`` fields (``:param type name: text`` too), with ``:type name:``
  fields dropped.

The parameter sections are removed from the description; everything else the docstring says
(summary, body, ``Returns:``, examples...) is kept, since it can help the model use the tool.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DocstringStyle", "ParsedDocstring", "parse_docstring"]

DocstringStyle = Literal["google", "numpy", "sphinx"]

_GOOGLE_HEADERS = {
    "args",
    "arguments",
    "params",
    "parameters",
    "keyword args",
    "keyword arguments",
    "kwargs",
    "other parameters",
}
_GOOGLE_HEADER = re.compile(r"^(?P<title>[A-Za-z][A-Za-z ]*):\s*$")
_GOOGLE_ENTRY = re.compile(
    r"^(?P<name>\*{0,2}\w+)\s*(?:\((?:[^()]|\([^()]*\))*\))?\s*:(?P<text>.*)$"
)

_NUMPY_HEADERS = {"parameters", "other parameters", "params", "arguments", "args"}
_NUMPY_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ENTRY = re.compile(r"^(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")

_SPHINX_PARAM = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?(?P<name>\*{0,2}\w+)\s*:"
    r"(?P<text>.*)$"
)
_SPHINX_TYPE = re.compile(r"^:type\s+\*{0,2}\w+\s*:")


@dataclass
class ParsedDocstring:
    """A docstring split into the tool description and one description per parameter."""

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None, style: DocstringStyle | None = None) -> ParsedDocstring:
    """Split ``doc`` into a description and parameter descriptions.

    ``style`` picks one layout; ``None`` tries Google, NumPy and Sphinx in turn. Parameter names
    keep no leading ``*`` (``*args`` is reported as ``args``).
    """
    if not doc:
        return ParsedDocstring()
    lines = inspect.cleandoc(doc).splitlines()
    parsers: dict[str, Callable[[list[str]], tuple[list[str], dict[str, str]]]] = {
        "google": _parse_google,
        "numpy": _parse_numpy,
        "sphinx": _parse_sphinx,
    }
    chosen = [parsers[style]] if style is not None else list(parsers.values())
    params: dict[str, str] = {}
    for parse in chosen:
        lines, found = parse(lines)
        for name, text in found.items():
            params.setdefault(name, text)
    description = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()
    return ParsedDocstring(description=description, params=params)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(parts: list[str]) -> str:
    """Join wrapped description lines into one paragraph-preserving string."""
    text = "\n".join(part.strip() for part in parts).strip()
    # Lines of one paragraph are re-flowed; blank lines between paragraphs survive.
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def _add(params: dict[str, str], name: str, parts: list[str]) -> None:
    params.setdefault(name.lstrip("*"), _join(parts))


def _parse_google(lines: list[str]) -> tuple[list[str], dict[str, str]]:
    kept: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _GOOGLE_HEADER.match(line.strip())
        if header is None or header["title"].lower() not in _GOOGLE_HEADERS:
            kept.append(line)
            i += 1
            continue
        # A NumPy-style "Parameters" heading has no colon, so it never reaches here.
        base = _indent(line)
        i += 1
        entry_indent: int | None = None
        name: str | None = None
        parts: list[str] = []
        while i < len(lines):
            current = lines[i]
            if current.strip() and _indent(current) <= base:
                break
            i += 1
            if not current.strip():
                parts.append("")
                continue
            if entry_indent is None:
                entry_indent = _indent(current)
            entry = _GOOGLE_ENTRY.match(current.strip())
            if _indent(current) <= entry_indent and entry is not None:
                if name is not None:
                    _add(params, name, parts)
                name, parts = entry["name"], [entry["text"]]
            else:
                parts.append(current)
        if name is not None:
            _add(params, name, parts)
    return kept, params


def _parse_numpy(lines: list[str]) -> tuple[list[str], dict[str, str]]:
    def is_heading(index: int) -> bool:
        return (
            index + 1 < len(lines)
            and bool(lines[index].strip())
            and _NUMPY_UNDERLINE.match(lines[index + 1]) is not None
        )

    kept: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if not (is_heading(i) and lines[i].strip().lower() in _NUMPY_HEADERS):
            kept.append(lines[i])
            i += 1
            continue
        base = _indent(lines[i])
        i += 2
        names: list[str] = []
        parts: list[str] = []
        while i < len(lines) and not is_heading(i):
            current = lines[i]
            i += 1
            entry = _NUMPY_ENTRY.match(current.strip())
            if current.strip() and _indent(current) <= base and entry is not None:
                for n in names:
                    _add(params, n, parts)
                names = [n.strip() for n in entry["names"].split(",")]
                parts = []
            else:
                parts.append(current)
        for n in names:
            _add(params, n, parts)
    return kept, params


def _parse_sphinx(lines: list[str]) -> tuple[list[str], dict[str, str]]:
    kept: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        param = _SPHINX_PARAM.match(stripped)
        if param is None and _SPHINX_TYPE.match(stripped) is None:
            kept.append(line)
            i += 1
            continue
        base = _indent(line)
        parts = [param["text"]] if param is not None else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            if not lines[i].strip() and (i + 1 >= len(lines) or _indent(lines[i + 1]) <= base):
                break  # a blank line followed by less indented text ends the field
            parts.append(lines[i])
            i += 1
        if param is not None:
            _add(params, param["name"], parts)
    return kept, params
