"""The section-writer subgraph: compiled on its own (its own input/output schemas) so that it can be run
alone from Studio with an inline outline and digests, and embedded as the main graph's `write` node.

Sections are written by height; then (default mode) the citation check: every cited claim checked, the
failing sections repaired once, the changed claims checked again, what is still unsupported marked."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from llmxmr.graph.adapter import Models, StepAdapter
from llmxmr.nodes import verify
from llmxmr.nodes.write import charts, height_done, schedule, write_section
from llmxmr.state.context import Context
from llmxmr.state.graph_state import WriterInput, WriterOutput, WriterState
from llmxmr.state.tasks import CheckTask, RepairTask, SectionRepair, SectionTask

STANDALONE_RUN_ID = "writer"  # the run id of a writer run given no `run_id` (Studio)
End = Literal["charts", "__end__"]


def _end(state: WriterState) -> End:
    return "charts" if state.get("with_charts") else END


def route_sections(state: WriterState) -> list[Send] | Literal["plan_checks"] | End:
    """All sections of the current height at once; then the citation check (when on), charts or the end."""
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
    return "plan_checks" if state.get("verify") else _end(state)


def route_checks(state: WriterState) -> list[Send] | Literal["plan_repairs", "finish_checks"]:
    """The verifier fan-out of this round; its join plans the repairs (round 1) or finishes (round 2)."""
    then = "plan_repairs" if state["check_round"] == 1 else "finish_checks"
    batches = state["check_batches"][state["check_round"] - 1]
    return [Send("verify_claims", CheckTask(run_id=state["run_id"], final_key=state["final_key"],
                                            round=state["check_round"], batch=b, then=then))
            for b in range(batches)] or then


def route_repairs(state: WriterState) -> list[Send] | Literal["finish_checks"]:
    titles = {r["paper_id"]: r["title"] for r in state.get("paper_refs") or []}
    evidence = state.get("evidence") or {}

    def section(sid: str, uncited: list[str]) -> SectionRepair:
        return SectionRepair(section_id=sid, uncited=uncited,
                             papers=[{"paper_id": pid, "title": titles.get(pid, pid)} for pid in evidence.get(sid, [])])

    return [Send("repair_sections", RepairTask(run_id=state["run_id"], final_key=state["final_key"], batch=b,
                                               round1_batches=state["check_batches"][0],
                                               sections=[section(sid, uncited) for sid, uncited in batch]))
            for b, batch in enumerate(state["repairs"])] or "finish_checks"


def build_writer_builder(step: StepAdapter) -> StateGraph:
    builder = StateGraph(WriterState, context_schema=Context, input_schema=WriterInput, output_schema=WriterOutput)
    builder.add_node("schedule", step.entry(schedule, lambda: STANDALONE_RUN_ID))
    builder.add_node("write_section", step.node(write_section))
    builder.add_node("height_done", height_done)
    builder.add_node("plan_checks", step.node(verify.plan_checks))
    builder.add_node("verify_claims", step.node(verify.verify_claims), destinations=("plan_repairs", "finish_checks"))
    builder.add_node("plan_repairs", step.node(verify.plan_repairs))
    builder.add_node("repair_sections", step.node(verify.repair_sections))
    builder.add_node("plan_rechecks", step.node(verify.plan_rechecks))
    builder.add_node("finish_checks", step.node(verify.finish_checks))
    builder.add_node("charts", step.node(charts))
    builder.add_edge(START, "schedule")
    after_height = ["write_section", "plan_checks", "charts", END]
    builder.add_conditional_edges("schedule", route_sections, after_height)
    builder.add_edge("write_section", "height_done")
    builder.add_conditional_edges("height_done", route_sections, after_height)
    builder.add_conditional_edges("plan_checks", route_checks, ["verify_claims", "plan_repairs", "finish_checks"])
    builder.add_conditional_edges("plan_repairs", route_repairs, ["repair_sections", "finish_checks"])
    builder.add_edge("repair_sections", "plan_rechecks")
    builder.add_conditional_edges("plan_rechecks", route_checks, ["verify_claims", "plan_repairs", "finish_checks"])
    builder.add_conditional_edges("finish_checks", _end, ["charts", END])
    builder.add_edge("charts", END)
    return builder


def build_writer_graph(*, models: Models = None, checkpointer=None, store=None):
    """The compiled section writer (for Studio, tests and embedding)."""
    return build_writer_builder(StepAdapter(models)).compile(checkpointer=checkpointer, store=store, name="llmxmr_writer")
