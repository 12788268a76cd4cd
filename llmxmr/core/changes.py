"""What an update of a finished survey changes (`llmxmr update`), as pure functions: which sections must be
written again and why, which references came and went, whether the outline is refined again, and the
CHANGELOG.md text. The graph's update steps (nodes/update.py) feed them what they read from the store.

A section is written again when its evidence changed (a paper's digest has content for it now and had
none before, or the other way round: a document added or removed, or a refined outline read again), when
its text cites a removed document, or when its outline entry is new or changed; every ancestor of such a section follows, since a parent is written from
its children. Every other section keeps its text byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from llmxmr.core.tree import iter_sections
from llmxmr.state.records import Outline

Evidence = Mapping[str, Mapping[str, str]]  # section id -> paper id -> that paper's digest text for it


def evidence_by_section(digests: Iterable[Any]) -> dict[str, dict[str, str]]:
    """Section id -> paper id -> digest text, from `Digest` records (blank entries are no evidence)."""
    out: dict[str, dict[str, str]] = {}
    for d in digests:
        for sid, text in d.sections.items():
            if text.strip():
                out.setdefault(sid, {})[d.paper_id] = text
    return out


def _entries(outline: Outline) -> dict[str, tuple[str, str, str, str | None, tuple[str, ...]]]:
    """Section id -> what its text is written from in the outline: title, briefs, parent, children."""
    return {s.section_id: (s.title, s.construction, s.analysis, parent, tuple(c.section_id for c in s.children))
            for s, _, parent in iter_sections(outline)}


def _names(ids: Iterable[str]) -> str:
    return ", ".join(sorted(ids))


def sections_to_rewrite(old: Outline, new: Outline, old_evidence: Evidence, new_evidence: Evidence,
                        cites_removed: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Section id of the new outline -> why it is written again; sections not listed keep their text."""
    before, after = _entries(old), _entries(new)
    reasons: dict[str, str] = {}
    for sid, entry in after.items():
        why = []
        if sid not in before:
            why.append("new section")
        elif entry != before[sid]:
            why.append("its outline entry changed")
        # Evidence is compared by paper: a refined outline has every document digested again, and a
        # model words a paper's digest a little differently each time; the papers a section rests on are
        # what its text was written from.
        was, now = set(old_evidence.get(sid, {})), set(new_evidence.get(sid, {}))
        if now - was:
            why.append(f"evidence added from {_names(now - was)}")
        if was - now:
            why.append(f"evidence dropped from {_names(was - now)}")
        gone = sorted(set(cites_removed.get(sid, ())))
        if gone:
            why.append(f"cited removed {_names(gone)}")
        if why:
            reasons[sid] = "; ".join(why)
    parents = {sid: entry[3] for sid, entry in after.items()}
    for sid in list(reasons):  # ancestors: a parent is written from its children
        child, parent = sid, parents.get(sid)
        while parent is not None:
            reasons.setdefault(parent, f"parent of rewritten {child}")
            child, parent = parent, parents.get(parent)
    return {sid: reasons[sid] for sid in after if sid in reasons}  # in outline order


def expected_rewrites(outline: Outline, evidence: Evidence, cites_removed: Mapping[str, Iterable[str]],
                      removed: Iterable[str], added: int, sections_per_paper: float) -> int:
    """Sections an update with refine=never is expected to write again, before it digests anything
    (`llmxmr plan --update`): exactly those a removal changes (the removed documents' evidence and
    citations, with their ancestors), plus, for the added documents, whose digests are not made yet,
    `sections_per_paper` sections each (the run's mean per digest) and one ancestor per level of the
    outline for each, at most every section."""
    removed = set(removed)
    after = {sid: {p: t for p, t in papers.items() if p not in removed} for sid, papers in evidence.items()}
    exact = sections_to_rewrite(outline, outline, evidence, after, cites_removed)
    entries = list(iter_sections(outline))
    inner = sum(1 for s, _, _ in entries if s.children)
    levels = max((d for _, d, _ in entries), default=1)
    touched = min(len(entries) - inner, math.ceil(added * sections_per_paper))
    ancestors = min(inner, touched * (levels - 1))
    return min(len(entries), len(exact) + touched + ancestors)


def removed_sections(old: Outline, new: Outline) -> list[str]:
    ids = {s.section_id for s, _, _ in iter_sections(new)}
    return [s.section_id for s, _, _ in iter_sections(old) if s.section_id not in ids]


def refine_decision(E_outline: float, E_suggested: float, epsilon: float) -> tuple[bool, str]:
    """`refine=auto`, once the added documents' suggestions have been applied to the final outline and
    scored (the refinement block's layer 0): go on refining only when they raise the outline's entropy
    score E by more than epsilon, the loop's convergence threshold. (refine, the reason recorded in the
    CHANGELOG)."""
    gain = E_suggested - E_outline
    moved = f"the new documents' suggestions move E {E_outline:.3f} -> {E_suggested:.3f} ({gain:+.3f}, epsilon {epsilon:g})"
    if gain > epsilon:
        return True, f"refined: {moved}"
    return False, f"not refined: {moved}"


def reference_changes(before: list[Mapping[str, Any]], after: list[Mapping[str, Any]], removed: Iterable[str],
                      added_docs: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """References added and removed between two versions, each with its title and reason."""
    old = {r["paper_id"]: r for r in before}
    new = {r["paper_id"]: r for r in after}
    removed, added_docs = set(removed), set(added_docs)
    added = [{"paper_id": p, "title": str(r.get("title", "")),
              "reason": "new document" if p in added_docs else "now cited by a rewritten section"}
             for p, r in new.items() if p not in old]
    gone = [{"paper_id": p, "title": str(r.get("title", "")),
             "reason": "document removed" if p in removed else "no longer cited after the rewrite"}
            for p, r in old.items() if p not in new]
    return {"added": added, "removed": gone}


def render_changelog(entries: list[Mapping[str, Any]]) -> str:
    """CHANGELOG.md: one part per version, newest first."""
    lines = ["# Changelog", ""]
    for e in sorted(entries, key=lambda e: -int(e["version"])):
        lines += [f"## Version {e['version']}", ""]
        docs = e.get("documents") or {}
        for label, key in (("Documents added", "added"), ("Documents removed", "removed"),
                           ("Documents ignored", "ignored")):
            for d in docs.get(key) or []:
                lines.append(f"- {label}: `{d['paper_id']}` {d.get('title', '')}"
                             + (f" ({d['reason']})" if d.get("reason") else ""))
        lines.append(f"- Outline: {e.get('refine', '')}")
        for label, key in (("Section added", "added"), ("Section rewritten", "rewritten"),
                           ("Section removed", "removed")):
            for s in (e.get("sections") or {}).get(key) or []:
                lines.append(f"- {label}: {s['section_id']} {s.get('title', '')} ({s['reason']})")
        kept = (e.get("sections") or {}).get("kept", 0)
        lines.append(f"- Sections kept verbatim: {kept}")
        for label, key in (("Reference added", "added"), ("Reference removed", "removed")):
            for r in (e.get("references") or {}).get(key) or []:
                lines.append(f"- {label}: `{r['paper_id']}` {r['title']} ({r['reason']})")
        usage = e.get("usage") or {}
        if usage:
            lines.append(f"- Cost of this version: {usage.get('calls', 0)} model answers, "
                         f"{usage.get('prompt_tokens', 0)} prompt tokens, {usage.get('completion_tokens', 0)} "
                         "completion tokens")
        lines.append("")
    return "\n".join(lines)
