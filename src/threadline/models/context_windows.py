"""How many tokens a model can take in one request: a table of well-known names, and the lookup.

The runner uses a model's context window to choose how much stored history to send (see
:func:`threadline.run.context_budget.history_budget`). The window comes from, in order:

1. ``ModelSettings(context_window=...)`` on the run or the agent (always wins);
2. the model object's own ``context_window`` attribute (the local model sets it to the context
   its server was started with, 8192 tokens by default);
3. :data:`KNOWN_CONTEXT_WINDOWS`, by model name (case ignored): an exact name, else the longest
   known prefix (``gpt-4o-2024-08-06`` is a ``gpt-4o``, Ollama's ``llama3.1:8b`` a
   ``llama3.1``), also after a ``provider/`` prefix is taken off (``openai/gpt-4o``);
4. otherwise unknown: no default budget is applied and the whole stored history is sent.

A self-hosted server (vLLM ``--max-model-len``, llama.cpp ``-c``, Ollama ``num_ctx``) often runs
a model with a smaller window than the model supports: give that number as
``ModelSettings(context_window=...)``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KNOWN_CONTEXT_WINDOWS", "context_window_of", "known_context_window"]

KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    # OpenAI
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    # Google (OpenAI-compatible endpoint)
    "gemini-2.5": 1_048_576,
    "gemini-2.0": 1_048_576,
    "gemini-1.5-pro": 2_097_152,
    "gemini-1.5-flash": 1_048_576,
    # Anthropic (OpenAI-compatible endpoint)
    "claude-": 200_000,
    # open models, at the window they were trained for (servers may run them smaller)
    "llama-3.1": 131_072,
    "llama3.1": 131_072,
    "llama-3.2": 131_072,
    "llama3.2": 131_072,
    "llama-3.3": 131_072,
    "llama3.3": 131_072,
    "llama3": 8_192,
    "qwen2.5": 32_768,
    "mistral": 32_768,
    "gemma-3-270m": 32_768,
    "gemma3:270m": 32_768,
    "gemma2": 8_192,
}
"""Well-known model names (or name prefixes) → context window in tokens (docs/models.md)."""


def known_context_window(name: str | None) -> int | None:
    """The window of the model called ``name`` in :data:`KNOWN_CONTEXT_WINDOWS`, else ``None``."""
    if not isinstance(name, str) or not name:
        return None
    lowered = name.strip().lower()
    candidates = [lowered]
    if "/" in lowered:  # "openai/gpt-4o" (OpenRouter), "meta-llama/Llama-3.1-8B-Instruct"
        candidates.append(lowered.rsplit("/", 1)[1])
    for candidate in candidates:
        if candidate in KNOWN_CONTEXT_WINDOWS:
            return KNOWN_CONTEXT_WINDOWS[candidate]
    for candidate in candidates:
        prefixes = [key for key in KNOWN_CONTEXT_WINDOWS if candidate.startswith(key)]
        if prefixes:
            return KNOWN_CONTEXT_WINDOWS[max(prefixes, key=len)]
    return None


def context_window_of(model: Any, setting: int | None = None) -> int | None:
    """The context window of ``model``: ``setting`` (``ModelSettings.context_window``) when
    given, else the model's ``context_window`` attribute, else the table by its ``model`` name."""
    if setting is not None:
        return setting
    own = getattr(model, "context_window", None)
    if isinstance(own, int) and not isinstance(own, bool) and own > 0:
        return own
    return known_context_window(getattr(model, "model", None))
