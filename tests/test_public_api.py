"""The public API: `from llmxmr import build_graph, Context`, invoke and ainvoke return the article, the
outline, references and the run report; the module-level graph has neither checkpointer nor store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmxmr import Context, build_graph
from llmxmr.export import check_article
from llmxmr.testing.fake_model import ScriptedChatModel

PAPERS = [{"title": f"Paper {i}", "txt": f"Paper {i} measures cache hit rates of {10 * i}% on workload {i}."}
          for i in range(5)]
SMALL = Context(max_layers=1, units=2, refine_rounds=1, best_of=1, max_blocks=1)


def _check(out: dict) -> None:
    assert set(out) == {"title", "article", "outline", "references", "report", "version", "changelog"}
    assert out["version"] == 1 and out["changelog"] == []  # the first version; updates add entries
    from llmxmr.citations import Reference

    assert check_article(out["article"], [Reference(**r) for r in out["references"]]) == []
    assert out["article"].startswith("# Survey of caches")
    assert out["outline"]["sections"]
    assert out["report"]["schema_version"] == "1.0"
    assert {r["paper_id"] for r in out["references"]} <= {p["paper_id"] for p in out["report"]["papers"]["included"]}


def test_invoke_and_ainvoke_return_the_same_article_without_a_store() -> None:
    graph = build_graph(models=ScriptedChatModel())
    first = graph.invoke({"papers": PAPERS, "title": "Survey of caches"}, context=SMALL)
    _check(first)
    second = asyncio.run(graph.ainvoke({"papers": PAPERS, "title": "Survey of caches"}, context=SMALL))
    _check(second)
    assert first["article"] == second["article"]  # deterministic by prompt and seed


def test_module_level_graphs_have_no_checkpointer_and_no_store() -> None:
    from llmxmr.graph import graph, writer_graph

    for g in (graph, writer_graph):
        assert g.checkpointer is None and g.store is None


def test_readme_snippet_without_a_key_fails_at_once_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "from code" snippet with no OPENAI_API_KEY: the provider's message at the first step,
    before any task fans out, and a short traceback (issue 15)."""
    import traceback

    from llmxmr import Context, build_graph
    from llmxmr.models.errors import ModelSetupError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    corpus = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
    with pytest.raises(ModelSetupError, match=r"^model 'openai:gpt-4.1-mini' needs an API key: set OPENAI_API_KEY") as info:
        build_graph().invoke({"corpus_path": str(corpus)}, context=Context(model="openai:gpt-4.1-mini", max_blocks=2))
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "check_credentials" and len(frames) < 12
