"""prepare: resolve the settings, load the corpus into the store, and keep only refs in state."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from langgraph.config import get_config

from llmxmr.corpus import CorpusError, documents_from_papers, load_surveys
from llmxmr.models.tokens import count_tokens, ensure_tiktoken_offline
from llmxmr.nodes import storage
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import chunk_bounds
from llmxmr.state.context import CONTEXT_FIELDS, Context, Settings, resolve_settings
from llmxmr.state.models import Document, PaperRef

def _run_id() -> str:
    """The thread id of a top-level run; nested in a parent graph, the thread id plus a hash of where in the
    parent this run sits (its checkpoint namespace), so that two pipeline runs in one parent thread (two turns
    of an agent, two calls from a wrapper node) never share settings or store records."""
    try:
        configurable = get_config().get("configurable") or {}
    except Exception:
        configurable = {}
    thread = configurable.get("thread_id")
    if not thread:
        return uuid.uuid4().hex[:16]
    ns = str(configurable.get("checkpoint_ns") or "")
    parent = ns.rsplit("|", 1)[0] if "|" in ns else ""  # the last part is this node's own task
    if not parent:
        return storage.safe_label(str(thread))
    return f"{storage.safe_label(str(thread))[:40]}-{hashlib.sha256(parent.encode()).hexdigest()[:12]}"


def _context_of(runtime: Any) -> Context | dict | None:
    """Our settings from the runtime context. A parent agent passes its own context type: it may carry ours
    under `llmxmr` (a Context or a dict, attribute or key); otherwise the defaults apply. A dict none of whose
    keys is one of our fields is a parent's dict, not a mistyped one of ours."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Context):
        return ctx
    if isinstance(ctx, dict):
        if "llmxmr" in ctx:
            ctx = ctx["llmxmr"]
        elif ctx and not set(ctx) & set(CONTEXT_FIELDS):
            return None
    else:
        ctx = getattr(ctx, "llmxmr", None)
    return ctx if isinstance(ctx, (Context, dict)) else None


def load_documents(state: dict[str, Any]) -> tuple[str, list[Document], list[dict]]:
    """The survey title, its documents and skip reports, from inline papers or a corpus path."""
    if state.get("papers"):
        docs, skipped = documents_from_papers(state["papers"], "input.papers")
        if not docs:
            raise CorpusError("input.papers has no usable documents: " + "; ".join(s.reason for s in skipped))
        title = state.get("title") or "Survey"
        return title, docs, [s.model_dump() for s in skipped]
    path = state.get("corpus_path")
    if not path:
        raise CorpusError("the input needs `corpus_path` (a JSONL file or a folder) or inline `papers`")
    surveys = load_surveys(Path(path).expanduser(), title=state.get("title"))
    index = state.get("survey_index") or 0
    if not 0 <= index < len(surveys):
        raise CorpusError(f"{path} has {len(surveys)} survey(s); survey_index {index} does not exist")
    survey = surveys[index]
    return state.get("title") or survey.title, survey.documents, [s.model_dump() for s in survey.skipped]


def make_prepare(env: Env):
    def prepare(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        ensure_tiktoken_offline()
        run_id = state.get("run_id") or _run_id()
        store = env.store(runtime, run_id)
        saved = storage.get_settings(store, run_id)
        settings = Settings(**saved) if saved else resolve_settings(_context_of(runtime))
        storage.put_settings(store, run_id, settings.model_dump())
        title, docs, skipped = load_documents(state)
        refs = []
        for doc in docs:
            storage.put_document(store, run_id, doc)
            tokens = count_tokens(doc.text)
            bounds = chunk_bounds(doc.text, settings)
            storage.put_chunk_bounds(store, run_id, doc.paper_id, bounds)
            refs.append(PaperRef(paper_id=doc.paper_id, title=doc.title, url=doc.url, tokens=tokens,
                                 chunks=len(bounds)).model_dump())
        progress("prepare", done=len(refs), total=len(refs), skipped=len(skipped))
        return {
            "run_id": run_id, "settings": settings.model_dump(), "title": title, "paper_refs": refs,
            "skipped": skipped, "papers": None, "block": 0, "layer": 0, "round": 0, "phase": "skeleton",
            "block_outlines": [], "layer_best": [], "working_set": [], "stop_reason": "",
        }

    return prepare
