"""The section writer: sections by height (all leaves at once, a parent after its last child), each
written from its evidence and polished; a section that keeps failing becomes a visible gap marker."""

from __future__ import annotations

import re
from typing import Any

from llmxmr.citations import find_citations, merge_adjacent, validate_citations
from llmxmr.core.tree import find_section, height_schedule, outline_key, outline_to_prompt_text, section_numbers
from llmxmr.models.errors import ContextOverflowError
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import MAX_INPUT, input_budget
from llmxmr.prompts import write as prompts
from llmxmr.state.context import Context, resolve_settings
from llmxmr.state.models import Digest, Outline
from llmxmr.state.responses import ChartsReply

PROMPT_OVERHEAD = 400


def gap_marker(reason: str) -> str:
    return f"> **[Section not written: {reason}. See `failures` in survey.json.]**"


def make_schedule(env: Env):
    def schedule(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        """Plan the heights; an inline outline and digests (a standalone run, e.g. from Studio) go to the store."""
        run_id = state.get("run_id") or "writer"
        store = env.store(runtime, run_id)
        if storage.get_settings(store, run_id) is None:
            ctx = getattr(runtime, "context", None)
            storage.put_settings(store, run_id, resolve_settings(ctx if isinstance(ctx, (Context, dict)) else None).model_dump())
        key = state.get("final_key")
        if state.get("outline") and (not key or _missing(store, run_id, key)):
            outline = Outline(**state["outline"])
            key = outline_key(outline)
            storage.put_outline(store, run_id, key, outline)
            for d in state.get("digests") or []:
                storage.put_digest(store, run_id, Digest(**{**d, "outline_key": key}))
        outline = storage.get_outline(store, run_id, key)
        plan = height_schedule(outline)
        progress("write", done=0, total=sum(len(s) for s in plan))
        settings = storage.get_settings(store, run_id)
        return {"run_id": run_id, "final_key": key, "schedule": plan, "step": 0, "with_charts": bool(settings["charts"]),
                "evidence": evidence_index(store, run_id, key, [r["paper_id"] for r in state.get("paper_refs") or []])}

    return schedule


def _missing(store, run_id: str, key: str) -> bool:
    try:
        storage.get_outline(store, run_id, key)
        return False
    except LookupError:
        return True


def evidence_index(store, run_id: str, key: str, paper_ids: list[str]) -> dict[str, list[str]]:
    """Section id -> the papers whose digest for it is non-empty: read every digest once, not once per section."""
    index: dict[str, list[str]] = {}
    for digest in storage.get_digests(store, run_id, key, paper_ids):
        for sid, text in digest.sections.items():
            if text.strip():
                index.setdefault(sid, []).append(digest.paper_id)
    return index


def evidence_text(digests: list[Digest], section_id: str, titles: dict[str, str], room: int) -> tuple[str, set[str]]:
    """The section's digests, each cut evenly to fit `room` tokens; and the ids they allow citing."""
    items = [(d.paper_id, d.sections[section_id]) for d in digests if d.sections.get(section_id, "").strip()]
    if not items:
        return "", set()
    per = max(60, room // len(items))
    blocks = [f"[@{pid}] {titles.get(pid, pid)}:\n{truncate_to_tokens(text, per)[0]}" for pid, text in items]
    return "\n\n".join(blocks), {pid for pid, _ in items}


def make_write_section(env: Env):
    def write_section(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        run_id, key, sid = task["run_id"], task["final_key"], task["section_id"]
        outline = storage.get_outline(store, run_id, key)
        section = find_section(outline, sid)
        numbers = section_numbers(outline)
        refs = task.get("papers") or []  # this section's evidence only (writer state `evidence`)
        titles = {r["paper_id"]: r["title"] for r in refs}
        digests = storage.get_digests(store, run_id, key, [r["paper_id"] for r in refs])
        children = ""
        room = input_budget(settings, "write_section") - PROMPT_OVERHEAD
        if settings.mode == "default":
            room = min(room, MAX_INPUT["write_section"])  # evidence is cut evenly, not grown with N
        allowed: set[str] = set()
        if section.children:
            per_child = max(80, room // (2 * len(section.children)))
            texts = [(c, storage.get_section(store, run_id, task["written"][c.section_id])) for c in section.children
                     if c.section_id in task.get("written", {})]
            children = "\n\n".join(f"{numbers[c.section_id]} {c.title}:\n{truncate_to_tokens(t, per_child)[0]}" for c, t in texts)
            for _, t in texts:
                allowed |= set(find_citations(t))
            room -= count_tokens(children)
        evidence, cited = evidence_text(digests, sid, titles, max(100, room))
        allowed |= cited
        call = Call(caller, settings)
        unit = f"{numbers[sid]} {section.title}"

        def build(scale: float) -> list:  # a context overflow halves the evidence budget and asks again
            shown = evidence if scale >= 1 else evidence_text(digests, sid, titles, max(60, int(room * scale)))[0]
            kids = children if scale >= 1 else truncate_to_tokens(children, max(60, int(count_tokens(children) * scale)))[0]
            return prompts.write_section(task["topic"], numbers[sid], section.title, _uncited(section.analysis),
                                         shown, kids, language=settings.language)

        draft = call.ask_shrinking("write_section", sid, build, None)
        if draft is None or not str(draft.value).strip():
            text = gap_marker("the writer's answers were unusable")
            call.fail("write_section", unit, "gap", "section replaced by a gap marker")
        else:
            text = _checked(call, str(draft.value), allowed, sid)
            try:
                polished = call.ask("polish", sid, prompts.polish(text, language=settings.language), None)
            except ContextOverflowError as exc:  # the draft itself is the input: keep it unpolished
                call.fail("polish", sid, "truncated", f"polish skipped: {exc}")
                polished = None
            if polished is not None and str(polished.value).strip():
                candidate = _checked(call, str(polished.value), allowed, sid)
                # Polish must not lose the evidence: keep the draft if it dropped citations.
                if set(find_citations(candidate)) >= set(find_citations(text)):
                    text = candidate
        ref = storage.put_section(store, run_id, key, sid, text)
        progress("write", done=1, unit=sid)
        return call.update(sections={sid: ref})

    return write_section


def _uncited(brief: str) -> str:
    # The brief's markers name papers that may not be in this section's evidence: only evidence is citable.
    return re.sub(r"\s*\[@[^\]]*\]", "", brief)


def _checked(call: Call, text: str, allowed: set[str], sid: str) -> str:
    fixed, problems = validate_citations(merge_adjacent(_strip_headings(text)), allowed)
    for p in problems:
        call.fail("write_section", sid, "citation", p)
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


def height_done(state: dict[str, Any]) -> dict[str, Any]:
    return {"step": state["step"] + 1}


def make_charts(env: Env):
    def charts(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        """One call proposing mermaid charts; each is appended to the section it names."""
        store, settings, caller = env.open(state, runtime)
        run_id, key = state["run_id"], state["final_key"]
        outline = storage.get_outline(store, run_id, key)
        call = Call(caller, settings)
        reply = call.ask("charts", "article", prompts.charts(outline_to_prompt_text(outline), language=settings.language), ChartsReply)
        for chart in reply.value.charts if reply else []:
            ref = state["sections"].get(chart.section_id)
            if ref is None or not chart.mermaid.strip():
                call.fail("charts", chart.section_id, "unknown_section", "chart for an unknown section dropped")
                continue
            body = storage.get_section(store, run_id, ref)
            storage.put_section(store, run_id, key, chart.section_id,
                                f"{body}\n\n```mermaid\n{chart.mermaid.strip()}\n```\n\n*{chart.caption.strip()}*")
        return call.update()

    return charts
