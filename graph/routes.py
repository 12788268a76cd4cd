"""Conditional edges of the main graph: each fan-out is a list of `Send`s carrying ids only."""

from __future__ import annotations

from typing import Any

from langgraph.types import Send

from llmxmr.core.grouping import batched
from llmxmr.nodes.env import run_settings


def _base(state: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": state["run_id"], "topic": state["title"]}


def after_prepare(state: dict[str, Any]) -> list[Send] | str:
    if run_settings(state).mode == "reference":
        return "group"  # the reference has no map pass
    return [Send("map_chunk", {**_base(state), "paper_id": r["paper_id"], "chunk": c})
            for r in state["paper_refs"] for c in range(r["chunks"])]


def after_map(state: dict[str, Any]) -> list[Send] | str:
    sends = [Send("reduce_notes", {**_base(state), "paper_id": r["paper_id"], "chunks": r["chunks"]})
             for r in state["paper_refs"] if r["chunks"] > 1]
    return sends or "group"


def after_group(state: dict[str, Any]) -> list[Send]:
    size = run_settings(state).skeleton_group_size
    return [Send("skeleton_batch", {**_base(state), "batch": i, "paper_ids": [p for g in groups for p in g]})
            for i, groups in enumerate(batched(state["groups"], size))]


def after_plan_merge(state: dict[str, Any]) -> list[Send] | str:
    """The planned level's merge batches, in parallel; merge_skeleton once one outline remains."""
    if not state.get("merge_plan"):
        return "merge_skeleton"
    return [Send("merge_batch", {**_base(state), "level": state["merge_level"], "batch": b, "outline_keys": keys})
            for b, keys in enumerate(state["merge_plan"])]


def digest_all(state: dict[str, Any]) -> list[Send]:
    return [Send("digest_paper", {"run_id": state["run_id"], "paper_id": r["paper_id"], "outline_key": state["outline_key"]})
            for r in state["paper_refs"]]


def after_block_end(state: dict[str, Any]) -> list[Send] | str:
    return "select_final" if state.get("stop_reason") else digest_all(state)


def after_digest(state: dict[str, Any]) -> str:
    if state.get("phase") == "review":
        return "write"  # the reviewed outline's new structure is digested
    return "select_final" if state.get("stop_reason") else "block_start"


def after_review(state: dict[str, Any]) -> list[Send] | str:
    """A person changed the outline's structure: digest it again before writing."""
    return digest_all(state) if state.get("phase") == "review" else "write"


def start_block(state: dict[str, Any]) -> list[Send]:
    """Feedback per group and the one score of O_b, all in parallel."""
    common = {"run_id": state["run_id"], "block": state["block"], "outline_key": state["outline_key"]}
    sends = [Send("feedback", {**common, "group": g, "paper_ids": ids}) for g, ids in enumerate(state["groups"])]
    return sends + [Send("score_base", common)]


def next_units(state: dict[str, Any]) -> list[Send] | str:
    """The next layer's units, else self-refine candidates, else the block's end."""
    if state.get("stop_reason"):
        return "select_final"
    if state.get("plan"):
        by_id = {s["suggestion_id"]: s for s in state["working_set"]}
        common = {"run_id": state["run_id"], "block": state["block"], "layer": state["layer"], "base_key": state["base_key"]}
        return [Send("conv_unit", {**common, "unit": u, "suggestions": [by_id[i] for i in group]})
                for u, group in enumerate(state["plan"])]
    return refine_or_end(state)


def refine_or_end(state: dict[str, Any]) -> list[Send] | str:
    if state.get("round", 0) >= 1:
        common = {"run_id": state["run_id"], "block": state["block"], "round": state["round"], "best": state["best"]}
        return [Send("refine_candidate", {**common, "candidate": c}) for c in range(run_settings(state).best_of)]
    return "block_end"
