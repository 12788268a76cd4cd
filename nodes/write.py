"""The section writer: sections by height (all leaves at once, a parent after its last child), each
written from its evidence and polished; a section that keeps failing becomes a visible gap marker."""

from __future__ import annotations

import re
from typing import Any

from llmxmr import run_store
from llmxmr.citations import find_citations, merge_adjacent, validate_citations
from llmxmr.core.tree import (
    find_section,
    height_schedule,
    outline_key,
    outline_to_prompt_text,
    section_ids,
    section_numbers,
)
from llmxmr.limits import input_budget
from llmxmr.models.errors import ContextOverflowError
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes.model_calls import ModelCalls
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.graph_state import WriterState
from llmxmr.state.records import Digest, Outline
from llmxmr.state.responses import charts_reply_for
from llmxmr.state.tasks import SectionTask

WRITE, POLISH, CHARTS = STAGES["write_section"], STAGES["polish"], STAGES["charts"]
PROMPT_OVERHEAD = 400


GAP_TEXT = "Section not written"


def gap_marker(reason: str) -> str:
    return f"> **[{GAP_TEXT}: {reason}. See `failures` in survey.json.]**"


def schedule(state: WriterState, step: Step) -> dict[str, Any]:
    """Plan the heights; an inline outline and digests (a standalone run, e.g. from Studio) go to the store."""
    store, run_id = step.store, step.run_id
    key = state.get("final_key")
    if state.get("outline") and (not key or _missing(store, run_id, key)):
        outline = Outline(**state["outline"])
        key = outline_key(outline)
        run_store.put_outline(store, run_id, key, outline)
        for d in state.get("digests") or []:
            run_store.put_digest(store, run_id, Digest(**{**d, "outline_key": key}))
    outline = run_store.get_outline(store, run_id, key)
    plan = height_schedule(outline)
    only = state.get("rewrite")
    if only is not None:  # an update writes only the sections that changed; the others are kept verbatim
        plan = [height for h in plan if (height := [sid for sid in h if sid in set(only)])]
    step.progress("write", done=0, total=sum(len(s) for s in plan))
    return {"run_id": run_id, "final_key": key, "schedule": plan, "step": 0,
            "with_charts": step.settings.charts and only is None,
            "verify": step.settings.verify_citations,
            "evidence": evidence_index(store, run_id, key, [r["paper_id"] for r in state.get("paper_refs") or []])}


def _missing(store, run_id: str, key: str) -> bool:
    try:
        run_store.get_outline(store, run_id, key)
        return False
    except LookupError:
        return True


def evidence_index(store, run_id: str, key: str, paper_ids: list[str]) -> dict[str, list[str]]:
    """Section id -> the papers whose digest for it is non-empty: read every digest once, not once per section."""
    index: dict[str, list[str]] = {}
    for digest in run_store.get_digests(store, run_id, key, paper_ids):
        for sid, text in digest.sections.items():
            if text.strip():
                index.setdefault(sid, []).append(digest.paper_id)
    return index


MIN_EVIDENCE = 60  # tokens of one paper's digest below which it says nothing useful


def evidence_text(digests: list[Digest], section_id: str, titles: dict[str, str], room: int) -> tuple[str, set[str]]:
    """The section's digests, each cut evenly to fit `room` tokens; and the ids they allow citing."""
    items = [(d.paper_id, d.sections[section_id]) for d in digests if d.sections.get(section_id, "").strip()]
    if not items:
        return "", set()
    # At most as many papers as fit at MIN_EVIDENCE tokens each: with thousands of documents a section may have
    # hundreds of papers with evidence, and the prompt must not grow with N (papers left out here are offered
    # to the repair round as uncited ones).
    heads = [f"[@{pid}] {titles.get(pid, pid)}:" for pid, _ in items]
    spent, keep = 0, 0
    for head in heads:
        spent += count_tokens(head) + MIN_EVIDENCE
        if keep and spent > room:
            break
        keep += 1
    if keep < len(items):  # cut to what fits: the titles count too
        items, heads = items[:keep], heads[:keep]
        per = max(MIN_EVIDENCE, (room - sum(count_tokens(h) for h in heads)) // keep)
    else:
        per = max(MIN_EVIDENCE, room // len(items))
    blocks = [f"{head}\n{truncate_to_tokens(text, per)[0]}" for head, (_, text) in zip(heads, items, strict=True)]
    return "\n\n".join(blocks), {pid for pid, _ in items}


def write_section(task: SectionTask, step: Step) -> dict[str, Any]:
    settings, store, run_id, key, sid = step.settings, step.store, step.run_id, task["final_key"], task["section_id"]
    outline = run_store.get_outline(store, run_id, key)
    section = find_section(outline, sid)
    numbers = section_numbers(outline)
    refs = task.get("papers") or []  # this section's evidence only (writer state `evidence`)
    titles = {r["paper_id"]: r["title"] for r in refs}
    digests = run_store.get_digests(store, run_id, key, [r["paper_id"] for r in refs])
    children = ""
    room = input_budget(settings, WRITE) - PROMPT_OVERHEAD
    if settings.mode == "default":
        room = min(room, WRITE.max_input)  # evidence is cut evenly, not grown with N
    allowed: set[str] = set()
    if section.children:
        per_child = max(80, room // (2 * len(section.children)))
        texts = [(c, run_store.get_section(store, run_id, task["written"][c.section_id])) for c in section.children
                 if c.section_id in task.get("written", {})]
        children = "\n\n".join(f"{numbers[c.section_id]} {c.title}:\n{truncate_to_tokens(t, per_child)[0]}" for c, t in texts)
        for _, t in texts:
            allowed |= set(find_citations(t))
        room -= count_tokens(children)
    evidence, cited = evidence_text(digests, sid, titles, max(100, room))
    allowed |= cited
    # Default mode names the papers to cite, so that every source with evidence ends up in the article.
    must_cite = sorted(cited) if settings.mode == "default" else None
    calls = step.calls
    unit = f"{numbers[sid]} {section.title}"

    def build(scale: float) -> list:  # a context overflow halves the evidence budget and asks again
        shown = evidence if scale >= 1 else evidence_text(digests, sid, titles, max(60, int(room * scale)))[0]
        kids = children if scale >= 1 else truncate_to_tokens(children, max(60, int(count_tokens(children) * scale)))[0]
        return WRITE.prompt(task["topic"], numbers[sid], section.title, _uncited(section.analysis),
                            shown, kids, must_cite=must_cite, language=settings.language)

    draft = calls.ask_shrinking(WRITE, sid, build)
    if draft is None or not str(draft.value).strip():
        text = gap_marker("the writer's answers were unusable")
        calls.fail(WRITE.name, unit, "gap", "section replaced by a gap marker")
    else:
        text = _checked(calls, str(draft.value), allowed, sid)
        try:
            polished = calls.ask(POLISH, sid, POLISH.prompt(text, language=settings.language))
        except ContextOverflowError as exc:  # the draft itself is the input: keep it unpolished
            calls.fail(POLISH.name, sid, "truncated", f"polish skipped: {exc}")
            polished = None
        if polished is not None and str(polished.value).strip():
            candidate = _checked(calls, str(polished.value), allowed, sid)
            # Polish must not lose the evidence: keep the draft if it dropped citations.
            if set(find_citations(candidate)) >= set(find_citations(text)):
                text = candidate
    ref = run_store.put_section(store, run_id, key, sid, text)
    step.progress("write", done=1, unit=sid)
    return step.update(sections={sid: ref})


def _uncited(brief: str) -> str:
    # The brief's markers name papers that may not be in this section's evidence: only evidence is citable.
    return re.sub(r"\s*\[@[^\]]*\]", "", brief)


def _checked(calls: ModelCalls, text: str, allowed: set[str], sid: str) -> str:
    fixed, problems = validate_citations(merge_adjacent(_strip_headings(text)), allowed)
    for p in problems:
        calls.fail(WRITE.name, sid, "citation", p)
    return fixed.strip()


def _strip_headings(text: str) -> str:
    # The heading tree is ours: a heading line the model adds is dropped (its words stay as plain text).
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#") and stripped.lstrip("#").startswith(" "):
            line = stripped.lstrip("#").strip()
            if not line:
                continue
        lines.append(line)
    return "\n".join(lines)


def height_done(state: WriterState) -> dict[str, Any]:
    return {"step": state["step"] + 1}


def charts(state: WriterState, step: Step) -> dict[str, Any]:
    """One call proposing mermaid charts; each is appended to the section it names."""
    store, run_id, key = step.store, step.run_id, state["final_key"]
    outline = run_store.get_outline(store, run_id, key)
    reply = step.calls.ask(CHARTS, "article", CHARTS.prompt(outline_to_prompt_text(outline), language=step.settings.language),
                           schema=charts_reply_for(tuple(sid for sid in section_ids(outline) if sid in state["sections"])))
    for chart in reply.value.charts if reply else []:
        ref = state["sections"].get(chart.section_id)
        if ref is None or not chart.mermaid.strip():
            step.calls.fail(CHARTS.name, chart.section_id, "unknown_section", "chart for an unknown section dropped")
            continue
        body = run_store.get_section(store, run_id, ref)
        run_store.put_section(store, run_id, key, chart.section_id,
                              f"{body}\n\n```mermaid\n{chart.mermaid.strip()}\n```\n\n*{chart.caption.strip()}*")
    return step.update()
