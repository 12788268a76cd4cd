"""finalize: validate citations once more, number them in order of first appearance, render the article
and assemble the run report (survey.json)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from langgraph.config import get_config

from llmxmr import run_store
from llmxmr.citations import number_citations, validate_citations
from llmxmr.core.tree import iter_sections
from llmxmr.export import (
    EntropyRecord,
    IncludedPaper,
    PapersReport,
    SurveyReport,
    render_markdown,
)
from llmxmr.nodes.step import Step
from llmxmr.state.graph_state import SurveyState
from llmxmr.state.records import Failure, SkippedDocument, StageUsage


def versions() -> dict[str, str]:
    out = {}
    for dist in ("llmxmr", "langgraph", "langchain-core", "langchain-openai"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def finalize(state: SurveyState, step: Step) -> dict[str, Any]:
    run_id, store = step.run_id, step.store
    outline = run_store.get_outline(store, run_id, state["final_key"])
    refs = state["paper_refs"]
    papers = {r["paper_id"]: (r["title"], r.get("url")) for r in refs}
    order = [s.section_id for s, _, _ in iter_sections(outline)]
    written = state.get("sections") or {}
    failures = []
    texts = []
    for sid in order:
        text = run_store.get_section(store, run_id, written[sid]) if sid in written else ""
        text, problems = validate_citations(text, set(papers))
        failures += [Failure(stage="finalize", unit=sid, kind="citation", message=p).model_dump() for p in problems]
        texts.append(text)
    numbered, references = number_citations(texts, papers)
    article = render_markdown(state["title"], outline, dict(zip(order, numbered)), references)
    all_failures = list(state.get("failures") or []) + failures
    settings = step.settings.model_dump()
    settings.update(versions=versions(), thread_id=thread_id(), run_id=run_id)
    report = SurveyReport(
        title=state["title"], outline=outline, content=article, references=references,
        papers=PapersReport(included=[IncludedPaper(paper_id=r["paper_id"], title=r["title"], url=r.get("url")) for r in refs],
                            skipped=[SkippedDocument(**s) for s in state.get("skipped") or []]),
        entropy_history=[EntropyRecord(**r) for r in state.get("entropy_history") or []],
        stop_reason=state.get("stop_reason") or "completed",
        usage={k: StageUsage(**v) for k, v in (state.get("usage") or {}).items()},
        failures=[Failure(**f) for f in all_failures], settings=settings,
    )
    step.progress("finalize", done=1, total=1)
    return {"article": article, "outline": outline.model_dump(), "references": [r.model_dump() for r in references],
            "report": report.model_dump(mode="json"), "failures": failures}


def thread_id() -> str | None:
    """The thread this run is checkpointed under, for the report (None when it runs without one)."""
    try:
        return (get_config().get("configurable") or {}).get("thread_id")
    except RuntimeError:  # outside a runnable context
        return None
