"""Keys, tenants, limits, secrets and CORS; and the stateless pass-through (memory off)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from http.client import HTTPConnection
from typing import Any

import openai
import pytest

from threadline import Agent
from threadline.server import Limits
from threadline.sessions import open_store
from threadline.testing.server import ScriptedServer, error, reply, tool_calls

from .conftest import UPSTREAM_KEY, Served, http, upstream_model

ACME = "sk-acme-0123456789"
GLOBEX = "sk-globex-0123456789"
ADMIN = "sk-admin-0123456789"
KEYS = {ACME: "acme", GLOBEX: "globex", ADMIN: None}


def test_a_key_is_required(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    served = serve(api_keys={ACME: None})
    with pytest.raises(openai.AuthenticationError) as missing:
        served.client(api_key="sk-wrong-0123456789").models.list()
    assert missing.value.code == "invalid_api_key"
    answer = http("GET", served.base_url + "/models")
    assert answer.status == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert http("GET", served.base_url + "/models", headers={"authorization": ACME}).status == 401
    assert [m.id for m in served.client(api_key=ACME).models.list()] == ["assistant"]
    # the schema and the health check are public
    assert http("GET", served.root + "/openapi.json").status == 200
    assert http("GET", served.root + "/health").status == 200
    assert upstream.requests == []


def test_tenants_see_only_their_own(
    serve: Callable[..., Served], upstream: ScriptedServer, store_url: str
) -> None:
    served = serve(api_keys=KEYS)
    acme, globex, admin = (served.client(api_key=key) for key in (ACME, GLOBEX, ADMIN))
    upstream.add(reply("for acme"), reply("acme alone"))
    conv = acme.conversations.create(
        metadata={"owner": "acme"}, items=[{"role": "user", "content": "acme secret"}]
    )
    answer = acme.responses.create(model="assistant", input="hi", conversation=conv.id)
    chain = acme.responses.create(model="assistant", input="alone")

    # another tenant's ids are not found (404), whatever the route
    for call in (
        lambda: globex.conversations.retrieve(conv.id),
        lambda: globex.conversations.items.list(conv.id),
        lambda: globex.conversations.update(conv.id, metadata={"owner": "globex"}),
        lambda: globex.conversations.delete(conv.id),
        lambda: globex.conversations.items.create(
            conv.id, items=[{"role": "user", "content": "x"}]
        ),
        lambda: globex.responses.create(model="assistant", input="x", conversation=conv.id),
        lambda: globex.responses.retrieve(answer.id),
        lambda: globex.responses.retrieve(chain.id),
        lambda: globex.responses.delete(answer.id),
        lambda: globex.responses.input_items.list(answer.id),
        lambda: globex.responses.create(
            model="assistant", input="x", previous_response_id=chain.id
        ),
        lambda: globex.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"conversation": conv.id},
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert len(upstream.requests) == 2
    listing = http(
        "GET",
        served.base_url + "/threadline/conversations",
        headers={"authorization": f"Bearer {GLOBEX}"},
    )
    assert listing.json()["data"] == []
    found = http(
        "GET",
        served.base_url + "/threadline/search?q=secret",
        headers={"authorization": f"Bearer {GLOBEX}"},
    )
    assert found.json()["data"] == []
    mine = http(
        "GET",
        served.base_url + "/threadline/search?q=secret",
        headers={"authorization": f"Bearer {ACME}"},
    )
    assert [hit["conversation_id"] for hit in mine.json()["data"]] == [conv.id]
    # the same conversation id in two tenants is two sessions
    assert acme.conversations.retrieve(conv.id).metadata == {"owner": "acme"}
    # the no-tenant key sees the store as it is: the tenant's prefix is part of the id
    assert admin.conversations.retrieve(f"acme:{conv.id}").metadata == {"owner": "acme"}
    with pytest.raises(openai.NotFoundError):
        admin.conversations.retrieve(conv.id)


async def test_a_tenants_conversation_is_a_prefixed_session(
    serve: Callable[..., Served], upstream: ScriptedServer, store_url: str
) -> None:
    served = serve(api_keys=KEYS)
    async with served.async_client(api_key=ACME) as client:
        conv = await client.conversations.create(items=[{"role": "user", "content": "hello"}])
    store = open_store(store_url)
    try:
        items = await store.session(f"acme:{conv.id}").get_items()
        assert [item["content"] for item in items] == ["hello"]
    finally:
        await store.aclose()


def test_limits_are_clear_4xx(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    served = serve(limits=Limits(max_body_bytes=4000, max_items=3, max_string=500))
    client = served.client()
    big = http("POST", served.base_url + "/conversations", raw=b'{"items": [' + b" " * 5000 + b"]}")
    assert big.status == 413 and big.json()["error"]["code"] == "request_too_large"
    # a body sent without a length (chunked) is cut off at the limit too
    host, port = served.root.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=30)

    def chunks() -> Iterator[bytes]:
        yield b'{"items": ['
        for _ in range(100):
            yield b" " * 100

    connection.request(
        "POST",
        "/v1/conversations",
        body=chunks(),
        headers={"content-type": "application/json"},
        encode_chunked=True,
    )
    chunked = connection.getresponse()
    assert chunked.status == 413
    connection.close()
    with pytest.raises(openai.BadRequestError) as many:
        client.conversations.create(items=[{"role": "user", "content": "x"}] * 4)
    assert "more than the 3" in many.value.message
    with pytest.raises(openai.BadRequestError) as long:
        client.conversations.create(items=[{"role": "user", "content": "x" * 501}])
    assert "501 characters" in long.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "x"}] * 4
        )
    assert upstream.requests == []


def test_no_secret_or_traceback_in_any_response(
    serve: Callable[..., Served], upstream: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_instructions(context: Any, agent: Any) -> str:
        raise RuntimeError("boom")

    agents = {
        "assistant": Agent(name="assistant", instructions="i", model=upstream_model(upstream)),
        "broken": Agent(
            name="broken", instructions=broken_instructions, model=upstream_model(upstream)
        ),
    }
    served = serve(agents=agents, api_keys={ACME: None})
    client = served.client(api_key=ACME)
    caplog.set_level(logging.DEBUG, logger="threadline")
    bodies: list[str] = []
    # the upstream echoes its key in an error (some providers do)
    upstream.add(error(401, f"Incorrect API key provided: {UPSTREAM_KEY}"))
    with pytest.raises(openai.APIStatusError) as upstream_failed:
        client.responses.create(model="assistant", input="x")
    assert upstream_failed.value.status_code == 502
    bodies.append(upstream_failed.value.response.text)
    upstream.add(error(401, f"bad key {UPSTREAM_KEY}"))
    with pytest.raises(openai.APIStatusError) as chat_failed:
        client.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "x"}]
        )
    bodies.append(chat_failed.value.response.text)
    # mid-stream: the failure is an event, scrubbed as well
    conv = client.conversations.create()
    upstream.add(tool_calls(("nothing", {})), error(400, f"key {UPSTREAM_KEY} refused"))
    events = list(
        client.responses.create(model="assistant", input="x", conversation=conv.id, stream=True)
    )
    bodies.append(str([event.model_dump() for event in events]))
    # an unexpected error is a 500 naming its type only
    with pytest.raises(openai.InternalServerError) as unexpected:
        client.responses.create(model="broken", input="x")
    bodies.append(unexpected.value.response.text)
    assert "RuntimeError" in unexpected.value.message
    for body in bodies:
        assert UPSTREAM_KEY not in body
        assert ACME not in body
        assert "Traceback" not in body and 'File "' not in body
    assert ACME not in caplog.text
    assert UPSTREAM_KEY not in caplog.text
    assert "the upstream model failed" in caplog.text  # the log says what happened


def test_cors_is_off_unless_configured(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    plain = serve()
    answer = http("GET", plain.base_url + "/models", headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in answer.headers
    allowed = serve(cors_origins=["https://app.example"], api_keys={ACME: None})
    answer = http(
        "GET",
        allowed.base_url + "/models",
        headers={"origin": "https://app.example", "authorization": f"Bearer {ACME}"},
    )
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    preflight = http(
        "OPTIONS",
        allowed.base_url + "/responses",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert preflight.status == 200  # a preflight carries no key
    other = http(
        "GET",
        allowed.base_url + "/models",
        headers={"origin": "https://evil.example", "authorization": f"Bearer {ACME}"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_memory_off_is_a_stateless_pass_through(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    served = serve(memory=False, store=None)
    client = served.client()
    upstream.add(reply("one"), reply("two"))
    answer = client.responses.create(model="assistant", input="hi")
    assert answer.output_text == "one" and answer.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(answer.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="assistant", input="x", previous_response_id=answer.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="assistant", input="x", conversation="conv_1")
    with pytest.raises(openai.NotFoundError):
        client.conversations.create()
    completion = client.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "two"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"conversation": "c"},
        )
    paths = http("GET", served.root + "/openapi.json").json()["paths"]
    assert not any(path.startswith("/v1/conversations") for path in paths)
