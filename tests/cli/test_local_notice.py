"""With no model configured, the local fallback says so once per process (an INFO log)."""

from __future__ import annotations

import logging

import pytest

from threadline.models import local
from threadline.run import model_resolution


def test_the_local_fallback_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(model_resolution, "_providers", {})
    monkeypatch.setattr(model_resolution, "_key", None)
    monkeypatch.setattr(model_resolution, "_client", None)
    monkeypatch.setattr(model_resolution, "_local_noticed", False)
    monkeypatch.setattr(local, "is_available", lambda: True)
    with caplog.at_level(logging.INFO, logger="threadline.run"):
        provider = model_resolution.default_provider()
        monkeypatch.setattr(model_resolution, "_providers", {})  # a second resolution
        assert type(model_resolution.default_provider()) is type(provider)
    notices = [r for r in caplog.records if "the local model" in r.getMessage()]
    assert len(notices) == 1 and notices[0].levelno == logging.INFO
    message = notices[0].getMessage()
    assert local.LOCAL_MODEL_NAME in message and "OPENAI_API_KEY" in message
    assert isinstance(provider, local.LocalModelProvider)
