"""build_graph(): the LLM×MapReduce-V2 state machine. Wiring only: every node lives in llmxmr.nodes."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from llmxmr.graph import routes
from llmxmr.graph.writer import build_writer_builder
from llmxmr.nodes.convolve import make_conv_unit, make_feedback
from llmxmr.nodes.digest import make_digest_paper
from llmxmr.nodes.entropy import make_score_base
from llmxmr.nodes.env import Env
from llmxmr.nodes.finalize import make_finalize, select_final_outline
from llmxmr.nodes.group import make_group
from llmxmr.nodes.loop import block_start, feedback_done, layer_done, make_block_end, make_digest_done, refine_done
from llmxmr.nodes.map import make_map_chunk, make_reduce_notes, map_done
from llmxmr.nodes.prepare import make_prepare
from llmxmr.nodes.refine import make_refine_candidate
from llmxmr.nodes.review import make_review_outline
from llmxmr.nodes.skeleton import make_merge_batch, make_merge_skeleton, make_plan_merge, make_skeleton_batch
from llmxmr.state.context import Context
from llmxmr.state.graph_state import SurveyInput, SurveyOutput, SurveyState


def build_builder(models=None) -> StateGraph:
    env = Env(models)
    b = StateGraph(SurveyState, context_schema=Context, input_schema=SurveyInput, output_schema=SurveyOutput)
    b.add_node("prepare", make_prepare(env))
    b.add_node("map_chunk", make_map_chunk(env))
    b.add_node("map_done", map_done)
    b.add_node("reduce_notes", make_reduce_notes(env))
    b.add_node("group", make_group(env))
    b.add_node("skeleton_batch", make_skeleton_batch(env))
    b.add_node("plan_merge", make_plan_merge(env))
    b.add_node("merge_batch", make_merge_batch(env))
    b.add_node("merge_skeleton", make_merge_skeleton(env))
    b.add_node("digest_paper", make_digest_paper(env))
    b.add_node("digest_done", make_digest_done(env))
    b.add_node("block_start", block_start)
    b.add_node("feedback", make_feedback(env))
    b.add_node("score_base", make_score_base(env))
    b.add_node("feedback_done", feedback_done)
    b.add_node("conv_unit", make_conv_unit(env))
    b.add_node("layer_done", layer_done)
    b.add_node("refine_candidate", make_refine_candidate(env))
    b.add_node("refine_done", refine_done)
    b.add_node("block_end", make_block_end(env))
    b.add_node("select_final", select_final_outline)
    b.add_node("review_outline", make_review_outline(env))
    b.add_node("write", build_writer_builder(env).compile(name="llmxmr_writer"))
    b.add_node("finalize", make_finalize(env))

    b.add_edge(START, "prepare")
    b.add_conditional_edges("prepare", routes.after_prepare, ["map_chunk", "group"])
    b.add_edge("map_chunk", "map_done")
    b.add_conditional_edges("map_done", routes.after_map, ["reduce_notes", "group"])
    b.add_edge("reduce_notes", "group")
    b.add_conditional_edges("group", routes.after_group, ["skeleton_batch"])
    b.add_edge("skeleton_batch", "plan_merge")
    b.add_conditional_edges("plan_merge", routes.after_plan_merge, ["merge_batch", "merge_skeleton"])
    b.add_edge("merge_batch", "plan_merge")
    b.add_conditional_edges("merge_skeleton", routes.digest_all, ["digest_paper"])
    b.add_edge("digest_paper", "digest_done")
    b.add_conditional_edges("digest_done", routes.after_digest, ["block_start", "select_final", "write"])
    b.add_conditional_edges("block_start", routes.start_block, ["feedback", "score_base"])
    b.add_edge("feedback", "feedback_done")
    b.add_edge("score_base", "feedback_done")
    b.add_conditional_edges("feedback_done", routes.next_units, ["conv_unit", "refine_candidate", "block_end", "select_final"])
    b.add_edge("conv_unit", "layer_done")
    b.add_conditional_edges("layer_done", routes.next_units, ["conv_unit", "refine_candidate", "block_end", "select_final"])
    b.add_edge("refine_candidate", "refine_done")
    b.add_conditional_edges("refine_done", routes.refine_or_end, ["refine_candidate", "block_end"])
    b.add_conditional_edges("block_end", routes.after_block_end, ["digest_paper", "select_final"])
    b.add_edge("select_final", "review_outline")
    b.add_conditional_edges("review_outline", routes.after_review, ["digest_paper", "write"])
    b.add_edge("write", "finalize")
    b.add_edge("finalize", END)
    return b


def build_graph(*, models=None, checkpointer=None, store=None):
    """The compiled pipeline. `models`: a chat model for every role, or a dict by role (tests, custom clients)."""
    return build_builder(models).compile(checkpointer=checkpointer, store=store, name="llmxmr")
