"""Search helpers shared by every backend: the words a query looks for, and snippets.

Backends with an index of their own (SQLite FTS5) match and cut snippets there, with the same
word rules: whole words, case and accents ignored. A backend without one scans with these.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["SNIPPET_WORDS", "fold", "make_snippet", "matches", "search_terms", "word_set"]

SNIPPET_WORDS = 12
"""About how many words a snippet shows around the first match."""

_WORD = re.compile(r"[^\W_]+")  # letters and digits, as SQLite FTS5's unicode61 tokenizer


def fold(text: str) -> str:
    """``text`` in lower case with accents removed (how words are compared)."""
    if text.isascii():  # (the common case: casefold is lower and NFKD changes nothing)
        return text.lower()
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def search_terms(text: str) -> list[str]:
    """The words a search for ``text`` looks for: lower case, accents removed, in order.

    ``"Golden-Gate café"`` looks for ``golden``, ``gate`` and ``cafe``.
    """
    return _WORD.findall(fold(text))


def word_set(text: str) -> set[str]:
    """The distinct words of ``text`` as a search matches them (lower case, no accents): what
    a backend with its own word index (PostgreSQL's ``tsvector``) stores for an item."""
    return set(_WORD.findall(fold(text)))


def matches(text: str, terms: Sequence[str]) -> bool:
    """Whether ``text`` holds every one of ``terms`` as a whole word."""
    words = set(_WORD.findall(fold(text)))
    return all(term in words for term in terms)


def make_snippet(text: str, terms: Sequence[str], words: int = SNIPPET_WORDS) -> str:
    """A short extract of ``text`` around its first match, matched words between ``**``."""
    wanted = set(terms)
    spans = [(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]
    first = next((i for i, span in enumerate(spans) if span[2] in wanted), 0)
    start = max(0, first - words // 3)
    stop = min(len(spans), start + words)
    if not spans:
        return text[:80]
    pieces: list[str] = []
    cursor = spans[start][0] if start > 0 else 0
    for begin, end, word in spans[start:stop]:
        pieces.append(text[cursor:begin])
        chunk = text[begin:end]
        pieces.append(f"**{chunk}**" if word in wanted else chunk)
        cursor = end
    if stop == len(spans):
        pieces.append(text[cursor:])
    snippet = "".join(pieces)
    if start > 0:
        snippet = "…" + snippet
    if stop < len(spans):
        snippet += "…"
    return " ".join(snippet.split())
