"""The transcript template and the request defaults of the local model (no model needed)."""

from __future__ import annotations

import json

from threadline.models.local import _prompt as prompt
from threadline.models.settings import ModelSettings


def _literal(text: str) -> str:
    return "{{ " + json.dumps(text) + " }}"


def test_template_starts_with_the_preamble_and_every_example_verbatim() -> None:
    template = prompt.build_chat_template()
    header = prompt.PREAMBLE + "\n\n"
    for number, conversation in enumerate(prompt.EXAMPLES):
        if number:
            header += "\n"
        for user, assistant in conversation:
            header += f"User: {user}\nAssistant: {assistant}\n"
    header += "\n"
    assert _literal(header) in template
    # The fixed text comes before any message, so llama.cpp can cache it across requests.
    assert template.index(_literal(header)) < template.index("{%- for message in messages")


def test_template_syntax_in_examples_is_printed_not_executed() -> None:
    examples = ((("What is {{ 6 * 7 }}?", "{% if x %}It is 42.{% endif %}"),),)
    template = prompt.build_chat_template(preamble="Say {# nothing #}.", examples=examples)
    header = (
        "Say {# nothing #}.\n\nUser: What is {{ 6 * 7 }}?\n"
        "Assistant: {% if x %}It is 42.{% endif %}\n\n"
    )
    assert _literal(header) in template
    # Outside the one JSON string literal, none of that text appears.
    assert "{{ 6 * 7 }}" not in template.replace(_literal(header), "")


def test_template_labels_turns_as_the_stop_sequences_expect() -> None:
    template = prompt.chat_template()
    for label in ("User: ", "Assistant: ", "Tool result: "):
        assert _literal(label) in template
    assert _literal("Assistant:") in template  # the generation prompt, no trailing space
    assert prompt.STOP_SEQUENCES == ("\nUser:", "\nAssistant:", "\nTool result:")
    # Tool calls are not rendered (the model would imitate them); their results are.
    assert "tool_calls" not in template
    assert "message.role == 'tool'" in template


def test_local_settings_fill_in_temperature_zero_a_length_limit_and_the_stops() -> None:
    merged = prompt.local_settings(ModelSettings())
    assert merged.temperature == 0.0
    assert merged.max_tokens == prompt.DEFAULT_MAX_TOKENS
    assert merged.stop == list(prompt.STOP_SEQUENCES)


def test_local_settings_keep_the_callers_values_and_add_their_stops_last() -> None:
    given = ModelSettings(temperature=0.7, max_tokens=20, seed=3, stop=["END", "\nUser:"])
    merged = prompt.local_settings(given)
    assert (merged.temperature, merged.max_tokens, merged.seed) == (0.7, 20, 3)
    assert merged.stop == [*prompt.STOP_SEQUENCES, "END"]
    assert given.stop == ["END", "\nUser:"]  # the caller's object is not changed
    assert given is not merged
