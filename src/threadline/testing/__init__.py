"""Test doubles shipped with threadline, so applications can test their agents offline.

``ScriptedModel`` answers in-process from a script; ``ScriptedServer`` is a real
OpenAI-compatible HTTP server on 127.0.0.1 (chat completions and responses, streaming SSE,
tool calls, scripted HTTP errors) for testing provider code through the real ``openai`` client.
"""

from .scripted_model import ScriptedModel, ScriptStep, call
from .server import (
    RecordedRequest,
    Responder,
    ScriptedCompletion,
    ScriptedError,
    ScriptedServer,
    ServerStep,
    error,
    reply,
    tool_calls,
)

__all__ = [
    "RecordedRequest",
    "Responder",
    "ScriptStep",
    "ScriptedCompletion",
    "ScriptedError",
    "ScriptedModel",
    "ScriptedServer",
    "ServerStep",
    "call",
    "error",
    "reply",
    "tool_calls",
]
