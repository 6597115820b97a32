"""The two libraries behind one small interface, so each workload is written once.

``load(name)`` returns a :class:`Side` for ``"threadline"`` or ``"sdk"`` (the OpenAI Agents
SDK). Each side gets a zero-latency model that answers every request with one assistant
message echoing the marker of the newest user message, built fresh per call (so ids differ)
with a fixed usage, and agents that send the full history (no limit).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import _items

_ids = itertools.count()


def _answer(history: Any) -> tuple[str, str]:
    """(text, item id) of the answer to the newest user message in ``history``."""
    marker = "?"
    if isinstance(history, str):
        marker = _items.marker_of({"content": history}) or "?"
    else:
        for item in reversed(history):
            if _items.is_user(item):
                marker = _items.marker_of(item) or "?"
                break
    return _items.assistant_text(marker), f"msg_{next(_ids):016x}"


class Side:
    """What a workload needs from one library."""

    name: str
    version: str

    def session(self, session_id: str, db_path: str) -> Any:
        """A file-backed session with the library's default settings."""
        raise NotImplementedError

    def agent(self, *, yield_to_loop: bool = False) -> Any:
        """An agent on the zero-latency model."""
        raise NotImplementedError

    async def run(self, agent: Any, text: str, session: Any) -> Any:
        """One ``Runner.run`` turn."""
        raise NotImplementedError

    def close(self, session: Any) -> None:
        """Release the session's connections."""
        close = getattr(session, "close", None)
        if callable(close):
            close()

    def durability(self, session: Any) -> dict[str, Any]:
        """journal_mode and synchronous as the session's own write connection has them."""
        raise NotImplementedError


class ThreadlineSide(Side):
    name = "threadline"

    def __init__(self, scripted_text: bool = False) -> None:
        import threadline
        from threadline.models.base import ModelResponse
        from threadline.testing import ScriptedModel
        from threadline.usage import Usage

        try:
            from threadline import SQLiteSession
        except ImportError:  # before the public export lands
            from threadline.sessions.sqlite import SQLiteSession

        threadline.set_tracing_disabled(True)
        self.version = threadline.__version__
        self._threadline = threadline
        self._session_cls = SQLiteSession
        self._scripted_text = scripted_text

        def respond(request: Any) -> Any:
            text, item_id = _answer(request.input)
            if scripted_text:  # let ScriptedModel build the message and estimate usage
                return text
            message = _items.assistant_item(text, item_id)
            return ModelResponse(
                output=[message],
                usage=Usage(requests=1, input_tokens=100, output_tokens=100, total_tokens=200),
                response_id=None,
            )

        self._respond = respond
        self._scripted_model = ScriptedModel

    def session(self, session_id: str, db_path: str) -> Any:
        return self._session_cls(session_id, db_path)

    def agent(self, *, yield_to_loop: bool = False) -> Any:
        model = self._scripted_model(responder=self._respond)
        if yield_to_loop:
            inner = model.get_response

            async def get_response(request: Any) -> Any:
                await asyncio.sleep(0)
                response = await inner(request)
                await asyncio.sleep(0)
                return response

            model.get_response = get_response  # type: ignore[method-assign]
        return self._threadline.Agent(name="bench", instructions="Answer briefly.", model=model)

    async def run(self, agent: Any, text: str, session: Any) -> Any:
        return await self._threadline.Runner.run(agent, text, session=session)

    def durability(self, session: Any) -> dict[str, Any]:
        engine = session.store._engine

        def pragmas(conn: Any) -> dict[str, Any]:
            return {
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0],
            }

        return engine.submit_write(pragmas).result()


class SdkSide(Side):
    name = "sdk"

    def __init__(self) -> None:
        import agents
        from agents.items import ModelResponse
        from agents.models.interface import Model
        from agents.usage import Usage
        from openai.types.responses import ResponseOutputMessage, ResponseOutputText

        agents.set_tracing_disabled(True)
        self._agents = agents
        from importlib.metadata import version

        self.version = version("openai-agents")

        class FixedModel(Model):
            """Zero-latency model: one assistant message per call, fixed usage."""

            def __init__(self, yield_to_loop: bool) -> None:
                self.yield_to_loop = yield_to_loop

            async def get_response(
                self,
                system_instructions: Any,
                input: Any,
                model_settings: Any,
                tools: Any,
                output_schema: Any,
                handoffs: Any,
                tracing: Any,
                *,
                previous_response_id: Any = None,
                conversation_id: Any = None,
                prompt: Any = None,
            ) -> Any:
                if self.yield_to_loop:
                    await asyncio.sleep(0)
                text, item_id = _answer(input)
                message = ResponseOutputMessage(
                    id=item_id,
                    type="message",
                    role="assistant",
                    status="completed",
                    content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
                )
                if self.yield_to_loop:
                    await asyncio.sleep(0)
                return ModelResponse(
                    output=[message],
                    usage=Usage(requests=1, input_tokens=100, output_tokens=100, total_tokens=200),
                    response_id=None,
                )

            def stream_response(self, *args: Any, **kwargs: Any) -> Any:
                raise NotImplementedError("the benchmark does not stream")

        self._model_cls = FixedModel

    def session(self, session_id: str, db_path: str) -> Any:
        return self._agents.SQLiteSession(session_id, db_path)

    def agent(self, *, yield_to_loop: bool = False) -> Any:
        return self._agents.Agent(
            name="bench", instructions="Answer briefly.", model=self._model_cls(yield_to_loop)
        )

    async def run(self, agent: Any, text: str, session: Any) -> Any:
        return await self._agents.Runner.run(agent, text, session=session)

    def durability(self, session: Any) -> dict[str, Any]:
        conn = session._get_connection()  # the connection its writes use on this thread
        return {
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0],
        }


def load(name: str) -> Side:
    """The side called ``name``: ``threadline``, ``threadline-scripted-text`` or ``sdk``."""
    if name == "threadline":
        return ThreadlineSide()
    if name == "threadline-scripted-text":
        side = ThreadlineSide(scripted_text=True)
        side.name = name
        return side
    if name == "sdk":
        return SdkSide()
    raise ValueError(f"unknown side {name!r}")
