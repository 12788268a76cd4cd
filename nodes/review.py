"""review_outline: an optional human check of the final outline before writing (Context.review_outline).

The node calls LangGraph's `interrupt` with the outline (as a dict and as markdown). The caller resumes with
`Command(resume=...)`:

- `True`, `{}`, `"approve"` or the unchanged outline: write the outline as it is (not `None`: LangGraph 1.2
  treats `Command(resume=None)` as no resume at all and fails);
- an edited outline (a dict like `Outline`, or `{"outline": {...}}`, or its JSON text): it is validated, and
  when it has problems the node interrupts again with them (`problems` in the payload), so a person can fix
  the edit. Sections a person adds may leave `section_id` empty: they get fresh ids; `next_id` is fixed up.
  An edit that keeps the structure (the same section ids under the same parents: retitles, new
  descriptions, reordering) keeps the digests; a changed structure is digested again before writing
  (`redigest`: a digest fan-out whose join, `review_digested`, goes on to `write`).
"""

from __future__ import annotations

import json
from typing import Any

from langgraph.types import interrupt
from pydantic import ValidationError

from llmxmr import run_store
from llmxmr.core.tree import (
    ID_RE,
    iter_sections,
    outline_key,
    outline_to_markdown,
    section_ids,
    validate_outline,
)
from llmxmr.nodes.step import Step
from llmxmr.state.graph_state import SurveyState
from llmxmr.state.records import Digest, Outline

INSTRUCTIONS = (
    "Edit the outline (titles, construction/analysis briefs, sections added, removed or moved; at most 3 levels) "
    "and resume with Command(resume=<the edited outline dict>), or resume with True to write it as it is. "
    "New sections may leave section_id empty. A changed structure is digested again before writing."
)


def structure(outline: Outline) -> set[tuple[str, str | None]]:
    """(section id, parent id) of every section: what the digests depend on."""
    return {(s.section_id, parent) for s, _, parent in iter_sections(outline)}


def _assign_ids(raw: dict[str, Any]) -> dict[str, Any]:
    """Fresh ids for sections a person added without one; next_id above every id in use."""
    raw = json.loads(json.dumps(raw))  # a deep copy of plain JSON
    sections: list[dict[str, Any]] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, dict):
                item.setdefault("children", [])
                sections.append(item)
                if isinstance(item["children"], list):
                    walk(item["children"])

    walk(raw.get("sections") or [])
    used = [int(m.group(1)) for s in sections if isinstance(s.get("section_id"), str)
            for m in [ID_RE.match(s["section_id"])] if m]
    next_id = max([int(raw.get("next_id") or 1), *(n + 1 for n in used)])
    for s in sections:
        if not str(s.get("section_id") or "").strip():
            s["section_id"] = f"s{next_id}"
            next_id += 1
    raw["next_id"] = next_id
    return raw


def parse_edit(answer: Any, current: Outline) -> tuple[Outline | None, list[str]]:
    """The outline a resume value stands for (None = keep the current one) and its problems."""
    if answer is None or answer is True or answer == {} or answer == "" or answer == "approve":
        return None, []
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError as exc:
            return None, [f"the edited outline is not valid JSON: {exc}"]
    if isinstance(answer, Outline):
        answer = answer.model_dump()
    if isinstance(answer, dict) and isinstance(answer.get("outline"), dict):
        answer = answer["outline"]
    if not isinstance(answer, dict):
        return None, [f"resume with an outline dict (title, sections, next_id) or None, not {type(answer).__name__}"]
    answer = {"title": current.title, **answer}
    try:
        edited = Outline(**_assign_ids(answer))
    except ValidationError as exc:
        return None, [f"{'.'.join(str(p) for p in e['loc']) or 'outline'}: {e['msg']}" for e in exc.errors()]
    return edited, validate_outline(edited)


def review_payload(outline: Outline, key: str, problems: list[str], attempt: int) -> dict[str, Any]:
    return {"kind": "review_outline", "outline_key": key, "outline": outline.model_dump(),
            "markdown": outline_to_markdown(outline), "problems": problems, "attempt": attempt,
            "instructions": INSTRUCTIONS}


def review_outline(state: SurveyState, step: Step) -> dict[str, Any]:
    # The store's settings: `resume --review-outline` updates them.
    if not step.settings.review_outline:
        return {}
    run_id, key, store = step.run_id, state["final_key"], step.store
    current = run_store.get_outline(store, run_id, key)
    problems: list[str] = []
    shown = current
    attempt = 0
    while True:
        # On a resume the node runs again from the top: LangGraph answers the earlier interrupts with the
        # earlier resume values in order, so a corrected edit after a rejected one lands here.
        answer = interrupt(review_payload(shown, key, problems, attempt))
        attempt += 1
        edited, problems = parse_edit(answer, current)
        if edited is None and not problems:
            step.progress("review", outline_key=key, changed=False)
            return {}
        if not problems:
            break
        if edited is not None:
            shown = edited  # show the person their own edit with its problems
    assert edited is not None
    new_key = outline_key(edited)
    if new_key == key:
        step.progress("review", outline_key=key, changed=False)
        return {}
    run_store.put_outline(store, run_id, new_key, edited)
    update: dict[str, Any] = {"final_key": new_key, "outline_key": new_key, "outline_sections": len(section_ids(edited))}
    if structure(edited) == structure(current):
        # Same sections under the same parents: the digests still fit; they move to the new key.
        for ref in state["paper_refs"]:
            digest = run_store.get_digest(store, run_id, key, ref["paper_id"])
            if digest is not None:
                run_store.put_digest(store, run_id, Digest(**{**digest.model_dump(), "outline_key": new_key}))
        step.progress("review", outline_key=new_key, changed=True, redigest=False)
        return update
    step.progress("review", outline_key=new_key, changed=True, redigest=True)
    return {**update, "redigest": True, "redigest_from": key}
