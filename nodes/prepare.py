"""prepare: load the corpus into the store and keep only refs in state (the adapter has resolved and saved
the run's settings before this step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmxmr import run_store
from llmxmr.corpus import CorpusError, clean_text, documents_from_papers, load_surveys
from llmxmr.limits import chunk_bounds
from llmxmr.models.tokens import count_tokens, ensure_tiktoken_offline
from llmxmr.nodes.step import Step
from llmxmr.serving import NotAllowedError, confine_corpus, corpus_root
from llmxmr.state.graph_state import SurveyState
from llmxmr.state.records import Document, PaperRef


def _clean_title(title: str | None) -> str:
    # A title given with the input crosses the boundary here: no lone surrogate reaches a prompt or a file.
    return " ".join(clean_text(title or "").split())


def load_documents(state: SurveyState, follow_links: bool = False) -> tuple[str, list[Document], list[dict]]:
    """The survey title, its documents and skip reports, from inline papers or a corpus path."""
    if state.get("papers"):
        docs, skipped = documents_from_papers(state["papers"], "input.papers")
        if not docs:
            raise CorpusError("input.papers has no usable documents: " + "; ".join(s.reason for s in skipped))
        title = _clean_title(state.get("title")) or "Survey"
        return title, docs, [s.model_dump() for s in skipped]
    path = state.get("corpus_path")
    if not path:
        raise CorpusError("the input needs `corpus_path` (a JSONL file or a folder) or inline `papers`")
    try:  # served: only inside the operator's corpus root, and no link out of it (llmxmr.serving)
        where = confine_corpus(Path(path))
    except NotAllowedError as exc:
        raise CorpusError(str(exc)) from None
    surveys = load_surveys(where.expanduser(), title=state.get("title"),
                           follow_links=follow_links and corpus_root() is None)
    index = state.get("survey_index") or 0
    if not 0 <= index < len(surveys):
        raise CorpusError(f"{path} has {len(surveys)} survey(s); survey_index {index} does not exist")
    survey = surveys[index]
    return _clean_title(state.get("title")) or survey.title, survey.documents, [s.model_dump() for s in survey.skipped]


def store_documents(step: Step, docs: list[Document]) -> list[dict[str, Any]]:
    """Documents into the store (text, chunk bounds, chunks); their refs for the state."""
    settings = step.settings
    refs = []
    for doc in docs:
        tokens = count_tokens(doc.text)
        bounds = chunk_bounds(doc.text, settings)
        run_store.put_chunk_bounds(step.store, step.run_id, doc.paper_id, bounds)
        # A document of several chunks is stored as its chunks (a map task reads one, never the whole
        # document); a one-chunk document is stored whole (its one chunk is the document).
        run_store.put_document(step.store, step.run_id, doc, bounds)
        refs.append(PaperRef(paper_id=doc.paper_id, title=doc.title, url=doc.url, tokens=tokens,
                             chunks=len(bounds)).model_dump())
    run_store.add_paper_titles(step.store, step.run_id, [doc.title for doc in docs])
    return refs


def prepare(state: SurveyState, step: Step) -> dict[str, Any]:
    """Load the corpus into the store (text, chunk bounds); state keeps refs only."""
    ensure_tiktoken_offline()
    settings = step.settings
    title, docs, skipped = load_documents(state, settings.follow_links)
    refs = store_documents(step, docs)
    step.progress("prepare", done=len(refs), total=len(refs), skipped=len(skipped))
    return {
        "run_id": step.run_id, "title": title, "paper_refs": refs, "skipped": skipped, "papers": None,
        "map_pass": settings.mode == "default",  # the reference has no map pass
        "batch": sorted(settings.batch_stages),
        "block": 0, "layer": 0, "round": 0, "block_outlines": [], "layer_best": [], "working_set": [],
        "stop_reason": "", "version": 1,
    }
