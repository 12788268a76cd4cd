"""A served graph does not hand its API key to a base URL a client chose, and reads corpora only under the
operator's root (issue 16 §6; llmxmr.serving, docs/DEPLOY.md). Driven through the graph API in-process with
LLMXMR_SERVED=1, as `langgraph dev` runs it (the `langgraph_api` module marks a real server the same way)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmxmr.corpus import CorpusError
from llmxmr.graph.build import build_graph
from llmxmr.models.errors import ModelSetupError
from llmxmr.state.context import Context
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = {"max_layers": 0, "max_blocks": 1, "refine_rounds": 0, "best_of": 1, "model": "openai:scripted"}
SECRET = "sk-server-secret"


@pytest.fixture(autouse=True)
def served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LLMXMR_SERVED", "1")
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LLMXMR_ALLOWED_BASE_URLS", "LLMXMR_CORPUS_ROOT",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def invoke(base_url: str, corpus: Path = CORPUS) -> dict:
    return build_graph().invoke({"corpus_path": str(corpus)}, context=Context(base_url=base_url, **TINY))


def keys_sent(stub) -> set:
    return {r.get("authorization") for r in stub.chat_requests}


def test_a_client_base_url_gets_no_key_without_an_allow_list() -> None:
    with scripted_server() as stub:
        out = invoke(stub.base_url)
        assert out["article"]
        assert stub.chat_requests and f"Bearer {SECRET}" not in keys_sent(stub)


def test_a_base_url_outside_the_allow_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMXMR_ALLOWED_BASE_URLS", "https://api.example.com/v1")
    with scripted_server() as stub:
        with pytest.raises(ModelSetupError, match="is not allowed here"):
            invoke(stub.base_url)
        assert stub.chat_requests == []


def test_an_allowed_base_url_gets_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with scripted_server() as stub:
        monkeypatch.setenv("LLMXMR_ALLOWED_BASE_URLS", f"https://api.example.com/v1, {stub.base_url}/")
        invoke(stub.base_url)
        assert keys_sent(stub) == {f"Bearer {SECRET}"}


def test_corpus_path_is_confined_to_the_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("LLMXMR_CORPUS_ROOT", str(root))
    with scripted_server() as stub:
        with pytest.raises(CorpusError, match="outside this server's corpus root") as err:
            invoke(stub.base_url, Path("/etc/passwd"))
        assert str(root) not in str(err.value)
        (root / "link.jsonl").symlink_to(CORPUS)  # a link inside the root that leads out of it
        with pytest.raises(CorpusError, match="outside"):
            invoke(stub.base_url, root / "link.jsonl")
        inside = root / "mini.jsonl"
        inside.write_text(CORPUS.read_text())
        assert invoke(stub.base_url, inside)["article"]
