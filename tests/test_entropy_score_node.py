"""The entropy-scoring node, seen as a user debugging the loop sees it (Studio, `stream_mode="updates"`): one
`entropy_score` task per candidate outline, each with the judge's digit distribution, its uncertainty, the
structural entropy where the outline has digests, and the combined score."""

from __future__ import annotations

import math

import pytest
from langgraph.store.memory import InMemoryStore

from llmxmr.graph import build_graph
from llmxmr.state.context import Context
from llmxmr.testing.scripted_server import scripted_server

PAPERS = [{"title": f"Paper {i} on topic {i % 2}", "txt": f"Body {i} " + "word " * 60} for i in range(6)]


pytestmark = pytest.mark.usefixtures("offline_env")


def test_every_candidate_is_scored_by_the_entropy_score_node_with_its_parts():
    with scripted_server() as server:
        context = Context(model="openai:scripted", base_url=server.base_url, units=2, max_layers=1,
                          refine_rounds=1, best_of=2, max_blocks=1, entropy_lambda=0.7)
        graph = build_graph(store=InMemoryStore())
        records = []
        for _, update in graph.stream({"papers": PAPERS, "title": "T"}, {"max_concurrency": 8}, context=context,
                                      stream_mode="updates", subgraphs=True):
            for node, values in update.items():
                if node == "entropy_score":
                    records += values["scores"]
        judge_requests = [r for r in server.chat_requests if r["body"]["messages"][0]["content"].startswith("Task: judge")]
    units = [r["unit"] for r in records]
    assert "b0:base" in units
    assert any("l0u" in u for u in units) and any("l1u" in u for u in units), "every layer's units"
    assert sum("r1c" in u for u in units) == 2, "both self-refine candidates"
    scored = [r for r in records if r["method"] == "logprobs"]
    assert len(scored) == len(records), "every outline was scored with the judge's logprobs"
    # An outline scored twice with the same request is answered from the durable record, not paid again.
    assert len({r["outline_key"] for r in records}) <= len(judge_requests) <= len(records)
    for r in scored:
        p = r["distribution"]
        assert len(p) == 10 and math.isclose(sum(p), 1.0)
        assert sorted(round(x, 6) for x in p if x)[-2:] in ([0.3, 0.7], [1.0])  # the stub's digit distribution
        assert r["uncertainty"] == pytest.approx(-sum(x * math.log(x) for x in p if x))
        assert r["J"] == pytest.approx(10 / 9 * sum(d * x for d, x in enumerate(p)))
    base = next(r for r in records if r["unit"] == "b0:base")
    assert base["H"] is not None, "O_b has digests: its structural entropy is part of its score"
    assert base["E"] == pytest.approx(0.7 * base["J"] + 0.3 * 10 * base["H"])
    candidate = next(r for r in records if "l1u" in r["unit"])
    assert candidate["H"] is None and candidate["E"] == candidate["J"], "a candidate has no digests yet: E is J"
