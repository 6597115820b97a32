"""The Conversations routes through the official openai client (sync and async)."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from threadline.sessions import open_store

from .conftest import Served, http


def test_create_retrieve_update_delete(serve: Callable[..., Served]) -> None:
    client = serve().client()
    conv = client.conversations.create(
        metadata={"user": "u1"}, items=[{"role": "user", "content": "Hello"}]
    )
    assert conv.object == "conversation"
    assert conv.id.startswith("conv_")
    assert conv.metadata == {"user": "u1"}
    assert conv.created_at > 0

    again = client.conversations.retrieve(conv.id)
    assert (again.id, again.metadata, again.created_at) == (
        conv.id,
        {"user": "u1"},
        conv.created_at,
    )

    updated = client.conversations.update(conv.id, metadata={"user": "u2", "topic": "x"})
    assert updated.metadata == {"user": "u2", "topic": "x"}
    assert client.conversations.retrieve(conv.id).metadata == {"user": "u2", "topic": "x"}

    deleted = client.conversations.delete(conv.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (conv.id, True, "conversation.deleted")
    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.retrieve(conv.id)
    assert caught.value.body["type"] == "not_found_error"  # type: ignore[index]


def test_an_empty_conversation_exists(serve: Callable[..., Served]) -> None:
    client = serve().client()
    conv = client.conversations.create()
    assert client.conversations.retrieve(conv.id).metadata == {}
    page = client.conversations.items.list(conv.id)
    assert page.data == []
    assert page.has_more is False


def test_items_create_retrieve_delete(serve: Callable[..., Served]) -> None:
    client = serve().client()
    conv = client.conversations.create()
    added = client.conversations.items.create(
        conv.id,
        items=[
            {"role": "user", "content": "one"},
            {"type": "message", "role": "assistant", "content": "two"},
            {"role": "user", "content": [{"type": "input_text", "text": "three"}]},
        ],
    )
    assert [item.type for item in added.data] == ["message"] * 3
    ids = [item.id for item in added.data]
    assert len(set(ids)) == 3
    assert added.first_id == ids[0] and added.last_id == ids[2]

    second = client.conversations.items.retrieve(ids[1], conversation_id=conv.id)
    assert second.role == "assistant"  # type: ignore[union-attr]
    assert second.content[0].type == "output_text"  # type: ignore[union-attr]
    assert second.content[0].text == "two"  # type: ignore[union-attr]

    # deleting a middle item keeps the others, and their ids
    back = client.conversations.items.delete(ids[1], conversation_id=conv.id)
    assert back.id == conv.id and back.object == "conversation"
    listed = client.conversations.items.list(conv.id, order="asc")
    assert [item.id for item in listed.data] == [ids[0], ids[2]]
    # deleting the newest
    client.conversations.items.delete(ids[2], conversation_id=conv.id)
    assert [item.id for item in client.conversations.items.list(conv.id).data] == [ids[0]]
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(ids[2], conversation_id=conv.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.delete("msg_nope", conversation_id=conv.id)


def test_items_paging(serve: Callable[..., Served]) -> None:
    client = serve().client()
    conv = client.conversations.create()
    texts = [f"m{i}" for i in range(45)]
    for start in range(0, 45, 15):
        client.conversations.items.create(
            conv.id, items=[{"role": "user", "content": text} for text in texts[start : start + 15]]
        )

    first = client.conversations.items.list(conv.id)  # defaults: 20, newest first
    assert len(first.data) == 20
    assert first.has_more is True
    assert [item.content[0].text for item in first.data] == texts[::-1][:20]  # type: ignore[union-attr]
    assert first.first_id == first.data[0].id and first.last_id == first.data[-1].id

    asc = client.conversations.items.list(conv.id, order="asc", limit=7)
    assert [item.content[0].text for item in asc.data] == texts[:7]  # type: ignore[union-attr]
    following = client.conversations.items.list(conv.id, order="asc", limit=7, after=asc.last_id)
    assert [item.content[0].text for item in following.data] == texts[7:14]  # type: ignore[union-attr]

    # the client's auto-paging walks every page through after=last_id
    every = [
        item.content[0].text
        for item in client.conversations.items.list(conv.id, order="asc", limit=10)
    ]  # type: ignore[union-attr]
    assert every == texts

    last = client.conversations.items.list(conv.id, order="asc", limit=100)
    assert len(last.data) == 45 and last.has_more is False

    tail = client.conversations.items.list(conv.id, order="desc", limit=5, after=first.data[-1].id)
    assert [item.content[0].text for item in tail.data] == texts[::-1][20:25]  # type: ignore[union-attr]


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_limit_bounds(serve: Callable[..., Served], limit: int) -> None:
    client = serve().client()
    conv = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.list(conv.id, limit=limit)
    assert caught.value.body["param"] == "limit"  # type: ignore[index]
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_bad_order_and_cursor(serve: Callable[..., Served]) -> None:
    client = serve().client()
    conv = client.conversations.create(items=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.list(conv.id, order="sideways")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):  # a cursor naming no item of it
        client.conversations.items.list(conv.id, after="msg_not_here")


def test_metadata_rules_are_openais(serve: Callable[..., Served]) -> None:
    client = serve().client()
    with pytest.raises(openai.BadRequestError):
        client.conversations.create(metadata={f"k{i}": "v" for i in range(17)})
    with pytest.raises(openai.BadRequestError):
        client.conversations.create(metadata={"k": "v" * 513})
    with pytest.raises(openai.BadRequestError):
        client.conversations.create(metadata={"k": 1})  # type: ignore[dict-item]


def test_bad_items_are_refused_before_anything_is_written(serve: Callable[..., Served]) -> None:
    client = serve().client()
    conv = client.conversations.create()
    for bad in (
        [{"role": "wizard", "content": "x"}],
        [{"type": "function_call", "name": "f", "arguments": "{}"}],  # no call_id
        [{"type": "item_reference", "id": "msg_1"}],
        ["just a string"],
    ):
        with pytest.raises(openai.BadRequestError):
            client.conversations.items.create(conv.id, items=bad)  # type: ignore[arg-type]
    assert client.conversations.items.list(conv.id).data == []


async def test_async_client(serve: Callable[..., Served]) -> None:
    async with serve().async_client() as client:
        conv = await client.conversations.create(items=[{"role": "user", "content": "hi"}])
        page = await client.conversations.items.list(conv.id)
        assert [item.content[0].text for item in page.data] == ["hi"]  # type: ignore[union-attr]
        await client.conversations.delete(conv.id)
        with pytest.raises(openai.NotFoundError):
            await client.conversations.items.list(conv.id)


async def test_a_library_session_is_a_conversation(
    serve: Callable[..., Served], store_url: str
) -> None:
    served = serve()
    store = open_store(store_url)
    try:
        session = store.session("written-by-the-library")
        await session.add_items(
            [
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": "Hi"},  # equal items get distinct ids
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello"}],
                },
            ]
        )
        client = served.async_client()
        page = await client.conversations.items.list("written-by-the-library", order="asc")
        ids = [item.id for item in page.data]
        assert len(set(ids)) == 3
        assert [item.role for item in page.data] == ["user", "user", "assistant"]  # type: ignore[union-attr]
        # ids are stable: listed again, retrieved one by one
        again = await client.conversations.items.list("written-by-the-library", order="asc")
        assert [item.id for item in again.data] == ids
        one = await client.conversations.items.retrieve(
            ids[1], conversation_id="written-by-the-library"
        )
        assert one.id == ids[1]

        # and the server's writes read back through the library
        await client.conversations.items.create(
            "written-by-the-library", items=[{"role": "user", "content": "More"}]
        )
        items = await session.get_items()
        assert items[-1]["content"] == "More" and items[-1]["id"].startswith("msg_")
        await client.close()
    finally:
        await store.aclose()


def test_unknown_routes_and_methods_use_the_envelope(serve: Callable[..., Served]) -> None:
    served = serve()
    response = http("GET", served.base_url + "/nothing-here")
    assert response.status == 404
    assert response.json() == {
        "error": {
            "message": "Invalid URL (GET /v1/nothing-here)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    response = http("PUT", served.base_url + "/conversations")
    assert response.status == 405
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    response = http("POST", served.base_url + "/conversations", raw=b"{not json")
    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
