"""The section-writer subgraph: compiled on its own (its own input/output schemas) so that it can be run
alone from Studio with an inline outline and digests, and embedded as the main graph's `write` node."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from llmxmr.nodes.env import Env
from llmxmr.state.context import Context
from llmxmr.nodes.write import height_done, make_charts, make_schedule, make_write_section
from llmxmr.state.graph_state import WriterInput, WriterOutput, WriterState


def route_sections(state: dict[str, Any]) -> list[Send] | str:
    """All sections of the current height at once; then charts (when enabled) or the end."""
    step = state["step"]
    if step < len(state["schedule"]):
        titles = {r["paper_id"]: r["title"] for r in state.get("paper_refs") or []}
        evidence = state.get("evidence") or {}
        payload = {"run_id": state["run_id"], "final_key": state["final_key"], "topic": state.get("title") or "Survey",
                   "written": dict(state.get("sections") or {})}
        # Each task carries only its own evidence papers, so a payload does not grow with the corpus.
        return [Send("write_section", {**payload, "section_id": sid, "papers": [
                    {"paper_id": pid, "title": titles.get(pid, pid)} for pid in evidence.get(sid, [])]})
                for sid in state["schedule"][step]]
    return "charts" if state.get("with_charts") else END


def build_writer_builder(env: Env) -> StateGraph:
    builder = StateGraph(WriterState, context_schema=Context, input_schema=WriterInput, output_schema=WriterOutput)
    builder.add_node("schedule", make_schedule(env))
    builder.add_node("write_section", make_write_section(env))
    builder.add_node("height_done", height_done)
    builder.add_node("charts", make_charts(env))
    builder.add_edge(START, "schedule")
    builder.add_conditional_edges("schedule", route_sections, ["write_section", "charts", END])
    builder.add_edge("write_section", "height_done")
    builder.add_conditional_edges("height_done", route_sections, ["write_section", "charts", END])
    builder.add_edge("charts", END)
    return builder


def build_writer_graph(*, models=None, checkpointer=None, store=None):
    """The compiled section writer (for Studio, tests and embedding)."""
    return build_writer_builder(Env(models)).compile(checkpointer=checkpointer, store=store, name="llmxmr_writer")
