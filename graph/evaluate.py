"""The evaluator as a LangGraph graph (Studio, code, `llmxmr eval`): one task per article for the offline
metrics, one task per judge call when a judge rates them, then the table."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from llmxmr.graph.adapter import Models, StepAdapter, derive_run_id
from llmxmr.nodes.evaluate import compare, judge, plan_judging, score_article
from llmxmr.state.context import Context
from llmxmr.state.eval_state import (
    ArticleTask,
    EvalInput,
    EvalOutput,
    EvalState,
    JudgeTask,
)


def score_each(state: EvalState) -> list[Send]:
    names = state.get("names") or []
    return [Send("score_article", ArticleTask(index=i, path=p, name=names[i] if i < len(names) else None,
                                              corpus_path=state["corpus_path"], survey_index=state.get("survey_index") or 0,
                                              seed=state.get("seed") or 0))
            for i, p in enumerate(state["articles"])]


def judge_each(state: EvalState) -> list[Send] | Literal["compare"]:
    return [Send("judge", JudgeTask(**task)) for task in state.get("judge_tasks") or []] or "compare"


def build_eval_graph(*, models: Models = None, checkpointer=None, store=None):
    """The compiled evaluator. `models`: the judge's chat model (tests, custom clients); else the context's."""
    step = StepAdapter(models)
    b = StateGraph(EvalState, context_schema=Context, input_schema=EvalInput, output_schema=EvalOutput)
    b.add_node("score_article", score_article)
    b.add_node("plan_judging", step.entry(plan_judging, derive_run_id))
    b.add_node("judge", step.node(judge))
    b.add_node("compare", step.last(compare))
    b.add_conditional_edges(START, score_each, ["score_article"])
    b.add_edge("score_article", "plan_judging")
    b.add_conditional_edges("plan_judging", judge_each, ["judge", "compare"])
    b.add_edge("judge", "compare")
    b.add_edge("compare", END)
    return b.compile(checkpointer=checkpointer, store=store, name="llmxmr_eval")
