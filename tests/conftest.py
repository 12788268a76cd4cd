"""Fixtures shared by the tests that drive the CLI or the real OpenAI client against the loopback stub."""

from __future__ import annotations

import pytest


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dummy API key (the stub ignores it) and no tracing: nothing may leave the machine."""
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pg_server():
    """A throw-away PostgreSQL server for the session (llmxmr.testing.postgres_server). Skipped only off CI
    when the binaries or the postgres extra are missing; in CI (CI set) that is a failure, never a skip."""
    import os

    from llmxmr.testing.postgres_server import NoPostgresError, postgres_server

    try:
        import langgraph.checkpoint.postgres  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the postgres extra is not installed in CI: {exc}")
        pytest.skip(f"the postgres extra is not installed: {exc}")
    try:
        with postgres_server() as server:
            yield server
    except NoPostgresError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: .ci/run must install it")
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """A fresh database of the session's server, for one test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:6]
    return pg_server.new_database(name)
