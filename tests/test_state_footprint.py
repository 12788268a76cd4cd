"""What a run keeps per checkpoint and in the store: outlines live in the store (packed when large) and
the checkpoints hold their keys only, so the database grows with the corpus, not with checkpoints × outline."""

from __future__ import annotations

import json

from graph_helpers import papers
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from llmxmr import run_store
from llmxmr.core.packing import PACKED, THRESHOLD
from llmxmr.graph import build_graph
from llmxmr.state.context import Context
from llmxmr.testing.fake_model import ScriptedChatModel

FAST = dict(mode="default", units=3, max_layers=1, refine_rounds=1, best_of=2, max_blocks=2)


def test_checkpoints_hold_outline_keys_and_the_store_holds_packed_outlines():
    store = InMemoryStore()
    graph = build_graph(models=ScriptedChatModel(), checkpointer=InMemorySaver(), store=store)
    config = {"configurable": {"thread_id": "footprint"}}
    out = graph.invoke({"papers": papers(6), "title": "T"}, config, context=Context(**FAST))
    assert out["outline"]["sections"], "the run's output still carries the final outline"

    history = list(graph.get_state_history(config))
    working = [s.values for s in history if s.values.get("outline_key") and not s.values.get("report")]
    assert len(working) > 10
    assert all("outline" not in v for v in working), "an intermediate checkpoint carries the whole outline"
    assert all("settings" not in s.values for s in history), "the settings live in the store only"
    assert not any(s.values.get("results") or s.values.get("scores") for s in history if not s.next), \
        "every fan-out's records are consumed and cleared by its join"
    assert all(isinstance(v.get("outline_sections"), int) and v["outline_sections"] > 0 for v in working)

    run_id = out["report"]["settings"]["run_id"]
    stored = store.search(run_store.ns(run_id, "outlines"), limit=1000)
    assert any(list(item.value) == [PACKED] for item in stored), "an S-section outline is packed"
    for item in stored:
        size = len(json.dumps(item.value))
        assert list(item.value) == [PACKED] or size <= THRESHOLD + 100
    final = run_store.get_outline(store, run_id, history[0].values["final_key"])
    assert final.model_dump() == out["outline"], "a packed outline reads back as it was written"
