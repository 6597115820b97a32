"""Threadline's own routes under /v1/threadline/ (list, search, fork, undo, compact, window)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threadline.testing.server import ScriptedServer, reply

from .conftest import Served, http


def _get(served: Served, path: str, **params: Any) -> Any:
    import urllib.parse

    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    answer = http("GET", served.base_url + path + query)
    assert answer.status == 200, answer.body
    return answer.json()


def _post(served: Served, path: str, body: Any = None) -> Any:
    answer = http("POST", served.base_url + path, body if body is not None else {})
    assert answer.status == 200, answer.body
    return answer.json()


def _chat(client: Any, conv: str, upstream: ScriptedServer, *turns: tuple[str, str]) -> None:
    for question, answer in turns:
        upstream.add(reply(answer))
        client.responses.create(model="assistant", input=question, conversation=conv)


def test_list_conversations_paged_and_filtered(
    serve: Callable[..., Served], upstream: ScriptedServer
) -> None:
    served = serve()
    client = served.client()
    made = [client.conversations.create(metadata={"user": f"u{i % 2}"}).id for i in range(5)]
    upstream.add(reply("r"))
    client.responses.create(model="assistant", input="hello", store=True)  # a hidden chain
    listed = _get(served, "/threadline/conversations")
    assert sorted(entry["id"] for entry in listed["data"]) == sorted(made)  # no chain
    assert all(entry["object"] == "conversation" for entry in listed["data"])
    # pages of 2 (a page may hold fewer: the hidden chain is left out of its page)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = _get(
            served, "/threadline/conversations", limit=2, **({"after": cursor} if cursor else {})
        )
        assert len(page["data"]) <= 2
        seen += [entry["id"] for entry in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    only = _get(served, "/threadline/conversations", **{"metadata.user": "u1"})
    assert sorted(entry["id"] for entry in only["data"]) == sorted(made[1::2])


def test_search(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    served = serve()
    client = served.client()
    conv = client.conversations.create()
    _chat(client, conv.id, upstream, ("Tell me about the Golden Gate Bridge", "It is red."))
    other = client.conversations.create(items=[{"role": "user", "content": "bridges everywhere"}])
    hits = _get(served, "/threadline/search", q="golden gate")["data"]
    assert [hit["conversation_id"] for hit in hits] == [conv.id]
    assert "**" in hits[0]["snippet"] and hits[0]["item"]["type"] == "message"
    scoped = _get(served, "/threadline/search", q="bridges", conversation=other.id)["data"]
    assert [hit["conversation_id"] for hit in scoped] == [other.id]
    assert http("GET", served.base_url + "/threadline/search").status == 400


def test_fork_undo_and_window(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    served = serve()
    client = served.client()
    conv = client.conversations.create()
    _chat(client, conv.id, upstream, ("q1", "a1"), ("q2", "a2"), ("q3", "a3"))

    forked = _post(served, f"/threadline/conversations/{conv.id}/fork", {"at_turn": 2})
    texts = [
        i.content[0].text for i in client.conversations.items.list(forked["id"], order="asc").data
    ]  # type: ignore[union-attr]
    assert texts == ["q1", "a1", "q2", "a2"]
    whole = _post(served, f"/threadline/conversations/{conv.id}/fork")
    assert len(client.conversations.items.list(whole["id"]).data) == 6

    undone = _post(served, f"/threadline/conversations/{conv.id}/undo")
    assert [item["content"][0]["text"] for item in undone["data"]] == ["q3", "a3"]
    assert len(client.conversations.items.list(conv.id).data) == 4

    window = _get(served, f"/threadline/conversations/{conv.id}/window")
    assert [item["content"][0]["text"] for item in window["data"]] == ["q1", "a1", "q2", "a2"]


def test_compact(serve: Callable[..., Served], upstream: ScriptedServer) -> None:
    served = serve()
    client = served.client()
    conv = client.conversations.create()
    _chat(
        client,
        conv.id,
        upstream,
        *[(f"question {i} " + "words " * 40, f"answer {i} " + "words " * 40) for i in range(6)],
    )
    upstream.add(reply("SUMMARY: six questions were asked."))
    result = _post(served, f"/threadline/conversations/{conv.id}/compact", {"keep_tokens": 60})
    assert result["status"] == "compacted", result
    window = _get(served, f"/threadline/conversations/{conv.id}/window")["data"]
    assert window[0]["role"] == "system" and "SUMMARY" in window[0]["content"][0]["text"]
    # the next request sends the summary, not the covered turns
    upstream.add(reply("ok"))
    client.responses.create(model="assistant", input="next", conversation=conv.id)
    sent = [m["content"] for m in upstream.requests[-1].body["messages"]]
    assert any("SUMMARY" in str(text) for text in sent)
    assert not any("question 0" in str(text) for text in sent)


def test_unknown_conversation_is_a_404(serve: Callable[..., Served]) -> None:
    served = serve()
    for path in ("fork", "undo", "compact"):
        answer = http("POST", served.base_url + f"/threadline/conversations/conv_x/{path}", {})
        assert answer.status == 404
        assert answer.json()["error"]["type"] == "not_found_error"
