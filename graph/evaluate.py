"""The evaluator as a LangGraph graph (Studio, code, `langgraph dev`): one task per article, then the table."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from llmxmr.nodes.evaluate import compare, score_article
from llmxmr.state.eval_state import ArticleTask, EvalInput, EvalOutput, EvalState


def score_each(state: EvalState) -> list[Send]:
    names = state.get("names") or []
    return [Send("score_article", ArticleTask(index=i, path=p, name=names[i] if i < len(names) else None,
                                              corpus_path=state["corpus_path"], survey_index=state.get("survey_index") or 0,
                                              seed=state.get("seed") or 0))
            for i, p in enumerate(state["articles"])]


def build_eval_graph(*, checkpointer=None):
    b = StateGraph(EvalState, input_schema=EvalInput, output_schema=EvalOutput)
    b.add_node("score_article", score_article)
    b.add_node("compare", compare)
    b.add_conditional_edges(START, score_each, ["score_article"])
    b.add_edge("score_article", "compare")
    b.add_edge("compare", END)
    return b.compile(checkpointer=checkpointer, name="llmxmr_eval")
