"""Inspectable artifacts: the outline of every block (markdown) and the entropy history are emitted as custom
stream events while the run goes, and the CLI writes them to OUTDIR."""

from __future__ import annotations

import json

from langgraph.store.memory import InMemoryStore

from llmxmr.artifacts import write_artifact
from llmxmr.graph import build_graph
from llmxmr.state.context import Context
from llmxmr.testing.fake_model import ScriptedChatModel


def papers(n: int) -> list[dict[str, str]]:
    return [{"title": f"Paper {i}: study of topic {i % 2}",
             "txt": f"Body of paper {i} about topic {i % 2}. " + " ".join(f"w{i}x{j}" for j in range(80))}
            for i in range(n)]


def test_artifact_events_follow_the_run():
    graph = build_graph(models=ScriptedChatModel(), store=InMemoryStore())
    context = Context(mode="reference", units=2, max_layers=2, refine_rounds=1, best_of=2, max_blocks=1)
    artifacts: list[tuple[str, str]] = []
    final = None
    for mode, chunk in graph.stream({"papers": papers(4), "title": "Artifacts"}, context=context,
                                    stream_mode=["custom", "values"]):
        if mode == "custom" and chunk.get("event") == "artifact":
            artifacts.append((chunk["name"], chunk["text"]))
        elif mode == "values":
            final = chunk
    names = [n for n, _ in artifacts]
    # O_0 (the skeleton) and O_1 (the block's result, reference mode always digests it).
    assert "outline-b0.md" in names and "outline-b1.md" in names
    b0 = dict(artifacts)["outline-b0.md"]
    assert "# " in b0 and "outline " in b0.splitlines()[0]
    # entropy.json is re-emitted after every record; the last one is the whole history.
    entropy = [json.loads(t) for n, t in artifacts if n == "entropy.json"]
    assert len(entropy) >= 3
    assert [len(e) for e in entropy] == sorted(len(e) for e in entropy)
    assert entropy[-1] == final["report"]["entropy_history"]
    assert {r["kind"] for r in entropy[-1]} >= {"layer", "refine", "block", "final"}


def test_write_artifact_is_atomic_and_refuses_paths(tmp_path):
    assert write_artifact(tmp_path, {"event": "artifact", "name": "entropy.json", "text": "[]"}) == tmp_path / "entropy.json"
    assert (tmp_path / "entropy.json").read_text() == "[]"
    assert write_artifact(tmp_path, {"name": "../escape.md", "text": "x"}) is None
    assert write_artifact(tmp_path, {"name": ".hidden", "text": "x"}) is None
    assert write_artifact(None, {"name": "a.md", "text": "x"}) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entropy.json"]
