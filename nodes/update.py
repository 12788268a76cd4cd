"""Update of a finished survey: a new version of the same thread (docs/DESIGN.md, "Updates").

```
START ─(update)─> update_start → update_map* → update_mapped → update_reduce* → update_reduced
  → outline_digest* (the added documents against the final outline) → update_digested
  ──(refine)──> block_start … select_final ─┐
  └─────────────────────────────────────────┴─> plan_rewrite → write (only the sections that changed) → finalize
```

The added documents are read and digested like any others; removed ones leave `paper_refs`, so they drop
out of evidence, the citation check and the references. What to write again is `core.changes`; the
CHANGELOG entry is assembled here and written by finalize.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Overwrite

from llmxmr import run_store
from llmxmr.citations import find_citations
from llmxmr.core.changes import (
    evidence_by_section,
    reference_changes,
    refine_decision,
    removed_sections,
    sections_to_rewrite,
)
from llmxmr.core.entropy import combine, structural_entropy
from llmxmr.core.tree import iter_sections, leaf_ids, section_ids
from llmxmr.models.tokens import ensure_tiktoken_offline
from llmxmr.nodes.prepare import store_documents
from llmxmr.nodes.step import Step
from llmxmr.state.context import Settings
from llmxmr.state.graph_state import SurveyState
from llmxmr.updates import check_finished, plan_update

PROBE = "probe"  # update_log["refined"] while refine=auto waits for layer 0's scores


def update_start(state: SurveyState, step: Step) -> dict[str, Any]:
    """Check the update, store the added documents and start a new version: the new paper refs, a fresh
    usage count and budget (each version pays for itself), and what the version starts from."""
    ensure_tiktoken_offline()
    check_finished({**state, "update": None}, step.run_id)
    request = state.get("update") or {}
    refs = list(state["paper_refs"])
    plan = plan_update(request, refs, step.settings.follow_links)
    removed = {d["paper_id"] for d in plan.removed}
    added = store_documents(step, plan.added)
    cites_removed: dict[str, list[str]] = {}
    for sid, ref in (state.get("sections") or {}).items():
        gone = sorted(set(find_citations(run_store.get_section(step.store, step.run_id, ref))) & removed)
        if gone:
            cites_removed[sid] = gone
    version = int(state.get("version") or 1)
    base = {"version": version, "final_key": state["final_key"], "paper_ids": [r["paper_id"] for r in refs],
            "cites_removed": cites_removed}
    log = {"added": [{"paper_id": r["paper_id"], "title": r["title"]} for r in added], "ignored": plan.ignored,
           "removed": plan.removed, "refine_mode": plan.refine}
    run_store.put_spent(step.store, step.run_id, {"calls": 0, "tokens": 0})
    for d in plan.ignored:
        step.progress("update", ignored=d["paper_id"], reason=d["reason"])
    step.progress("update", version=version + 1, added=len(added), removed=len(removed))
    return {"update_base": base, "update_log": log, "version": version + 1, "rewrite": None,
            "paper_refs": [r for r in refs if r["paper_id"] not in removed] + added,
            "skipped": list(state.get("skipped") or []) + [s.model_dump() for s in plan.skipped],
            "map_pass": step.settings.mode == "default", "usage": Overwrite({}), "failures": Overwrite([])}


def added_refs(state: SurveyState) -> list[dict[str, Any]]:
    ids = {d["paper_id"] for d in state["update_log"]["added"]}
    return [r for r in state["paper_refs"] if r["paper_id"] in ids]


def read_done(state: SurveyState) -> dict[str, Any]:
    """Join of the added documents' map (or reduce) fan-out."""
    return {}


def update_digested(state: SurveyState, step: Step) -> dict[str, Any]:
    """The added documents are digested against the final outline: the outline's entropy with the new
    digests, and whether the outline is refined again (refine=auto|always|never)."""
    settings, key = step.settings, state["final_key"]
    outline = run_store.get_outline(step.store, step.run_id, key)
    digests = run_store.get_digests(step.store, step.run_id, key, [r["paper_id"] for r in state["paper_refs"]])
    H, _, coverage = structural_entropy(leaf_ids(outline), digests)
    entry = next((o for o in state.get("block_outlines") or [] if o["outline_key"] == key), {})
    J = entry.get("J")
    E_after = combine(J or 0.0, H, settings.entropy_lambda)
    log = dict(state["update_log"])
    mode = log["refine_mode"]
    refine: bool | str
    if mode == "never":
        refine, reason = False, "not refined (refine=never)"
    elif mode == "always":
        refine, reason = True, "refined (refine=always)"
    elif not added_refs(state):
        refine, reason = False, "not refined: no documents added, so no suggestions to weigh (refine=auto)"
    else:  # auto: the refinement block's layer 0 applies the new suggestions; layer_done decides (probe_decided)
        refine, reason = PROBE, "refine=auto: waiting for the new documents' suggestions to be scored"
    log.update(refined=refine, refine=reason, entropy={"before": entry.get("E"), "after": E_after, "H": H})
    step.progress("update", refine=refine, entropy=round(E_after, 3))
    # The final outline's entropy with the current documents: the baseline of the next update's decision.
    current = {"outline_key": key, "J": J, "H": H, "E": E_after, "coverage": coverage}
    if not refine:
        others = [o for o in state.get("block_outlines") or [] if o["outline_key"] != key]
        return {"update_log": log, "block_outlines": others + [current]}
    # One block of the refinement loop from the final outline; feedback comes from the added documents'
    # groups (the removed ones' groups, minus them, when only documents were removed).
    new = [r["paper_id"] for r in added_refs(state)]
    if new:
        groups = [new[i:i + settings.group_size] for i in range(0, len(new), settings.group_size)]
    else:
        gone = {d["paper_id"] for d in log["removed"]}
        groups = [g2 for g in state.get("groups") or [] if (g2 := [p for p in g if p not in gone])]
    return {"update_log": log, "groups": groups, "block": int(state.get("block") or 0) + 1, "outline_key": key,
            "outline_sections": len(section_ids(outline)), "stop_reason": "", "block_outlines": [current]}


def probe_decided(state: SurveyState, settings: Settings, best_J: float) -> dict[str, Any]:
    """refine=auto after the update's layer 0: the final outline scored afresh (O_b of the block) against the
    best outline the new documents' suggestions made of it, both with the digests' H. Not better by more than
    epsilon: the block stops here and the outline stays."""
    log = dict(state["update_log"])
    base_J = float((state.get("base_score") or {}).get("J") or 0.0)
    H = log["entropy"]["H"]
    refine, reason = refine_decision(combine(base_J, H, settings.entropy_lambda),
                                     combine(best_J, H, settings.entropy_lambda), settings.epsilon)
    log.update(refined=refine, refine=reason, probe={"J_outline": base_J, "J_suggested": best_J})
    out: dict[str, Any] = {"update_log": log}
    if not refine:
        out["stop_reason"] = "update: the new documents' suggestions do not improve the outline"
    return out


def probing(state: SurveyState) -> bool:
    """This layer 0 is an update's refine=auto probe."""
    return bool(state.get("update")) and (state.get("update_log") or {}).get("refined") == PROBE


def plan_rewrite(state: SurveyState, step: Step) -> dict[str, Any]:
    """The sections to write again (core.changes); the kept ones move to a refined outline's key verbatim."""
    store, run_id, base = step.store, step.run_id, state["update_base"]
    old_key, new_key = base["final_key"], state["final_key"]
    old = run_store.get_outline(store, run_id, old_key)
    new = run_store.get_outline(store, run_id, new_key)
    old_ev = evidence_by_section(run_store.get_digests(store, run_id, old_key, base["paper_ids"]))
    new_ev = evidence_by_section(run_store.get_digests(store, run_id, new_key,
                                                      [r["paper_id"] for r in state["paper_refs"]]))
    reasons = sections_to_rewrite(old, new, old_ev, new_ev, base["cites_removed"])
    kept = [sid for sid in section_ids(new) if sid not in reasons]
    if new_key != old_key:  # a refined outline: kept sections and their claim records move over unchanged
        for sid in kept:
            text = run_store.get_section(store, run_id, f"{old_key}/{sid}")
            run_store.put_section(store, run_id, new_key, sid, text)
            run_store.copy_claim_checks(store, run_id, old_key, new_key, sid)
    titles_new = {s.section_id: s.title for s, _, _ in iter_sections(new)}
    titles_old = {s.section_id: s.title for s, _, _ in iter_sections(old)}
    old_ids = set(titles_old)
    log = dict(state["update_log"])
    log["sections"] = {
        "added": [{"section_id": s, "title": titles_new[s], "reason": r} for s, r in reasons.items() if s not in old_ids],
        "rewritten": [{"section_id": s, "title": titles_new[s], "reason": r} for s, r in reasons.items() if s in old_ids],
        "removed": [{"section_id": s, "title": titles_old[s], "reason": "not in the refined outline"}
                    for s in removed_sections(old, new)],
        "kept": len(kept),
    }
    step.progress("update", rewrite=len(reasons), kept=len(kept))
    return {"update_log": log, "rewrite": list(reasons),
            "sections": Overwrite({sid: f"{new_key}/{sid}" for sid in kept})}


def changelog_entry(state: SurveyState, references: list[dict[str, Any]]) -> dict[str, Any]:
    """This version's CHANGELOG entry: documents, outline decision, sections, references, cost."""
    log = state["update_log"]
    usage = state.get("usage") or {}
    totals = {k: sum(int(u.get(k, 0)) for u in usage.values()) for k in ("calls", "prompt_tokens", "completion_tokens")}
    # An answer received before a stop is replayed from the run's record on resume ("cached"): paid once, by
    # this version, so it counts; the entry is then the same whether the version ran at once or was resumed.
    totals["calls"] += sum(int(u.get("cached", 0)) for u in usage.values())
    refs = reference_changes(state.get("references") or [], references, [d["paper_id"] for d in log["removed"]],
                             [d["paper_id"] for d in log["added"]])
    return {"version": state["version"], "from_version": state["update_base"]["version"],
            "documents": {k: log.get(k) or [] for k in ("added", "removed", "ignored")},
            "refine": log.get("refine", ""), "entropy": log.get("entropy"), "probe": log.get("probe"),
            "sections": log.get("sections") or {},
            "references": refs, "usage": totals}

