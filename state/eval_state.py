"""The evaluator graph's state: which articles, which corpus, whether a judge rates them; the table and
the result it returns."""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

from llmxmr.state.graph_state import append, merge_usage


class EvalInput(TypedDict):
    """Articles to compare (OUTDIRs of ours, Markdown files, the reference implementation's JSONL) and the
    corpus they were written from. `judge`: also the judge metrics, rated by the context's judge model."""

    articles: list[str]
    corpus_path: str
    names: NotRequired[list[str] | None]  # a column name per article (default: file names)
    survey_index: NotRequired[int | None]
    seed: NotRequired[int | None]  # of the bootstrap intervals
    judge: NotRequired[bool | None]
    seeds: NotRequired[int | None]  # judging passes: 1 at temperature 0, or K at the candidate temperature
    price_in: NotRequired[float | None]  # $ per million prompt tokens, for the eval's own cost
    price_out: NotRequired[float | None]


class EvalOutput(TypedDict):
    table: str  # eval.md
    result: dict[str, Any]  # eval.json


class EvalState(EvalInput, EvalOutput):
    run_id: str
    systems: Annotated[list[dict[str, Any]], append]
    judge_tasks: list[dict[str, Any]]  # one per judge call: see JudgeTask
    judgements: Annotated[list[dict[str, Any]], append]  # {"system", "seed", "metric", "section", "values"}
    usage: Annotated[dict[str, dict[str, int]], merge_usage]
    failures: Annotated[list[dict[str, Any]], append]


class ArticleTask(TypedDict):
    index: int
    path: str
    name: str | None
    corpus_path: str
    survey_index: int
    seed: int


class JudgeTask(TypedDict):
    """One judge call: a criterion of one article or section, or a batch of its cited claims."""

    run_id: str
    system: int
    path: str
    name: str | None
    corpus_path: str
    survey_index: int
    seed: int  # the judging pass
    temperature: float | None  # None: the settings' (0); above 0 when several passes must differ
    metric: str
    section: int
    claims: list[list[Any]]  # [section, sentence, paper id] of a faithfulness batch
