"""finalize: validate citations once more, number them in order of first appearance, render the article
and assemble the run report (survey.json)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from langgraph.config import get_config

from llmxmr import run_store
from llmxmr.citations import find_citations, number_citations, validate_citations
from llmxmr.core.sources import SourceAccount, account_sources
from llmxmr.core.tree import iter_sections
from llmxmr.core.verification import article_counts, section_counts
from llmxmr.export import (
    EntropyRecord,
    IncludedPaper,
    PapersReport,
    SurveyReport,
    VerificationReport,
    render_markdown,
)
from llmxmr.nodes.step import Step
from llmxmr.nodes.update import changelog_entry
from llmxmr.nodes.write import GAP_TEXT, evidence_index
from llmxmr.references import BIB_NAME, bibtex_keys, pandoc_markdown, with_metadata
from llmxmr.state.context import redact_url
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


MIN_SECTIONS = 3
MIN_COVERAGE = 0.5


def thin_article(sections: int, sources: Any) -> list[str]:
    """Why a finished article is not worth exit 0: too few sections, or most of the documents with
    evidence left uncited. Recorded as failures, so the run ends with exit 3 and says why."""
    problems = []
    if sections < MIN_SECTIONS:
        problems.append(f"the article has only {sections} section(s) (fewer than {MIN_SECTIONS}): the outline "
                        "stages did not produce a usable structure; a larger model usually does")
    if sources is not None and sources.coverage is not None and sources.coverage < MIN_COVERAGE:
        problems.append(f"the article cites {len(sources.cited)} of the {sources.with_evidence} documents with "
                        f"evidence (under half); see `sources.excluded` in survey.json for each one's reason")
    return problems


def _concurrency(step: Step) -> dict[str, Any]:
    """Each model's in-flight limit: saved by earlier processes of this run, updated by this one's."""
    saved = run_store.get_concurrency(step.store, step.run_id)
    return {**saved, **step.calls.caller.concurrency_report()}


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
    references = with_metadata(references, {r.paper_id: run_store.get_document_info(store, run_id, r.paper_id) for r in references})
    article = render_markdown(state["title"], outline, dict(zip(order, numbered)), references)
    unnumbered = render_markdown(state["title"], outline, dict(zip(order, texts)), [])  # pandoc adds References
    pandoc = pandoc_markdown(unnumbered, bibtex_keys(references), bibliography=BIB_NAME)
    sources, verification = _accounts(state, step, order, texts)
    failures += [Failure(stage="finalize", unit="article", kind="thin_article", message=m).model_dump()
                 for m in thin_article(len(order), sources)]
    all_failures = list(state.get("failures") or []) + failures
    settings = step.settings.model_dump()
    # survey.json (and the report in the checkpoint) never carry a password given in the base URL.
    settings.update(base_url=redact_url(settings.get("base_url")), versions=versions(), thread_id=thread_id(),
                    run_id=run_id)
    report = SurveyReport(
        title=state["title"], outline=outline, content=article, references=references,
        papers=PapersReport(included=[IncludedPaper(paper_id=r["paper_id"], title=r["title"], url=r.get("url")) for r in refs],
                            skipped=[SkippedDocument(**s) for s in state.get("skipped") or []]),
        entropy_history=[EntropyRecord(**r) for r in state.get("entropy_history") or []],
        stop_reason=state.get("stop_reason") or "completed",
        usage={k: StageUsage(**v) for k, v in (state.get("usage") or {}).items()},
        failures=[Failure(**f) for f in all_failures], settings=settings, pandoc_markdown=pandoc,
        sources=sources, verification=verification, concurrency=_concurrency(step),
    )
    step.progress("finalize", done=1, total=1)
    out = {"article": article, "outline": outline.model_dump(), "references": [r.model_dump() for r in references],
           "report": report.model_dump(mode="json"), "failures": failures}
    if state.get("update"):  # a new version of an updated survey: what changed, and the update is done
        out.update(changelog=[changelog_entry(state, out["references"])], update=None, rewrite=None)
    return out


def _accounts(state: SurveyState, step: Step, order: list[str], texts: list[str]
              ) -> tuple[SourceAccount, VerificationReport | None]:
    """Where every input document went, and the citation check's report with its per-claim records."""
    refs = state["paper_refs"]
    evidence = evidence_index(step.store, step.run_id, state["final_key"], [r["paper_id"] for r in refs])
    cited = {pid for text in texts for pid in find_citations(text)}
    unwritten = {sid for sid, text in zip(order, texts) if GAP_TEXT in text}
    sources = account_sources([(r["paper_id"], r["title"]) for r in refs], state.get("skipped") or [], evidence,
                              cited, unwritten)
    if not step.settings.verify_citations:
        return sources, None
    # The whole article's claims and counts: an update checks only the sections it wrote again, and the
    # kept ones come with the records of the version that checked them.
    version = int(state.get("version") or 1)
    claims, counts, checked = [], [], []
    for sid in order:
        stored = run_store.get_claim_record(step.store, step.run_id, state["final_key"], sid)
        records = stored["claims"]
        claims += [{"section_id": sid, **r, "version": stored["version"]} for r in records]
        counts.append(stored["counts"] or section_counts(records))
        if stored["version"] == version:
            checked.append(sid)
    return sources, VerificationReport(**article_counts(counts), coverage=sources.coverage, claims=claims,
                                       checked_sections=checked)


def thread_id() -> str | None:
    """The thread this run is checkpointed under, for the report (None when it runs without one)."""
    try:
        return (get_config().get("configurable") or {}).get("thread_id")
    except RuntimeError:  # outside a runnable context
        return None
