"""Fixtures shared by the tests that drive the CLI or the real OpenAI client against the loopback stub."""

from __future__ import annotations

import pytest


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dummy API key (the stub ignores it) and no tracing: nothing may leave the machine."""
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)
