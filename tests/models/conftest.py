"""Fixtures for the provider tests: a scripted server and a real openai client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from openai import AsyncOpenAI

from threadline.testing.server import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
async def client(server: ScriptedServer) -> AsyncIterator[AsyncOpenAI]:
    openai_client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
    yield openai_client
    await openai_client.close()
