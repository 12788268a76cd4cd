"""The step seam: what the adapter hands a step, what a finished run leaves behind in a long-lived process
(a parent agent running many surveys), and that steps are plain functions the graph reaches through it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from langgraph.store.memory import InMemoryStore

from llmxmr import retrieval, run_store
from llmxmr.graph.adapter import StepAdapter
from llmxmr.state.context import resolve_settings
from llmxmr.testing.fake_model import ScriptedChatModel


def test_release_drops_the_runs_callers_and_local_store_only():
    adapter, store, settings = StepAdapter(ScriptedChatModel()), InMemoryStore(), resolve_settings({})
    a, b = adapter.caller(store, settings, "run-a"), adapter.caller(store, settings, "run-b")
    assert adapter.caller(store, settings, "run-a") is a, "one caller per run while it runs"
    adapter.release(SimpleNamespace(store=store), "run-a")
    assert adapter.caller(store, settings, "run-b") is b
    assert adapter.caller(store, settings, "run-a") is not a, "a released run's caller is gone"

    no_store = SimpleNamespace(store=None)
    local = adapter.store(no_store, "run-c")  # no store given: the run's own in-memory one
    assert adapter.store(no_store, "run-c") is local, "one local store per run while it runs"
    adapter.release(no_store, "run-c")
    assert adapter.store(no_store, "run-c") is not local, "a finished run's local store is dropped"
    adapter.release(no_store, "run-c")
    assert StepAdapter().store(no_store, "run-c") is not adapter.store(no_store, "run-c"), \
        "local stores belong to one graph, not to the process"


def test_release_drops_the_runs_passage_indexes_only():
    def load(text):
        return lambda: (text, [(0, len(text))])

    a = retrieval.index_for("run-d", "p1", load("caches cut latency"))
    b = retrieval.index_for("run-e", "p1", load("queues add latency"))
    StepAdapter(ScriptedChatModel()).release(SimpleNamespace(store=InMemoryStore()), "run-d")
    assert retrieval.cached_index("run-d", "p1") is None, "a finished run's indexes are dropped"
    assert retrieval.cached_index("run-e", "p1") is b
    assert a is not b
    retrieval.forget("run-e")


def test_a_step_gets_the_runs_saved_settings_store_and_events():
    adapter, store = StepAdapter(ScriptedChatModel()), InMemoryStore()
    run_store.put_settings(store, "r1", resolve_settings({"mode": "reference", "seed": 7}).model_dump())
    events: list = []
    seen = {}

    def probe(task, step):
        seen.update(run_id=step.run_id, store=step.store, mode=step.settings.mode, seed=step.settings.seed)
        step.progress("probe", done=1)
        step.artifact("x.md", "text")
        return step.update(ok=True)

    node = adapter.node(probe)
    assert node.__name__ == "probe"
    out = node({"run_id": "r1"}, SimpleNamespace(store=store, stream_writer=events.append))
    assert seen == {"run_id": "r1", "store": store, "mode": "reference", "seed": 7}
    assert out == {"ok": True, "usage": {}, "failures": []}
    assert events == [{"event": "progress", "stage": "probe", "done": 1},
                      {"event": "artifact", "name": "x.md", "text": "text"}]


def test_a_step_of_a_run_with_no_saved_settings_is_an_error_naming_the_run():
    node = StepAdapter().node(lambda task, step: {})
    with pytest.raises(LookupError, match="run r9 has no saved settings"):
        node({"run_id": "r9"}, SimpleNamespace(store=InMemoryStore(), stream_writer=None))


def test_an_entry_step_saves_the_contexts_settings_once_and_a_resume_keeps_them():
    adapter, store = StepAdapter(), InMemoryStore()
    seen = []
    node = adapter.entry(lambda state, step: seen.append(step.settings.mode) or {}, lambda: "r2")
    node({}, SimpleNamespace(store=store, context={"mode": "reference"}, stream_writer=None))
    assert run_store.get_settings(store, "r2")["mode"] == "reference"
    node({"run_id": "r2"}, SimpleNamespace(store=store, context={"mode": "default"}, stream_writer=None))
    assert seen == ["reference", "reference"], "saved settings win over a context passed again"
