"""The pipeline inside a larger agent: (a) the compiled graph added as a node (shared keys) and (b) called
from a wrapper node (different keys); with the parent's checkpointer, with and without a store, and with
the parent's own context type. The parent's final state has no leaked keys and no doubled lists, and
progress events from inside reach the parent's stream with `subgraphs=True`."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.memory import InMemoryStore
from typing_extensions import TypedDict

from llmxmr.graph import build_graph
from llmxmr.state.context import Context
from llmxmr.testing.fake_model import ScriptedChatModel

FAST = dict(mode="default", units=2, max_layers=1, refine_rounds=1, best_of=2, max_blocks=1)
INTERNAL = {"run_id", "paper_refs", "groups", "working_set", "results", "scores", "usage", "block_outlines",
            "entropy_history", "sections", "plan", "best", "outline_key", "final_key"}


def papers(n: int) -> list[dict[str, str]]:
    return [{"title": f"Paper {i}: study of topic {i % 2}",
             "txt": f"Body of paper {i} about topic {i % 2}. " + " ".join(f"w{i}x{j}" for j in range(80)),
             "url": f"https://example.org/p/{i}"} for i in range(n)]


@dataclass
class AgentContext:
    """The parent agent's own context type (not ours): the pipeline must not choke on it."""

    user: str = "ann"
    tone: str = "formal"
    llmxmr: Context | None = None  # optional: the pipeline's own settings, carried by the parent's context


class SharedState(TypedDict, total=False):
    # Keys shared with the pipeline's input and output schemas ...
    papers: list[dict[str, Any]]
    title: str
    article: str
    report: dict[str, Any]
    # ... lists the pipeline also returns, with reducers in the parent (they must not double) ...
    references: Annotated[list[dict[str, Any]], operator.add]
    failures: Annotated[list[dict[str, Any]], operator.add]
    # ... and the parent's own.
    log: Annotated[list[str], operator.add]


class WrapperState(TypedDict, total=False):
    docs: list[dict[str, Any]]
    topic: str
    mode: str
    summaries: Annotated[list[dict[str, Any]], operator.add]


def greet(state: SharedState, runtime: Any) -> dict[str, Any]:
    return {"log": [f"survey for {runtime.context.user}"]}


def shared_parent(pipeline: Any, store: InMemoryStore | None) -> Any:
    b = StateGraph(SharedState, context_schema=AgentContext)
    b.add_node("greet", greet)
    b.add_node("survey", pipeline)
    b.add_node("after", lambda state: {"log": [f"{len(state['article'])} chars"]})
    b.add_edge(START, "greet")
    b.add_edge("greet", "survey")
    b.add_edge("survey", "after")
    b.add_edge("after", END)
    return b.compile(checkpointer=InMemorySaver(), store=store)


def wrapper_parent(pipeline: Any, store: InMemoryStore | None) -> Any:
    def write_survey(state: WrapperState) -> dict[str, Any]:
        out = pipeline.invoke({"papers": state["docs"], "title": state["topic"]},
                              context=Context(**{**FAST, "mode": state.get("mode") or "default"}))
        settings = out["report"]["settings"]
        return {"summaries": [{"title": out["title"], "chars": len(out["article"]), "mode": settings["mode"],
                               "run_id": settings["run_id"], "references": len(out["references"])}]}

    b = StateGraph(WrapperState, context_schema=AgentContext)
    b.add_node("write_survey", write_survey)
    b.add_edge(START, "write_survey")
    b.add_edge("write_survey", END)
    return b.compile(checkpointer=InMemorySaver(), store=store)


def stream(graph: Any, payload: Any, config: dict[str, Any]) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    return list(graph.stream(payload, config, context=AgentContext(), stream_mode="custom", subgraphs=True))


def progress_stages(events: list[tuple[tuple[str, ...], dict[str, Any]]], node: str) -> set[str]:
    return {e["stage"] for ns, e in events if ns and ns[0].startswith(node + ":") and e.get("event") == "progress"}


def assert_no_duplicates(items: list[dict[str, Any]]) -> None:
    keys = [repr(sorted(i.items())) for i in items]
    assert len(keys) == len(set(keys)), "a list was doubled"


@pytest.mark.parametrize("with_store", [False, True], ids=["no-store", "store"])
def test_pipeline_as_a_node_with_shared_keys(with_store):
    store = InMemoryStore() if with_store else None
    model = ScriptedChatModel()
    parent = shared_parent(build_graph(models=model), store)
    config = {"configurable": {"thread_id": "agent-1"}}
    events = stream(parent, {"papers": papers(3), "title": "Embedded survey"}, config)
    state = parent.get_state(config).values

    assert set(state) <= set(SharedState.__annotations__), f"leaked keys: {set(state) - set(SharedState.__annotations__)}"
    assert not INTERNAL & set(state)
    assert state["article"].startswith("# Embedded survey")
    assert state["log"] == ["survey for ann", f"{len(state['article'])} chars"]
    report = state["report"]
    # Lists come back once: the parent's reducers see the pipeline's output a single time.
    assert state["references"] == report["references"]
    assert_no_duplicates(state["references"])
    assert_no_duplicates(report["failures"])
    assert state.get("failures", []) == [], "the pipeline's failures travel in the report, not in a parent key"
    # The parent's context type is not ours: the pipeline ran on its defaults.
    assert report["settings"]["mode"] == "default"
    # The pipeline's run id is derived from the parent's thread and its place in it.
    assert report["settings"]["thread_id"] == "agent-1"
    run_id = report["settings"]["run_id"]
    assert run_id.startswith("agent-1-") and run_id != "agent-1"
    if with_store:
        assert store.get(("llmxmr", run_id, "meta"), "settings") is not None, "records go to the parent's store"

    stages = progress_stages(events, "survey")
    assert {"prepare", "map", "digest", "layer", "write", "finalize"} <= stages
    # The writer's events come from one level deeper (survey -> write).
    assert any(len(ns) >= 2 and e.get("stage") == "write" for ns, e in events)


@pytest.mark.parametrize("with_store", [False, True], ids=["no-store", "store"])
def test_pipeline_called_from_a_wrapper_node_with_different_keys(with_store):
    store = InMemoryStore() if with_store else None
    model = ScriptedChatModel()
    parent = wrapper_parent(build_graph(models=model), store)
    config = {"configurable": {"thread_id": "agent-2"}}
    events = stream(parent, {"docs": papers(3), "topic": "First", "mode": "default"}, config)
    # A second turn in the same parent thread, with other settings: its own run, not the first one's settings.
    stream(parent, {"docs": papers(4), "topic": "Second", "mode": "reference"}, config)
    state = parent.get_state(config).values

    assert set(state) == {"docs", "topic", "mode", "summaries"}
    first, second = state["summaries"]
    assert (first["title"], first["mode"], second["title"], second["mode"]) == ("First", "default", "Second", "reference")
    assert first["run_id"] != second["run_id"]
    assert first["references"] >= 1 and second["references"] >= 1
    assert {"prepare", "digest", "write", "finalize"} <= progress_stages(events, "write_survey")


def test_pipeline_as_a_node_resumes_from_the_parents_checkpoint_after_a_failure():
    """A fault inside the embedded pipeline stops the parent; invoking the parent again with None on the same
    thread re-runs only what is left (the parent's checkpointer holds the pipeline's progress)."""
    failing = {"on": True}

    def flaky_write(messages, n):
        if failing["on"]:
            raise RuntimeError("writer crashed")
        return None

    model = ScriptedChatModel(overrides={"write_section": flaky_write})
    store = InMemoryStore()
    parent = shared_parent(build_graph(models=model), store)
    config = {"configurable": {"thread_id": "agent-3"}}
    with pytest.raises(Exception):
        parent.invoke({"papers": papers(3), "title": "Flaky"}, config, context=AgentContext())
    digests = model.calls["digest"]
    assert digests > 0
    failing["on"] = False
    events = stream(parent, None, config)
    out = parent.get_state(config).values
    assert out["article"].startswith("# Flaky")
    assert model.calls["digest"] == digests
    stages = progress_stages(events, "survey")
    assert "write" in stages and not {"prepare", "map", "digest"} & stages, "the resumed parent redid earlier work"


def test_parent_context_may_carry_the_pipelines_settings():
    """A parent's context with an `llmxmr` field (a Context or a dict) configures the embedded pipeline; a parent
    dict context without our keys is not mistaken for a mistyped one of ours."""
    model = ScriptedChatModel()
    parent = shared_parent(build_graph(models=model), None)
    config = {"configurable": {"thread_id": "agent-4"}}
    ctx = AgentContext(llmxmr=Context(**{**FAST, "mode": "reference", "max_layers": 0}))
    out = parent.invoke({"papers": papers(3), "title": "Configured"}, config, context=ctx)
    assert out["report"]["settings"]["mode"] == "reference"
    assert out["report"]["settings"]["max_layers"] == 0
    # A plain dict context of the parent's own (as a server passes it): defaults, no "unknown setting" error.
    parent2 = shared_parent(build_graph(models=model), None)
    out = parent2.invoke({"papers": papers(3), "title": "Dict"}, {"configurable": {"thread_id": "agent-5"}},
                         context={"user": "bob", "tone": "casual", "llmxmr": {**FAST, "best_of": 1}})
    assert out["report"]["settings"]["best_of"] == 1


def test_context_of_tells_ours_from_a_parents():
    from types import SimpleNamespace as NS

    from llmxmr.graph.adapter import context_of as _context_of

    ours = Context(mode="reference")
    assert _context_of(NS(context=ours)) is ours
    assert _context_of(NS(context={"mode": "reference"})) == {"mode": "reference"}
    assert _context_of(NS(context={"mode": "reference", "modle": "x"})) == {"mode": "reference", "modle": "x"}  # ours, typo
    assert _context_of(NS(context={"user": "bob"})) is None  # a parent's dict
    assert _context_of(NS(context={"user": "bob", "llmxmr": {"mode": "reference"}})) == {"mode": "reference"}
    assert _context_of(NS(context=AgentContext(llmxmr=ours))) is ours
    assert _context_of(NS(context=AgentContext())) is None
    assert _context_of(NS(context=None)) is None
