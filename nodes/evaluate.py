"""The evaluator's steps (`graph/evaluate.py`): score one article against the corpus, then lay the systems
side by side. No model calls yet: the offline metrics (llmxmr/eval/offline.py)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from llmxmr.eval.compare import _system, load_corpus, render
from llmxmr.eval.articles import load_article
from llmxmr.state.eval_state import ArticleTask, EvalState


@lru_cache(maxsize=4)
def _corpus(path: str, survey_index: int) -> tuple:
    return tuple(load_corpus(path, survey_index))


def score_article(task: ArticleTask) -> dict[str, Any]:
    corpus = _corpus(task["corpus_path"], task["survey_index"])
    article = load_article(task["path"], corpus, system=task["name"])
    return {"systems": [{"index": task["index"], **_system(article, corpus, task["seed"])}]}


def compare(state: EvalState) -> dict[str, Any]:
    from llmxmr.eval.compare import EVAL_SCHEMA_VERSION, METRICS

    systems = sorted(state["systems"], key=lambda s: s["index"])
    result = {"schema_version": EVAL_SCHEMA_VERSION, "seed": state.get("seed") or 0,
              "corpus_documents": len(_corpus(state["corpus_path"], state.get("survey_index") or 0)),
              "metrics": [{"key": k, "label": label, "better": better} for k, label, better in METRICS],
              "systems": [{k: v for k, v in s.items() if k != "index"} for s in systems]}
    return {"result": result, "table": render(result)}
