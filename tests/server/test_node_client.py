"""The official ``openai`` Node client (npm, pinned in tests/node/package-lock.json) against the server.

``threadline serve`` runs in a subprocess on a SQLite file store with the scripted server as
its upstream; ``tests/node/client_check.mjs`` drives every route group once through the Node client
and prints what it saw as JSON; the tests below assert on that record and on what the upstream
received. Needs ``node`` and ``npm ci --prefix tests/node``: skipped without them, a failure
with ``THREADLINE_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.clients_harness import (
    MODEL,
    Served,
    requests_for,
    serve_scripted,
    upstream_messages,
)
from tests.services import require_available
from threadline.testing.server import ScriptedServer

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "client_check.mjs"


def _node() -> str:
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "openai" / "package.json").is_file()
    require_available(
        node is not None and installed,
        "the openai Node client (node and tests/node/node_modules)",
        "install Node.js, then run `npm ci --prefix tests/node`",
    )
    assert node is not None
    return node


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``threadline serve`` (the command, in a subprocess) on a SQLite file, echoing upstream."""
    _node()
    with serve_scripted(tmp_path_factory.mktemp("node-client"), cli=True) as running:
        yield running


@pytest.fixture(scope="module")
def upstream(served: Served) -> ScriptedServer:
    return served.upstream


@pytest.fixture(scope="module")
def record(served: Served) -> dict[str, Any]:
    """What client_check.mjs saw, per check: ``{"ok": True, "value": ...}`` or the error."""
    done = subprocess.run(
        [_node(), str(SCRIPT), served.base_url, MODEL],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=NODE_DIR,
    )
    if done.returncode != 0:
        pytest.fail(f"node exited with {done.returncode}:\n{done.stderr}\n{done.stdout}")
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"node printed no JSON:\n{done.stdout}\n{done.stderr}")
    return result


def check(record: dict[str, Any], name: str) -> dict[str, Any]:
    """The value a check returned; the test fails with the client's error when it threw."""
    entry = record[name]
    if not entry["ok"]:
        pytest.fail(f"{name} threw in the Node client: {json.dumps(entry['error'], indent=2)}")
    value: dict[str, Any] = entry["value"]
    return value


def assert_error(outcome: dict[str, Any], status: int) -> dict[str, Any]:
    """``outcome`` (a call the script expected to fail) threw an APIError with ``status``."""
    assert outcome["threw"], f"expected HTTP {status}, the call returned {outcome.get('value')}"
    error: dict[str, Any] = outcome["error"]
    assert error["status"] == status, error
    body = error["error"]
    # OpenAI's envelope: {"error": {"message", "type", "param", "code"}}; the client unwraps it.
    assert isinstance(body, dict), error
    assert isinstance(body.get("message"), str) and body["message"], error
    assert isinstance(body.get("type"), str) and body["type"], error
    assert {"param", "code"} <= body.keys(), error
    return error


def spoken(request: Any) -> list[tuple[str, str]]:
    """(role, text) of an upstream request without its system/developer instructions."""
    return [
        (m["role"], m["text"])
        for m in upstream_messages(request)
        if m["role"] not in ("system", "developer")
    ]


def test_conversation_crud(record: dict[str, Any]) -> None:
    v = check(record, "conversationsCrud")
    created = v["created"]
    assert created["object"] == "conversation"
    assert isinstance(created["id"], str) and created["id"]
    assert isinstance(created["created_at"], int)
    assert created["metadata"] == {"user": "u1", "topic": "crud"}
    assert v["retrieved"] == created
    assert v["updated"]["id"] == created["id"]
    assert v["updated"]["metadata"] == {"user": "u1", "topic": "renamed"}
    assert v["afterUpdate"]["metadata"] == {"user": "u1", "topic": "renamed"}
    assert v["deleted"] == {"id": created["id"], "object": "conversation.deleted", "deleted": True}
    assert assert_error(v["afterDelete"], 404)["class"] == "NotFoundError"
    assert v["seededTexts"] == ["seeded [node-seed]"]


def test_items_pages(record: dict[str, Any]) -> None:
    v = check(record, "itemsPaging")
    created = v["created"]
    ids = created["ids"]
    assert created["object"] == "list"
    assert created["texts"] == ["m0", "m1", "m2", "m3", "m4"]
    assert len(set(ids)) == 5
    # default order is newest first, default limit 20
    assert v["byDefault"]["ids"] == ids[::-1]
    assert v["byDefault"]["has_more"] is False
    first = v["firstPage"]
    assert first["ids"] == ids[:2]
    assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[0], ids[1], True)
    assert first["object"] == "list"
    assert v["secondPage"]["ids"] == ids[2:4]
    assert v["secondPage"]["has_more"] is True
    assert v["nextPage"]["ids"] == ids[2:4]
    assert v["walkedAsc"] == ids
    assert v["walkedDesc"] == ids[::-1]
    assert v["retrieved"] == {"id": ids[2], "type": "message", "role": "user", "text": "m2"}
    assert v["afterItemDelete"] == {"id": v["conversationId"], "object": "conversation"}
    assert v["remaining"]["ids"] == ids[:4]
    assert v["remaining"]["has_more"] is False
    assert_error(v["missingItem"], 404)


def test_responses_remember_the_conversation(
    record: dict[str, Any], upstream: ScriptedServer
) -> None:
    v = check(record, "responsesWithMemory")
    turn1 = "What city is the Golden Gate Bridge in? [node-turn-1]"
    turn2 = "What state is it in? [node-turn-2]"
    first, second = v["first"], v["second"]
    assert (first["object"], first["status"]) == ("response", "completed")
    assert first["output_text"] == f"echo: {turn1}"
    assert second["output_text"] == f"echo: {turn2}"
    assert second["conversation"] == {"id": v["conversationId"]}
    assert "message" in second["outputTypes"]
    # the second turn reached the upstream with the first one in front of it
    (sent,) = requests_for(upstream, "[node-turn-2]")
    assert spoken(sent) == [("user", turn1), ("assistant", f"echo: {turn1}"), ("user", turn2)]
    assert v["items"] == [
        {"type": "message", "role": "user", "text": turn1},
        {"type": "message", "role": "assistant", "text": f"echo: {turn1}"},
        {"type": "message", "role": "user", "text": turn2},
        {"type": "message", "role": "assistant", "text": f"echo: {turn2}"},
    ]
    assert v["retrieved"]["id"] == second["id"]
    assert v["retrieved"]["output_text"] == second["output_text"]
    assert turn2 in v["inputItemTexts"]
    # conversation together with previous_response_id is a 400, as OpenAI has it
    assert_error(v["both"], 400)
    assert requests_for(upstream, "[node-both]") == []


def test_streamed_response_events(record: dict[str, Any], upstream: ScriptedServer) -> None:
    v = check(record, "responsesStreaming")
    events = v["events"]
    types = [e["type"] for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert "response.output_text.done" in types
    assert "response.output_item.added" in types
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "echo: Stream me a sentence [node-stream-1]"
    assert v["deltas"] == text
    assert v["completed"]["status"] == "completed"
    assert v["completed"]["output_text"] == text
    assert v["helperTypes"][-1] == "response.completed"
    assert v["helperFinal"]["output_text"] == "echo: And another one [node-stream-2]"
    assert v["itemTexts"] == [
        "Stream me a sentence [node-stream-1]",
        text,
        "And another one [node-stream-2]",
        "echo: And another one [node-stream-2]",
    ]
    (sent,) = requests_for(upstream, "[node-stream-2]")
    assert ("assistant", text) in spoken(sent)


def test_chat_completions_with_the_conversation_header(
    record: dict[str, Any], upstream: ScriptedServer
) -> None:
    v = check(record, "chatCompletions")
    hi, again = "Hi there [node-chat-1]", "Remember me? [node-chat-2]"
    assert v["first"]["object"] == "chat.completion"
    assert v["first"]["content"] == f"echo: {hi}"
    assert v["second"]["content"] == f"echo: {again}"
    assert v["second"]["finish_reason"] == "stop"
    # the resent transcript was not stored twice: only the new tail was appended
    assert v["items"] == [
        {"role": "user", "text": hi},
        {"role": "assistant", "text": f"echo: {hi}"},
        {"role": "user", "text": again},
        {"role": "assistant", "text": f"echo: {again}"},
    ]
    (sent,) = requests_for(upstream, "[node-chat-2]")
    assert spoken(sent) == [("user", hi), ("assistant", f"echo: {hi}"), ("user", again)]
    # a transcript that diverges from the stored one is a 409, never an overwrite
    assert_error(v["diverged"], 409)
    # without a conversation the request is stateless
    assert v["stateless"]["content"] == "echo: No memory here [node-chat-stateless]"
    (alone,) = requests_for(upstream, "[node-chat-stateless]")
    assert spoken(alone) == [("user", "No memory here [node-chat-stateless]")]
    assert v["streamed"] == {
        "text": "echo: Stream chat [node-chat-stream]",
        "finish_reason": "stop",
    }


def test_error_envelope(record: dict[str, Any]) -> None:
    v = check(record, "errors")
    assert assert_error(v["missing"], 404)["class"] == "NotFoundError"
    assert_error(v["missingItems"], 404)
    assert assert_error(v["badLimit"], 400)["class"] == "BadRequestError"
    assert_error(v["missingResponse"], 404)


def test_models_list_the_served_agent(record: dict[str, Any]) -> None:
    v = check(record, "models")
    assert MODEL in v["ids"]
    assert set(v["objects"]) == {"model"}
