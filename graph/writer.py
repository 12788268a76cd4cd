"""The section-writer subgraph: compiled on its own (its own input/output schemas) so that it can be run
alone from Studio with an inline outline and digests, and embedded as the main graph's `write` node."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from llmxmr.graph.adapter import Models, StepAdapter
from llmxmr.nodes.write import charts, height_done, schedule, write_section
from llmxmr.state.context import Context
from llmxmr.state.graph_state import WriterInput, WriterOutput, WriterState
from llmxmr.state.tasks import SectionTask

STANDALONE_RUN_ID = "writer"  # the run id of a writer run given no `run_id` (Studio)


def route_sections(state: WriterState) -> list[Send] | Literal["charts", "__end__"]:
    """All sections of the current height at once; then charts (when enabled) or the end."""
    step = state["step"]
    if step < len(state["schedule"]):
        titles = {r["paper_id"]: r["title"] for r in state.get("paper_refs") or []}
        evidence = state.get("evidence") or {}
        written = dict(state.get("sections") or {})
        # Each task carries only its own evidence papers, so a payload does not grow with the corpus.
        return [Send("write_section", SectionTask(
                    run_id=state["run_id"], final_key=state["final_key"], topic=state.get("title") or "Survey",
                    section_id=sid, written=written,
                    papers=[{"paper_id": pid, "title": titles.get(pid, pid)} for pid in evidence.get(sid, [])]))
                for sid in state["schedule"][step]]
    return "charts" if state.get("with_charts") else END


def build_writer_builder(step: StepAdapter) -> StateGraph:
    builder = StateGraph(WriterState, context_schema=Context, input_schema=WriterInput, output_schema=WriterOutput)
    builder.add_node("schedule", step.entry(schedule, lambda: STANDALONE_RUN_ID))
    builder.add_node("write_section", step.node(write_section))
    builder.add_node("height_done", height_done)
    builder.add_node("charts", step.node(charts))
    builder.add_edge(START, "schedule")
    builder.add_conditional_edges("schedule", route_sections, ["write_section", "charts", END])
    builder.add_edge("write_section", "height_done")
    builder.add_conditional_edges("height_done", route_sections, ["write_section", "charts", END])
    builder.add_edge("charts", END)
    return builder


def build_writer_graph(*, models: Models = None, checkpointer=None, store=None):
    """The compiled section writer (for Studio, tests and embedding)."""
    return build_writer_builder(StepAdapter(models)).compile(checkpointer=checkpointer, store=store, name="llmxmr_writer")
