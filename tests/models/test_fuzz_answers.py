"""Fuzzing both model APIs' answer parsers with truncated, mutated and garbage answers.

The real ``openai`` client reads every answer, over an ``httpx`` ``MockTransport`` (the same
client code as real HTTP, minus the sockets, so hundreds of examples take seconds; the real-HTTP
cases are in test_truncated_streams.py and test_malformed_answers.py). The property: a
well-formed answer is parsed into items that can be stored, a truncated one is never taken for
a shorter answer, and anything else raises a threadline ``ModelError`` (or
``ModelBehaviorError``) — never any other exception.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import AsyncOpenAI

from threadline.errors import ModelBehaviorError, ModelError
from threadline.items import message_text, user_message, validate_item
from threadline.models.base import ModelRequest, ModelResponse, ResponseCompleted, TextDelta
from threadline.models.openai_chat import OpenAIChatCompletionsModel
from threadline.models.openai_responses import OpenAIResponsesModel
from threadline.testing._wire import (
    Answer,
    chat_chunks,
    chat_completion,
    encode_sse,
    response_events,
    response_object,
)

from ._strategies import FUZZ, JSON, mutated

try:  # the openai client speaks through httpx2 from 3.x on, through httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx  # type: ignore[no-redef]

REQUEST = ModelRequest(instructions=None, input=[user_message("hi")])
TRUSTED = (ModelError, ModelBehaviorError)
SSE = "text/event-stream"


# --- the transport ----------------------------------------------------------------------------


class _Broken(httpx.AsyncByteStream):
    """A body that delivers ``data`` and then loses the connection."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.data:
            yield self.data
        raise httpx.ReadError("connection reset by peer")


class _Wire:
    """One event loop and one client, answering each request with the body last set."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.body, self.content_type, self.broken = b"", "", False
        http = httpx.AsyncClient(transport=httpx.MockTransport(self._answer))
        self.client = AsyncOpenAI(
            api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, http_client=http
        )
        self.models: dict[str, Any] = {
            "chat": OpenAIChatCompletionsModel("m", self.client),
            "responses": OpenAIResponsesModel("m", self.client),
        }

    def _answer(self, request: httpx.Request) -> httpx.Response:
        headers = {"content-type": self.content_type}
        if self.broken:
            return httpx.Response(200, headers=headers, stream=_Broken(self.body))
        return httpx.Response(200, headers=headers, content=self.body)

    def call(
        self, api: str, streamed: bool, body: bytes, content_type: str, *, broken: bool = False
    ) -> tuple[ModelResponse | None, BaseException | None, list[str]]:
        """Ask ``api`` once, answered with ``body``: (response, error, text deltas)."""
        self.body, self.content_type, self.broken = body, content_type, broken
        return self.loop.run_until_complete(self._ask(self.models[api], streamed))

    @staticmethod
    async def _ask(
        model: Any, streamed: bool
    ) -> tuple[ModelResponse | None, BaseException | None, list[str]]:
        deltas: list[str] = []
        try:
            if not streamed:
                return await model.get_response(REQUEST), None, deltas
            final = None
            async for event in model.stream_response(REQUEST):
                if isinstance(event, TextDelta):
                    deltas.append(event.delta)
                else:
                    assert isinstance(event, ResponseCompleted)
                    assert final is None, "one ResponseCompleted, at the end"
                    final = event.response
            assert final is not None, "a stream either completes or raises"
            return final, None, deltas
        except TRUSTED as exc:
            return None, exc, deltas

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def wire() -> Iterator[_Wire]:
    fuzz_wire = _Wire()
    yield fuzz_wire
    fuzz_wire.close()


def _check_error(error: BaseException) -> None:
    message = str(error)
    assert message and "\n" not in message
    if isinstance(error, ModelError):
        assert error.url is not None and error.url in message


def _check_storable(response: ModelResponse) -> None:
    """The items a run would store are valid items (the store would accept them)."""
    for item in response.output:
        assert isinstance(item.get("type"), str)
        if item["type"] in ("message", "function_call"):
            validate_item(item)


# --- well-formed answers ----------------------------------------------------------------------

WORDS = st.text(alphabet=st.sampled_from("ab é\n{}\"'"), max_size=12)
CALLS = st.lists(
    st.tuples(st.sampled_from(["f", "get_weather", "transfer"]), WORDS), max_size=3
).map(tuple)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    text = draw(st.none() | WORDS.filter(bool))
    calls = draw(CALLS)
    if text is None and not calls:
        text = "hi"
    tokens = draw(st.tuples(st.integers(0, 9), st.integers(0, 9)))
    return Answer("k1", "m", text, calls, input_tokens=tokens[0], output_tokens=tokens[1])


def _chat_events(answer: Answer) -> list[Any]:
    return [*chat_chunks(answer, include_usage=True), "[DONE]"]


def _responses_events(answer: Answer) -> list[Any]:
    return list(response_events(answer, {}))


def _encode(events: list[Any]) -> bytes:
    parts = []
    for event in events:
        if isinstance(event, str):
            parts.append(encode_sse(event))
        else:
            kind = event.get("type") if isinstance(event, dict) else None
            data = json.dumps(event)
            parts.append(encode_sse(data, event=kind if isinstance(kind, str) else None))
    return b"".join(parts)


def _got_calls(response: ModelResponse) -> list[tuple[str, str]]:
    return [(i["name"], i["arguments"]) for i in response.output if i["type"] == "function_call"]


def _got_text(response: ModelResponse) -> str:
    return "".join(message_text(i) for i in response.output if i["type"] == "message")


# --- truncation -------------------------------------------------------------------------------

# The event that completes a stream, per API.
ENDS: dict[str, Callable[[Any], bool]] = {
    "chat": lambda e: isinstance(e, dict) and any(c["finish_reason"] for c in e["choices"]),
    "responses": lambda e: isinstance(e, dict) and e["type"] == "response.completed",
}
EVENTS = {"chat": _chat_events, "responses": _responses_events}


@pytest.mark.parametrize("api", ["chat", "responses"])
@FUZZ
@given(answer=answers(), data=st.data(), broken=st.booleans())
def test_a_stream_cut_anywhere_is_complete_or_an_error_never_shorter(
    wire: _Wire, api: str, answer: Answer, data: st.DataObject, broken: bool
) -> None:
    events = EVENTS[api](answer)
    body = _encode(events)
    end = next(i for i, e in enumerate(events) if ENDS[api](e))
    complete_at = len(_encode(events[: end + 1]))
    cut = data.draw(st.integers(0, len(body)), label="cut")

    response, error, deltas = wire.call(api, True, body[:cut], SSE, broken=broken)

    if cut < complete_at:
        assert response is None, f"a stream cut at {cut} of {len(body)} bytes was accepted"
        assert error is not None
        _check_error(error)
    elif broken and error is not None:  # complete, then the connection broke: may be refused
        _check_error(error)
    else:
        assert error is None, error
        assert response is not None
        assert _got_text(response) == (answer.text or "")
        assert _got_calls(response) == list(answer.calls)
        if api == "chat":
            assert "".join(deltas) == (answer.text or "")
        _check_storable(response)


@pytest.mark.parametrize("api", ["chat", "responses"])
@FUZZ
@given(answer=answers(), data=st.data())
def test_a_body_cut_anywhere_is_complete_or_an_error(
    wire: _Wire, api: str, answer: Answer, data: st.DataObject
) -> None:
    document = chat_completion(answer) if api == "chat" else response_object(answer, {})
    body = json.dumps(document).encode()
    cut = data.draw(st.integers(0, len(body)), label="cut")

    response, error, _ = wire.call(api, False, body[:cut], "application/json")

    if cut == len(body):
        assert response is not None, error
        assert _got_text(response) == (answer.text or "")
        assert _got_calls(response) == list(answer.calls)
        _check_storable(response)
    else:
        assert error is not None
        _check_error(error)


# --- mutation ---------------------------------------------------------------------------------


def _outcome_is_trusted(response: ModelResponse | None, error: BaseException | None) -> None:
    if error is not None:
        _check_error(error)
    else:
        assert response is not None
        _check_storable(response)


@pytest.mark.parametrize("api", ["chat", "responses"])
@FUZZ
@given(answer=answers(), data=st.data())
def test_a_mutated_stream_is_parsed_or_an_error(
    wire: _Wire, api: str, answer: Answer, data: st.DataObject
) -> None:
    events = mutated(data, EVENTS[api](answer))

    response, error, _ = wire.call(api, True, _encode(events), SSE)

    _outcome_is_trusted(response, error)


@pytest.mark.parametrize("api", ["chat", "responses"])
@FUZZ
@given(answer=answers(), data=st.data())
def test_a_mutated_body_is_parsed_or_an_error(
    wire: _Wire, api: str, answer: Answer, data: st.DataObject
) -> None:
    document = chat_completion(answer) if api == "chat" else response_object(answer, {})
    body = json.dumps(mutated(data, document)).encode()

    response, error, _ = wire.call(api, False, body, "application/json")

    _outcome_is_trusted(response, error)


# --- garbage ----------------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(["application/json", SSE, "text/html", "text/plain", ""])
GARBAGE = (
    st.binary(max_size=60)
    | st.text(max_size=60).map(str.encode)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.lists(JSON | st.text(max_size=8), max_size=4).map(
        lambda events: b"".join(
            encode_sse(e if isinstance(e, str) else json.dumps(e)) for e in events
        )
    )
)


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "get"])
@FUZZ
@given(body=GARBAGE, content_type=CONTENT_TYPES)
def test_garbage_is_parsed_or_an_error(
    wire: _Wire, api: str, streamed: bool, body: bytes, content_type: str
) -> None:
    response, error, _ = wire.call(api, streamed, body, content_type)

    _outcome_is_trusted(response, error)
