"""Hypothesis strategies shared by the fuzz tests: arbitrary JSON and random damage to JSON."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
"""Modest by default so the suite stays fast; ``THREADLINE_FUZZ_EXAMPLES=5000`` digs deeper."""

# Strings the parsers branch on are drawn often, so that damage reaches the deep branches.
WORDS = [
    "", "function", "function_call", "function_call_output", "message", "assistant", "user",
    "system", "developer", "tool", "stop", "output_text", "input_text", "input_image",
    "input_file", "refusal", "reasoning", "text", "response.completed",
    "response.output_text.delta", "failed",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-2, 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(WORDS)
    | st.text(max_size=6)
)
KEYS = st.sampled_from(["type", "role", "id", "text", "content", "name", "call_id", "x"])
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)


def mutate(data: st.DataObject, value: Any) -> Any:
    """``value`` (JSON) with one random change somewhere inside: an entry replaced or deleted."""
    if isinstance(value, dict) and value:
        keys: list[Any] = sorted(value)
    elif isinstance(value, list) and value:
        keys = list(range(len(value)))
    else:
        return data.draw(JSON, label="replacement")
    key = data.draw(st.sampled_from(keys), label="key")
    action = data.draw(st.sampled_from(["descend", "descend", "replace", "delete"]))
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if action == "delete":
        del copy[key]
    elif action == "replace":
        copy[key] = data.draw(JSON, label="replacement")
    else:
        copy[key] = mutate(data, value[key])
    return copy


def mutated(data: st.DataObject, value: Any) -> Any:
    """``value`` after one to three random changes."""
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        value = mutate(data, value)
    return value
