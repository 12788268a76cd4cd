"""Updates of a finished survey (`llmxmr update`, or `{"update": ...}` as the graph's input on a finished
thread): what is checked before a single call is paid, shared by the CLI, `llmxmr.runs` and the graph's
`update_start` step (nodes/update.py).

An update that cannot be done is an `UpdateError` with one line saying what is wrong and how to fix it:
an unknown id to remove (the run's ids are listed), nothing to add or remove, a thread that has not
finished, or a setting that would change how the kept digests and sections were made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmxmr.corpus import CorpusError, documents_from_papers, load_surveys
from llmxmr.serving import NotAllowedError, confine_corpus, corpus_root
from llmxmr.state.records import Document, SkippedDocument

REFINE_MODES = ("auto", "always", "never")
# Settings that shaped the digests and sections an update keeps: changing them would mix two kinds of
# article in one, so an update refuses them (a new run is the way).
SHAPING_SETTINGS = ("mode", "digest_input", "language")
KNOWN_IDS_SHOWN = 40


class UpdateError(ValueError):
    """An update that cannot be done as asked (the message says why and how to fix it)."""


@dataclass
class UpdatePlan:
    added: list[Document]  # new documents, not in the run yet
    ignored: list[dict[str, str]] = field(default_factory=list)  # added documents already in the run
    removed: list[dict[str, str]] = field(default_factory=list)  # {"paper_id", "title"} of documents dropped
    skipped: list[SkippedDocument] = field(default_factory=list)  # added entries that could not be read
    refine: str = "auto"


def refine_mode(request: Mapping[str, Any]) -> str:
    mode = request.get("refine") or "auto"
    if mode not in REFINE_MODES:
        raise UpdateError(f"refine must be one of {', '.join(REFINE_MODES)}, not {mode!r}")
    return str(mode)


def load_added(request: Mapping[str, Any], follow_links: bool = False) -> tuple[list[Document], list[SkippedDocument]]:
    """The documents an update adds: inline papers, or every survey's documents of a JSONL file or folder."""
    if request.get("add_papers"):
        return documents_from_papers(request["add_papers"], "update.add_papers")
    if not request.get("add_path"):
        return [], []
    try:  # served: only inside the operator's corpus root, as the first run's corpus (llmxmr.serving)
        where = confine_corpus(Path(str(request["add_path"])))
    except NotAllowedError as exc:
        raise CorpusError(str(exc)) from None
    docs: list[Document] = []
    skipped: list[SkippedDocument] = []
    for survey in load_surveys(where.expanduser(), follow_links=follow_links and corpus_root() is None):
        docs += survey.documents
        skipped += survey.skipped
    return docs, skipped


def _known(refs: Sequence[Mapping[str, Any]]) -> str:
    ids = [str(r["paper_id"]) for r in refs]
    more = f" (and {len(ids) - KNOWN_IDS_SHOWN} more)" if len(ids) > KNOWN_IDS_SHOWN else ""
    return ", ".join(ids[:KNOWN_IDS_SHOWN]) + more


def plan_update(request: Mapping[str, Any], refs: Sequence[Mapping[str, Any]], follow_links: bool = False) -> UpdatePlan:
    """Check an update against the run's documents (`refs`: its paper refs) and load what it adds."""
    if not isinstance(request, Mapping):
        raise UpdateError(f"an update is a dict with add_path/add_papers, remove and refine, not {type(request).__name__}")
    unknown_keys = sorted(set(request) - {"add_path", "add_papers", "remove", "refine"})
    if unknown_keys:
        raise UpdateError(f"unknown update field(s) {', '.join(unknown_keys)}; valid: add_path, add_papers, remove, refine")
    mode = refine_mode(request)
    known = {str(r["paper_id"]): r for r in refs}
    remove = list(dict.fromkeys(str(p) for p in request.get("remove") or []))
    unknown = [p for p in remove if p not in known]
    if unknown:
        raise UpdateError(f"cannot remove {', '.join(unknown)}: no document of this run has that id. "
                          f"Known ids: {_known(refs)}")
    if remove and len(remove) == len(known):
        raise UpdateError("removing every document leaves nothing to survey; start a new run instead")
    docs, skipped = load_added(request, follow_links)
    plan = UpdatePlan(added=[], skipped=skipped, refine=mode,
                      removed=[{"paper_id": p, "title": str(known[p].get("title", ""))} for p in remove])
    seen: set[str] = set()
    for doc in docs:
        if doc.paper_id in known:
            plan.ignored.append({"paper_id": doc.paper_id, "title": doc.title, "reason": "already in the run (same id)"})
        elif doc.paper_id not in seen:
            seen.add(doc.paper_id)
            plan.added.append(doc)
    if not plan.added and not plan.removed:
        what = "every added document is already in the run" if plan.ignored else "no documents to add or remove"
        raise UpdateError(f"nothing to update: {what}. Fix: --add new documents (a JSONL file or a folder) "
                          "or --remove ID")
    return plan


def check_finished(values: Mapping[str, Any], thread: str, resume_hint: str | None = None) -> None:
    """An update starts from a finished survey only."""
    if not values:
        raise UpdateError(f"no run with thread id {thread}: start it with `llmxmr run` first")
    if values.get("update"):
        raise UpdateError(f"thread {thread} has an update that did not finish: finish it first"
                          + (f" with `{resume_hint}`" if resume_hint else " (invoke the graph with None to resume)"))
    if not values.get("report"):
        raise UpdateError(f"thread {thread} has not finished its first version, so there is nothing to update yet: "
                          "finish it first" + (f" with `{resume_hint}`" if resume_hint else ""))


def check_overrides(saved: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Overrides as for `llmxmr resume` (models, base URL, budgets, knobs), except settings that shaped the
    kept digests and sections."""
    for name in SHAPING_SETTINGS:
        if name in overrides and overrides[name] != saved.get(name):
            raise UpdateError(f"this thread was made with {name}={saved.get(name)!r}; an update keeps the digests and "
                              f"sections made with it, so it cannot use {name}={overrides[name]!r}. Fix: drop that "
                              "override, or start a new run with it")
