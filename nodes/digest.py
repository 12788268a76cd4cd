"""Outline digest: one reader call per paper with the current outline (a Send per paper), reading the
paper's map notes (default) or its full text truncated to the budget (reference)."""

from __future__ import annotations

from langgraph.types import Command

from llmxmr import run_store
from llmxmr.citations import validate_citations
from llmxmr.core.tree import outline_to_prompt_text, section_ids
from llmxmr.limits import input_budget
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.records import Digest
from llmxmr.state.responses import digest_reply_for
from llmxmr.state.tasks import DigestTask

DIGEST = STAGES["digest"]
PROMPT_OVERHEAD = 300


def paper_body(store, run_id: str, paper_id: str, settings, room: int) -> tuple[str, str, bool]:
    """(title, body, truncated): the notes in default mode, else the text cut to `room` tokens."""
    doc = run_store.get_document(store, run_id, paper_id)
    if settings.digest_input == "notes":
        notes = run_store.get_notes(store, run_id, paper_id)
        if notes:
            body, cut = truncate_to_tokens("\n".join(f"- {n}" for n in notes), room)
            return doc.title, body, cut
    body, cut = truncate_to_tokens(doc.text, room)
    return doc.title, body, cut


def outline_digest(task: DigestTask, step: Step) -> Command:
    """One paper read against the outline; then the pass's join (`then`: what the digests are for)."""
    settings, run_id, pid, key = step.settings, step.run_id, task["paper_id"], task["outline_key"]
    unit = f"{pid}@{key[:8]}"
    if run_store.get_digest(step.store, run_id, key, pid) is not None:
        return Command(update=step.update(), goto=task["then"])  # already digested against this outline
    outline = run_store.get_outline(step.store, run_id, key)
    outline_text = outline_to_prompt_text(outline, "full" if settings.mode == "reference" else "construction")
    room = input_budget(settings, DIGEST) - PROMPT_OVERHEAD - count_tokens(outline_text)
    title, body, cut = paper_body(step.store, run_id, pid, settings, max(100, room))
    if cut:
        step.calls.fail(DIGEST.name, unit, "truncated", f"paper text cut to {max(100, room)} tokens to fit the reader's budget")

    def build(scale: float) -> list:  # a context overflow halves the paper's text and asks again
        shown = body if scale >= 1 else truncate_to_tokens(body, max(50, int(count_tokens(body) * scale)))[0]
        return DIGEST.prompt(outline_text, pid, title, shown, language=settings.language)

    ids = tuple(section_ids(outline))
    reply = step.calls.ask_shrinking(DIGEST, unit, build, schema=digest_reply_for(ids))
    digest = Digest(paper_id=pid, outline_key=key)
    if reply is not None:
        known = set(ids)
        for item in reply.value.sections:
            if item.section_id not in known:
                step.calls.fail(DIGEST.name, unit, "unknown_section", f"dropped content for unknown section {item.section_id}")
                continue
            text, problems = validate_citations(item.content, {pid})
            for p in problems:
                step.calls.fail(DIGEST.name, unit, "citation", p)
            if text.strip():
                digest.sections[item.section_id] = (digest.sections.get(item.section_id, "") + "\n" + text).strip()
        digest.suggestion = reply.value.suggestion.strip()
    run_store.put_digest(step.store, run_id, digest)
    step.progress("digest", done=1, unit=pid)
    return Command(update=step.update(), goto=task["then"])
