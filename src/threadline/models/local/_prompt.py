"""How chat messages become a prompt for the embedded base model, and the settings it needs.

The default model is a *base* model: it continues text, it was never taught a chat format.
It does answer well when the conversation is written as a plain transcript: a short
preamble, a few example exchanges, the system instructions, then the history as ``User:`` /
``Assistant:`` lines, ending with ``Assistant:`` for it to continue. Generation stops at the
next ``User:`` line, so it answers exactly one turn.

The transcript is a Jinja chat template that llama.cpp's server renders for every
chat-completions request, so the history travels as ordinary ``messages``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from threadline.models.settings import ModelSettings

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EXAMPLES",
    "PREAMBLE",
    "STOP_SEQUENCES",
    "build_chat_template",
    "chat_template",
    "local_settings",
]

USER_LABEL = "User"
ASSISTANT_LABEL = "Assistant"
TOOL_LABEL = "Tool result"

PREAMBLE = (
    "Below are conversations between a User and a friendly, knowledgeable Assistant. "
    "The Assistant answers each message correctly in one or two short sentences, and "
    "remembers everything said earlier in the same conversation."
)

# Each example is one conversation of (user, assistant) turns. They teach the answer length
# and that follow-up questions ("it", "there", "my name") refer back to earlier turns.
EXAMPLES: tuple[tuple[tuple[str, str], ...], ...] = (
    (
        ("Hi! My name is Sam.", "Hi Sam, nice to meet you! How can I help you today?"),
        ("Where is the Eiffel Tower?", "The Eiffel Tower is in Paris."),
        ("What country is that in?", "Paris is in France."),
        ("How tall is it?", "The Eiffel Tower is about 330 meters tall."),
        ("What's my name?", "Your name is Sam."),
    ),
    (
        ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
        ("When was he born?", "Leonardo da Vinci was born in 1452."),
        ("What is 3 + 4?", "3 + 4 = 7."),
        ("And times 2?", "7 times 2 is 14."),
    ),
)

# Where the model's answer ends: it would go on to write the user's next line itself.
STOP_SEQUENCES: tuple[str, ...] = (
    f"\n{USER_LABEL}:",
    f"\n{ASSISTANT_LABEL}:",
    f"\n{TOOL_LABEL}:",
)

# A base model that misses its stop sequence keeps writing; this bounds one answer.
DEFAULT_MAX_TOKENS = 256


def _literal(text: str) -> str:
    """``text`` as a Jinja expression that prints it verbatim (no template syntax inside)."""
    return "{{ " + json.dumps(text) + " }}"


def _examples_text(examples: Sequence[Sequence[tuple[str, str]]]) -> str:
    blocks = []
    for conversation in examples:
        lines = []
        for user, assistant in conversation:
            lines.append(f"{USER_LABEL}: {user}\n{ASSISTANT_LABEL}: {assistant}\n")
        blocks.append("".join(lines))
    return "\n".join(blocks)


# Message content may be a string or a list of typed parts; only text parts carry text.
_CONTENT_MACRO = (
    "{%- macro text(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- elif content -%}{%- for part in content -%}"
    "{%- if part.text is defined -%}{{ part.text }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
)


def build_chat_template(
    preamble: str = PREAMBLE,
    examples: Sequence[Sequence[tuple[str, str]]] = EXAMPLES,
) -> str:
    """The Jinja chat template: preamble, examples, system text, then the conversation.

    The fixed text comes first so llama.cpp's prompt cache keeps it across requests and
    agents. System messages (the agent's instructions) follow, in their order, each as a
    paragraph.

    User and assistant messages become ``User:`` / ``Assistant:`` lines. A history made by
    another model may hold tool calls: each tool's result becomes a ``Tool result:`` line (the
    calls themselves are left out, or the model would imitate them), so the facts it
    brought stay in the conversation.
    """
    header = preamble + "\n\n" + _examples_text(examples) + "\n"
    newline = _literal("\n")
    return (
        _CONTENT_MACRO
        + _literal(header)
        + "{%- for message in messages -%}"
        + "{%- if message.role == 'system' and message.content -%}"
        + "{{ text(message.content) | trim }}"
        + _literal("\n\n")
        + "{%- endif -%}"
        + "{%- endfor -%}"
        + "{%- for message in messages -%}"
        + "{%- if message.role == 'user' -%}"
        + _literal(f"{USER_LABEL}: ")
        + "{{ text(message.content) | trim }}"
        + newline
        + "{%- elif message.role == 'assistant' -%}"
        + "{%- if message.content -%}"
        + _literal(f"{ASSISTANT_LABEL}: ")
        + "{{ text(message.content) | trim }}"
        + newline
        + "{%- endif -%}"
        + "{%- elif message.role == 'tool' -%}"
        + _literal(f"{TOOL_LABEL}: ")
        + "{{ text(message.content) | trim }}"
        + newline
        + "{%- endif -%}"
        + "{%- endfor -%}"
        + "{%- if add_generation_prompt -%}"
        + _literal(f"{ASSISTANT_LABEL}:")
        + "{%- endif -%}"
    )


def chat_template() -> str:
    """The template the local server is started with."""
    return build_chat_template()


def local_settings(settings: ModelSettings) -> ModelSettings:
    """``settings`` with the local model's defaults filled in.

    Temperature 0 and a bounded answer length unless the caller set them; the transcript's
    stop sequences are always sent, followed by any the caller added.
    """
    defaults = ModelSettings(temperature=0.0, max_tokens=DEFAULT_MAX_TOKENS)
    merged = defaults.resolve(settings)
    stops = list(STOP_SEQUENCES)
    for stop in settings.stop or ():
        if stop not in stops:
            stops.append(stop)
    merged.stop = stops
    return merged
