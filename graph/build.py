"""build_graph(): the LLM×MapReduce-V2 state machine. Wiring only: every step lives in llmxmr.nodes, and
`StepAdapter` hands each one its `Step`."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from llmxmr.graph import routes
from llmxmr.graph.adapter import Models, StepAdapter, derive_run_id
from llmxmr.graph.writer import build_writer_builder
from llmxmr.nodes import (
    batch,
    convolve,
    digest,
    finalize,
    group,
    loop,
    prepare,
    refine,
    review,
    scoring,
    skeleton,
    update,
)
from llmxmr.nodes import map as reading
from llmxmr.state.context import Context
from llmxmr.state.graph_state import SurveyInput, SurveyOutput, SurveyState

NEXT_UNITS = ["conv_unit", "refine_candidate", "entropy_score", "block_end", "select_final"]


def build_builder(models: Models = None) -> StateGraph:
    step = StepAdapter(models)
    b = StateGraph(SurveyState, context_schema=Context, input_schema=SurveyInput, output_schema=SurveyOutput)
    b.add_node("prepare", step.entry(prepare.prepare, derive_run_id))
    b.add_node("batch_map", step.node(batch.batch_map), destinations=("map_chunk",))
    b.add_node("map_chunk", step.node(reading.map_chunk))
    b.add_node("map_done", reading.map_done)
    b.add_node("reduce_notes", step.node(reading.reduce_notes))
    b.add_node("group", step.node(group.group))
    b.add_node("skeleton_batch", step.node(skeleton.skeleton_batch))
    b.add_node("plan_merge", step.node(skeleton.plan_merge))
    b.add_node("merge_batch", step.node(skeleton.merge_batch))
    b.add_node("merge_skeleton", step.node(skeleton.merge_skeleton))
    b.add_node("batch_digest", step.node(batch.batch_digest), destinations=("outline_digest",))
    b.add_node("outline_digest", step.node(digest.outline_digest),
               destinations=("skeleton_entropy", "block_entropy", "review_digested", "update_digested"))
    b.add_node("skeleton_entropy", step.node(loop.skeleton_entropy))
    b.add_node("block_start", step.node(loop.block_start))
    b.add_node("feedback", step.node(convolve.feedback))
    b.add_node("entropy_score", step.node(scoring.entropy_score),
               destinations=("feedback_done", "layer_done", "refine_done", "block_end"))
    b.add_node("feedback_done", step.node(loop.feedback_done))
    b.add_node("conv_unit", step.node(convolve.conv_unit), destinations=("entropy_score",))
    b.add_node("layer_done", step.node(loop.layer_done))
    b.add_node("refine_candidate", step.node(refine.refine_candidate), destinations=("entropy_score",))
    b.add_node("refine_done", step.node(loop.refine_done))
    b.add_node("block_end", step.node(loop.block_end))
    b.add_node("block_entropy", step.node(loop.block_entropy))
    b.add_node("select_final", step.node(loop.select_final))
    b.add_node("review_outline", step.node(review.review_outline))
    b.add_node("review_digested", step.node(loop.review_digested))
    b.add_node("write", build_writer_builder(step).compile(name="llmxmr_writer"))
    b.add_node("finalize", step.last(finalize.finalize))
    # An update of a finished thread (nodes/update.py): the added documents read with the same steps.
    b.add_node("update_start", step.renew(update.update_start))
    b.add_node("update_map", step.node(reading.map_chunk))
    b.add_node("update_mapped", update.read_done)
    b.add_node("update_reduce", step.node(reading.reduce_notes))
    b.add_node("update_reduced", update.read_done)
    b.add_node("update_digested", step.node(update.update_digested))
    b.add_node("plan_rewrite", step.node(update.plan_rewrite))

    b.add_conditional_edges(START, routes.route_start, ["prepare", "update_start"])
    b.add_conditional_edges("prepare", routes.after_prepare, ["batch_map", "map_chunk", "group"])
    b.add_edge("map_chunk", "map_done")
    b.add_conditional_edges("map_done", routes.after_map, ["reduce_notes", "group"])
    b.add_edge("reduce_notes", "group")
    b.add_conditional_edges("group", routes.after_group, ["skeleton_batch"])
    b.add_edge("skeleton_batch", "plan_merge")
    b.add_conditional_edges("plan_merge", routes.after_plan_merge, ["merge_batch", "merge_skeleton"])
    b.add_edge("merge_batch", "plan_merge")
    b.add_conditional_edges("merge_skeleton", routes.digest_skeleton, ["batch_digest", "outline_digest"])
    b.add_edge("skeleton_entropy", "block_start")
    b.add_conditional_edges("block_start", routes.start_block, ["feedback", "entropy_score", "select_final"])
    b.add_edge("feedback", "feedback_done")
    b.add_conditional_edges("feedback_done", routes.next_units, NEXT_UNITS)
    b.add_conditional_edges("layer_done", routes.next_units, NEXT_UNITS)
    b.add_conditional_edges("refine_done", routes.refine_or_end, ["refine_candidate", "entropy_score", "block_end"])
    b.add_conditional_edges("block_end", routes.after_block_end, ["batch_digest", "outline_digest", "select_final"])
    b.add_conditional_edges("block_entropy", routes.check_convergence, ["block_start", "select_final"])
    b.add_conditional_edges("select_final", routes.after_select, ["review_outline", "plan_rewrite"])
    b.add_conditional_edges("review_outline", routes.after_review, ["batch_digest", "outline_digest", "write"])
    b.add_edge("review_digested", "write")
    b.add_edge("write", "finalize")
    b.add_edge("finalize", END)
    added = ["update_map", "update_reduce", "outline_digest", "update_digested"]
    b.add_conditional_edges("update_start", routes.read_added, added)
    b.add_edge("update_map", "update_mapped")
    b.add_conditional_edges("update_mapped", routes.reduce_added, added)
    b.add_edge("update_reduce", "update_reduced")
    b.add_conditional_edges("update_reduced", routes.digest_added, ["outline_digest", "update_digested"])
    b.add_conditional_edges("update_digested", routes.after_update_digested, ["block_start", "plan_rewrite"])
    b.add_edge("plan_rewrite", "write")
    return b


def build_graph(*, models: Models = None, checkpointer=None, store=None):
    """The compiled pipeline. `models`: a chat model for every role, or a dict by role (tests, custom clients)."""
    return build_builder(models).compile(checkpointer=checkpointer, store=store, name="llmxmr")
