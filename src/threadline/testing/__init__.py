"""Test doubles shipped with threadline, so applications can test their agents offline.

``ScriptedModel`` answers in-process from a script; ``ScriptedServer`` is a real
OpenAI-compatible HTTP server on 127.0.0.1 (chat completions and responses, streaming SSE,
tool calls, scripted HTTP errors, cut-off streams and garbage bodies) for testing provider code
through the real ``openai`` client.
"""

from .scripted_model import ScriptedModel, ScriptStep, call
from .server import (
    RecordedRequest,
    Responder,
    ScriptedCompletion,
    ScriptedCutOff,
    ScriptedError,
    ScriptedRaw,
    ScriptedServer,
    ServerStep,
    cut_off,
    error,
    raw,
    reply,
    tool_calls,
)

__all__ = [
    "RecordedRequest",
    "Responder",
    "ScriptStep",
    "ScriptedCompletion",
    "ScriptedCutOff",
    "ScriptedError",
    "ScriptedModel",
    "ScriptedRaw",
    "ScriptedServer",
    "ServerStep",
    "call",
    "cut_off",
    "error",
    "raw",
    "reply",
    "tool_calls",
]
