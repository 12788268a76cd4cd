"""The evaluator's steps (`graph/evaluate.py`): score each article offline, plan the judge's calls, make
them (one task each), then lay the systems side by side."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from llmxmr.eval.articles import Article, load_article
from llmxmr.eval.compare import (
    assemble,
    load_corpus,
    render,
    system_result,
)
from llmxmr.eval.judge import (
    JUDGE_METRICS,
    Item,
    block_structure,
    judge_item,
    judge_items,
    judge_metadata,
    values_by_metric,
)
from llmxmr.eval.stats import bootstrap
from llmxmr.nodes.step import Step
from llmxmr.state.eval_state import ArticleTask, EvalState, JudgeTask


@lru_cache(maxsize=4)
def _corpus(path: str, survey_index: int) -> tuple:
    return tuple(load_corpus(path, survey_index))


@lru_cache(maxsize=16)
def _article(path: str, name: str | None, corpus_path: str, survey_index: int) -> Article:
    return load_article(path, _corpus(corpus_path, survey_index), system=name)


def score_article(task: ArticleTask) -> dict[str, Any]:
    corpus = _corpus(task["corpus_path"], task["survey_index"])
    article = _article(task["path"], task["name"], task["corpus_path"], task["survey_index"])
    return {"systems": [{"index": task["index"], **system_result(article, corpus, task["seed"])}]}


def plan_judging(state: EvalState, step: Step) -> dict[str, Any]:
    """Every judge call of every article and pass (none unless `judge`)."""
    if not state.get("judge"):
        return {"run_id": step.run_id, "judge_tasks": []}
    names, index = state.get("names") or [], state.get("survey_index") or 0
    corpus_ids = {d.paper_id for d in _corpus(state["corpus_path"], index)}
    seeds = max(1, state.get("seeds") or 1)
    temperature = step.settings.candidate_temperature if seeds > 1 else None
    tasks = []
    for i, path in enumerate(state["articles"]):
        name = names[i] if i < len(names) else None
        for item in judge_items(_article(path, name, state["corpus_path"], index), corpus_ids):
            tasks += [JudgeTask(run_id=step.run_id, system=i, path=path, name=name, corpus_path=state["corpus_path"],
                                survey_index=index, seed=k, temperature=temperature, metric=item.metric,
                                section=item.section, claims=[list(c) for c in item.claims])
                      for k in range(seeds)]
    step.progress("judge", done=0, total=len(tasks))
    return {"run_id": step.run_id, "judge_tasks": tasks}


def judge(task: JudgeTask, step: Step) -> dict[str, Any]:
    article = _article(task["path"], task["name"], task["corpus_path"], task["survey_index"])
    corpus = {d.paper_id: d for d in _corpus(task["corpus_path"], task["survey_index"])}
    item = Item(task["metric"], task["section"], tuple(tuple(c) for c in task["claims"]))
    values = judge_item(step.calls, article, corpus, item, seed=task["seed"], temperature=task["temperature"])
    step.progress("judge", done=1, unit=f"{article.system}:{task['metric']}")
    return step.update(judgements=[{"system": task["system"], "seed": task["seed"], "metric": task["metric"],
                                    "section": task["section"], "values": values}])


def compare(state: EvalState, step: Step) -> dict[str, Any]:
    systems = [{**s, "metrics": dict(s["metrics"])} for s in sorted(state["systems"], key=lambda s: s["index"])]
    seed = state.get("seed") or 0
    judged = bool(state.get("judge"))
    if judged:
        for s in systems:
            words = int(s["metrics"]["words"]["mean"] or 0)
            for metric, values in values_by_metric(state.get("judgements") or [], s["index"], words).items():
                s["metrics"][metric] = bootstrap(values, seed=seed).as_dict()
            rated = block_structure(state.get("judgements") or [], s["index"])
            s["stages"] = [{**r, "judge_structure": rated.get(r["block"])} for r in s["stages"]]
    result = assemble(
        [{k: v for k, v in s.items() if k != "index"} for s in systems],
        len(_corpus(state["corpus_path"], state.get("survey_index") or 0)), seed, JUDGE_METRICS if judged else (),
        judge=judge_metadata(step.settings, state.get("usage") or {}, state.get("price_in"), state.get("price_out"),
                             step.calls.caller.reported_models) if judged else None,
        seeds=max(1, state.get("seeds") or 1) if judged else 0, failures=state.get("failures") or [])
    return {"result": result, "table": render(result)}
