"""The hierarchical skeleton merge as a fan-out: plan_merge plans each level, merge_batch tasks run the level's
merges in parallel (one task each, so a resumed run re-runs only unfinished merges), until one outline is O_0."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from llmxmr.graph.build import build_builder
from llmxmr.nodes.skeleton import next_merge_level
from llmxmr.stages import STAGES
from llmxmr.state.context import Context
from llmxmr.testing.fake_model import ScriptedChatModel

# One local draft per group: FAN_IN + 1 drafts make level 0 = [FAN_IN drafts, 1 draft] and level 1 = [2 merges].
DRAFTS = STAGES["merge_skeleton"].fan_in + 1
PAPERS = [{"title": f"Paper {i}", "txt": f"Paper {i} reports result {i} on topic {i % 5}."} for i in range(3 * DRAFTS)]
CONTEXT = {"skeleton_group_size": 1, "context_window": 128_000, "max_layers": 0, "refine_rounds": 0, "max_blocks": 1}


def local(batch: int, key: str) -> dict[str, Any]:
    return {"kind": "local_outline", "batch": batch, "outline_key": key}


def merged(level: int, batch: int, key: str) -> dict[str, Any]:
    return {"kind": "merged_outline", "level": level, "batch": batch, "outline_key": key}


def test_next_merge_level_orders_drafts_and_ends_at_one_merged_outline() -> None:
    assert next_merge_level([]) == (None, [])  # no draft survived: the fallback outline
    assert next_merge_level([local(0, "a")]) == (0, ["a"])  # a lone local draft is still merged once
    assert next_merge_level([local(2, "c"), local(0, "a"), local(1, "b")]) == (0, ["a", "b", "c"])
    assert next_merge_level([merged(0, 1, "y"), merged(0, 0, "x")]) == (1, ["x", "y"])
    assert next_merge_level([merged(1, 0, "z")]) == (None, ["z"])


def skeleton_only(model: ScriptedChatModel, checkpointer: InMemorySaver | None = None) -> Any:
    """The pipeline stopped right after O_0 is stored (the merge is what these tests are about)."""
    return build_builder(models=model).compile(checkpointer=checkpointer or InMemorySaver(), store=InMemoryStore(),
                                               interrupt_after=["merge_skeleton"])


def merge_steps(graph: Any, config: dict[str, Any]) -> list[list[Any]]:
    """The merge_batch tasks of each superstep that ran any, in order."""
    steps = []
    for snap in reversed(list(graph.get_state_history(config))):
        tasks = [t for t in snap.tasks if t.name == "merge_batch"]
        if tasks:
            steps.append(tasks)
    return steps


def merge_skeleton_key(graph: Any, config: dict[str, Any]) -> str:
    return graph.get_state(config).values["outline_key"]


def test_the_merges_of_a_level_are_parallel_tasks_and_O0_is_the_last_merge() -> None:
    model = ScriptedChatModel()
    graph, config = skeleton_only(model), {"configurable": {"thread_id": "fan-out"}}
    graph.invoke({"papers": PAPERS, "title": "T"}, config, context=Context(**CONTEXT))

    steps = merge_steps(graph, config)
    assert [len(tasks) for tasks in steps] == [2, 1]  # level 0: two merges in one superstep; level 1: one
    results = [[t.result["results"][0] for t in tasks] for tasks in steps]
    assert [(r["level"], r["batch"]) for level in results for r in level] == [(0, 0), (0, 1), (1, 0)]
    assert model.calls["merge_skeleton"] == 3
    assert merge_skeleton_key(graph, config) == results[1][0]["outline_key"]
    assert graph.get_state(config).values["merge_plan"] == []


def test_a_failed_merge_passes_its_first_draft_on() -> None:
    prompts: list[str] = []
    lock = threading.Lock()

    def merge(messages, n):
        text = str(messages[1].content)
        with lock:
            prompts.append(text)
        return "not an outline" if f"Draft {DRAFTS - 1}:" in text else None  # level 0, batch 0 always fails

    model = ScriptedChatModel(overrides={"merge_skeleton": merge})
    graph, config = skeleton_only(model), {"configurable": {"thread_id": "failed-merge"}}
    graph.invoke({"papers": PAPERS, "title": "T"}, config, context=Context(**CONTEXT))

    values = graph.get_state(config).values
    assert [(f["stage"], f["unit"]) for f in values["failures"]] == [("merge_skeleton", "level0:batch0")]
    first_draft = next(p for p in prompts if f"Draft {DRAFTS - 1}:" in p).split("\n\nDraft 2:")[0]
    level1 = [p for p in prompts if "Draft 2:" in p and "Draft 3:" not in p]
    assert len(level1) == 1 and level1[0].startswith(first_draft + "\n\nDraft 2:")
    steps = merge_steps(graph, config)
    local0 = next(t.result["results"][0]["outline_key"] for snap in graph.get_state_history(config)
                  for t in snap.tasks if t.name == "skeleton_batch" and t.result["results"][0]["batch"] == 0)
    assert steps[0][0].result["results"][0]["outline_key"] == local0  # the failed batch's first draft
    assert merge_skeleton_key(graph, config) == steps[-1][0].result["results"][0]["outline_key"]


def test_a_run_stopped_mid_merge_resumes_without_paying_finished_merges_again() -> None:
    baseline = ScriptedChatModel()
    graph = skeleton_only(baseline)
    graph.invoke({"papers": PAPERS, "title": "T"}, {"configurable": {"thread_id": "b"}}, context=Context(**CONTEXT))
    expected_key = merge_skeleton_key(graph, {"configurable": {"thread_id": "b"}})

    saver, config = InMemorySaver(), {"configurable": {"thread_id": "killed"}}
    raised = threading.Event()

    def batch0_saved() -> bool:
        saved = saver.get_tuple(config)
        return saved is not None and any(channel == "results" for _, channel, _ in saved.pending_writes or [])

    def merge(messages, n):
        text = str(messages[1].content)
        if "Draft 2:" in text:
            return None  # level 0 batch 0 (FAN_IN drafts) and level 1 (2 drafts) answer
        if not raised.is_set():  # level 0, batch 1: the provider fails once, after batch 0's result is saved
            raised.set()
            for _ in range(1000):
                if batch0_saved():
                    break
                threading.Event().wait(0.01)
            raise RuntimeError("provider down")
        return None

    model = ScriptedChatModel(overrides={"merge_skeleton": merge})
    graph = skeleton_only(model, checkpointer=saver)
    with pytest.raises(Exception, match="provider down"):
        graph.invoke({"papers": PAPERS, "title": "T"}, config, context=Context(**CONTEXT))
    stopped = model.calls["merge_skeleton"]
    assert stopped == 2
    # The checkpoint holds the finished merge's result as its own task's writes.
    assert [(t.name, t.result is not None) for t in graph.get_state(config).tasks] == [
        ("merge_batch", True), ("merge_batch", False)]
    graph.invoke(None, config)
    # Resumed: only the failed merge of level 0 and then level 1; the finished merge is not asked again
    # (nor replayed from the response record: its task is not re-run).
    assert model.calls["merge_skeleton"] - stopped == 2
    assert graph.get_state(config).values["usage"]["merge_skeleton"]["cached"] == 0
    assert model.calls["merge_skeleton"] == baseline.calls["merge_skeleton"] + 1
    assert merge_skeleton_key(graph, config) == expected_key
