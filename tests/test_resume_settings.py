"""Resume with overrides: settings saved in the store win over the copy in state, for every node and
route that runs after the resume and for the report."""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from llmxmr import run_store
from llmxmr.graph.build import build_builder
from llmxmr.state.context import Context, Settings, apply_overrides
from llmxmr.testing.fake_model import ScriptedChatModel

PAPERS = [{"title": f"Paper {i}", "txt": f"Paper {i} studies topic {i % 2} with result {i}."} for i in range(4)]


def test_overrides_saved_in_the_store_reach_the_nodes_after_a_resume() -> None:
    model, store = ScriptedChatModel(), InMemoryStore()
    graph = build_builder(models=model).compile(checkpointer=InMemorySaver(), store=store,
                                                interrupt_before=["refine_done"])
    config = {"configurable": {"thread_id": "t-resume"}}
    graph.invoke({"papers": PAPERS, "title": "T"}, config,
                 context=Context(max_layers=1, units=2, refine_rounds=2, best_of=1, max_blocks=1))
    run_id = graph.get_state(config).values["run_id"]
    saved = Settings(**run_store.get_settings(store, run_id))
    run_store.put_settings(store, run_id, apply_overrides(saved, {"refine_rounds": 1, "max_calls": 9999}).model_dump())

    before = model.calls["critique"]
    out = graph.invoke(None, config)
    assert out["report"]["settings"]["refine_rounds"] == 1
    assert out["report"]["settings"]["max_calls"] == 9999
    # refine_done read the new refine_rounds=1: no second round of candidates was started.
    assert model.calls["critique"] == before
