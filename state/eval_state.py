"""The evaluator graph's state: which articles, which corpus; the table and the result it returns."""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

from llmxmr.state.graph_state import append


class EvalInput(TypedDict):
    """Articles to compare (OUTDIRs of ours, Markdown files, the reference implementation's JSONL) and the
    corpus they were written from."""

    articles: list[str]
    corpus_path: str
    names: NotRequired[list[str] | None]  # a column name per article (default: file names)
    survey_index: NotRequired[int | None]
    seed: NotRequired[int | None]  # of the bootstrap intervals


class EvalOutput(TypedDict):
    table: str  # eval.md
    result: dict[str, Any]  # eval.json


class EvalState(EvalInput, EvalOutput):
    systems: Annotated[list[dict[str, Any]], append]


class ArticleTask(TypedDict):
    index: int
    path: str
    name: str | None
    corpus_path: str
    survey_index: int
    seed: int
