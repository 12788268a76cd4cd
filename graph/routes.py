"""Conditional edges of the main graph. A route reads only the state (never the store or the settings:
the node before it wrote down what it decided), and each fan-out is a list of typed `Send` payloads
(`state/tasks.py`) carrying ids only."""

from __future__ import annotations

from typing import Literal

from langgraph.types import Send

from llmxmr.nodes.loop import RESCORE_CANDIDATE, rescore_units
from llmxmr.state.graph_state import SurveyState
from llmxmr.state.tasks import (
    BatchDigestTask,
    BatchMapTask,
    ConvUnitTask,
    DigestPurpose,
    DigestTask,
    FeedbackTask,
    MapTask,
    MergeTask,
    ReduceTask,
    RefineTask,
    ScoreTask,
    SkeletonTask,
)


def route_start(state: SurveyState) -> Literal["prepare", "update_start"]:
    """A new run, or (an `update` in the input of a finished thread) a new version of its survey."""
    return "update_start" if state.get("update") else "prepare"


def _added(state: SurveyState) -> list[dict]:
    ids = {d["paper_id"] for d in state["update_log"]["added"]}
    return [r for r in state["paper_refs"] if r["paper_id"] in ids]


def read_added(state: SurveyState) -> list[Send] | Literal["update_digested"]:
    """An update's added documents: mapped chunk by chunk (default mode), else digested at once."""
    if not state["map_pass"]:
        return digest_added(state)
    sends = [Send("update_map", MapTask(run_id=state["run_id"], topic=state["title"], paper_id=r["paper_id"], chunk=c))
             for r in _added(state) for c in range(r["chunks"])]
    return sends or "update_digested"


def reduce_added(state: SurveyState) -> list[Send] | Literal["update_digested"]:
    sends = [Send("update_reduce", ReduceTask(run_id=state["run_id"], topic=state["title"], paper_id=r["paper_id"],
                                              chunks=r["chunks"]))
             for r in _added(state) if r["chunks"] > 1]
    return sends or digest_added(state)


def digest_added(state: SurveyState) -> list[Send] | Literal["update_digested"]:
    """The added documents against the survey's final outline; the kept ones' digests stand."""
    sends = [Send("outline_digest", DigestTask(run_id=state["run_id"], paper_id=r["paper_id"],
                                               outline_key=state["final_key"], then="update_digested"))
             for r in _added(state)]
    return sends or "update_digested"


def after_update_digested(state: SurveyState) -> Literal["block_start", "plan_rewrite"]:
    return "block_start" if state["update_log"].get("refined") else "plan_rewrite"


def after_select(state: SurveyState) -> Literal["review_outline", "plan_rewrite"]:
    """An update's refinement ends in its rewrite plan; a first run goes on to the outline review."""
    return "plan_rewrite" if state.get("update") else "review_outline"


def after_prepare(state: SurveyState) -> list[Send] | Literal["group"]:
    if not state["map_pass"]:
        return "group"  # the reference has no map pass
    if "map" in (state.get("batch") or []):  # one Batch API job, which then fans out the map tasks
        return [Send("batch_map", BatchMapTask(run_id=state["run_id"], topic=state["title"],
                                               chunks=[[r["paper_id"], c] for r in state["paper_refs"]
                                                       for c in range(r["chunks"])]))]
    return [Send("map_chunk", MapTask(run_id=state["run_id"], topic=state["title"], paper_id=r["paper_id"], chunk=c))
            for r in state["paper_refs"] for c in range(r["chunks"])]


def after_map(state: SurveyState) -> list[Send] | Literal["group"]:
    sends = [Send("reduce_notes", ReduceTask(run_id=state["run_id"], topic=state["title"], paper_id=r["paper_id"],
                                            chunks=r["chunks"]))
             for r in state["paper_refs"] if r["chunks"] > 1]
    return sends or "group"


def after_group(state: SurveyState) -> list[Send]:
    groups = state["groups"]
    return [Send("skeleton_batch", SkeletonTask(run_id=state["run_id"], topic=state["title"], batch=i,
                                                paper_ids=[p for g in batch for p in groups[g]]))
            for i, batch in enumerate(state["skeleton_batches"])]


def after_plan_merge(state: SurveyState) -> list[Send] | Literal["merge_skeleton"]:
    """The planned level's merge batches, in parallel; merge_skeleton once one outline remains."""
    if not state.get("merge_plan"):
        return "merge_skeleton"
    return [Send("merge_batch", MergeTask(run_id=state["run_id"], topic=state["title"], level=state["merge_level"],
                                          batch=b, outline_keys=keys))
            for b, keys in enumerate(state["merge_plan"])]


def digest_all(state: SurveyState, then: DigestPurpose, prior_key: str | None = None) -> list[Send]:
    """Every paper against the current outline; `then` is the pass's join; `prior_key`: an outline every paper
    was digested against, so that each is read again only for what changed since."""
    if "digest" in (state.get("batch") or []):  # one Batch API job, which then fans out the digest tasks
        return [Send("batch_digest", BatchDigestTask(run_id=state["run_id"], outline_key=state["outline_key"],
                                                     paper_ids=[r["paper_id"] for r in state["paper_refs"]],
                                                     then=then, prior_key=prior_key))]
    return [Send("outline_digest", DigestTask(run_id=state["run_id"], paper_id=r["paper_id"],
                                              outline_key=state["outline_key"], then=then, prior_key=prior_key))
            for r in state["paper_refs"]]


def digest_skeleton(state: SurveyState) -> list[Send]:
    return digest_all(state, "skeleton_entropy")


def after_block_end(state: SurveyState) -> list[Send] | Literal["select_final"]:
    """The block's outline C is digested for E_{b+1}, unless the block stopped the loop."""
    return "select_final" if state.get("stop_reason") else digest_all(state, "block_entropy", state.get("base_key"))


def check_convergence(state: SurveyState) -> Literal["block_start", "select_final"]:
    """block_entropy has applied the stop rules (entropy gain, max blocks, budget): another block or the end."""
    return "select_final" if state.get("stop_reason") else "block_start"


def after_review(state: SurveyState) -> list[Send] | Literal["write"]:
    """A person changed the outline's structure: digest it again before writing."""
    return digest_all(state, "review_digested", state.get("redigest_from")) if state.get("redigest") else "write"


def start_block(state: SurveyState) -> list[Send] | Literal["select_final"]:
    """Feedback per group and the one entropy score of O_b, all in parallel (none: the budget is too tight)."""
    if state.get("stop_reason"):
        return "select_final"
    b, key = state["block"], state["outline_key"]
    sends = [Send("feedback", FeedbackTask(run_id=state["run_id"], block=b, outline_key=key, group=g, paper_ids=ids))
             for g, ids in enumerate(state["groups"])]
    H = next((o["H"] for o in state.get("block_outlines") or [] if o["outline_key"] == key), None)
    return sends + [Send("entropy_score", ScoreTask(run_id=state["run_id"], block=b, unit=f"b{b}:base", outline_key=key,
                                                    candidate=0, H=H, then="feedback_done", base_key=key))]


Leave = list[Send] | Literal["block_end"]


def next_units(state: SurveyState) -> Leave | Literal["select_final"]:
    """The next layer's units, else self-refine candidates, else the block's end."""
    if state.get("stop_reason"):
        return "select_final"
    if state.get("plan"):
        by_id = {s["suggestion_id"]: s for s in state["working_set"]}
        return [Send("conv_unit", ConvUnitTask(run_id=state["run_id"], block=state["block"], layer=state["layer"],
                                               base_key=state["base_key"], unit=u,
                                               suggestions=[by_id[i] for i in group]))
                for u, group in enumerate(state["plan"])]
    return refine_or_end(state)


def refine_or_end(state: SurveyState) -> Leave:
    """The next self-refine round's candidates; else the fresh re-scores of the block's end; else its end."""
    if state.get("round", 0) >= 1:
        return [Send("refine_candidate", RefineTask(run_id=state["run_id"], block=state["block"], round=state["round"],
                                                    candidate=c, best=state["best"], base_key=state.get("base_key")))
                for c in range(state["candidates"])]
    if state.get("rescore_keys"):
        b = state["block"]
        return [Send("entropy_score", ScoreTask(run_id=state["run_id"], block=b, unit=unit, outline_key=key,
                                                candidate=RESCORE_CANDIDATE + b, H=None, then="block_end",
                                                base_key=state.get("base_key")))
                for unit, key in zip(rescore_units(b), state["rescore_keys"])]
    return "block_end"
