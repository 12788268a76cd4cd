"""Outline digest: one reader call per paper with the current outline (a Send per paper), reading the
paper's map notes (default) or its full text truncated to the budget (reference)."""

from __future__ import annotations

from collections.abc import Callable

from langgraph.types import Command

from llmxmr import run_store
from llmxmr.citations import validate_citations
from llmxmr.core.tree import outline_to_prompt_text, section_ids
from llmxmr.limits import input_budget
from llmxmr.models.tokens import CHARS_PER_TOKEN_MAX, count_tokens, truncate_to_tokens
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.records import Digest, Outline
from llmxmr.state.responses import digest_reply_for
from llmxmr.state.tasks import DigestTask

DIGEST = STAGES["digest"]
PROMPT_OVERHEAD = 300


def paper_body(store, run_id: str, paper_id: str, settings, room: int) -> tuple[str, str, bool]:
    """(title, body, truncated): the notes in default mode, else the text cut to `room` tokens."""
    if settings.digest_input == "notes":
        notes = run_store.get_notes(store, run_id, paper_id)
        if notes:
            body, cut = truncate_to_tokens("\n".join(f"- {n}" for n in notes), room)
            return run_store.get_document_info(store, run_id, paper_id).title, body, cut
    # Only the head that can fit is read (a long document is stored as chunks: never loaded whole).
    doc = run_store.get_document(store, run_id, paper_id, max_chars=room * CHARS_PER_TOKEN_MAX)
    body, cut = truncate_to_tokens(doc.text, room)
    cut = cut or len(doc.text) < _length(store, run_id, paper_id)
    return doc.title, body, cut


def _length(store, run_id: str, paper_id: str) -> int:
    bounds = run_store.get_chunk_bounds(store, run_id, paper_id)
    return bounds[-1][1] if bounds else 0


def digest_request(pid: str, key: str, step: Step) -> tuple[str, Callable[[float], list], Outline, int | None]:
    """(unit, build(scale) -> messages, the outline, the room the paper's text was cut to or None): what
    `outline_digest` asks, also what a Batch API job of the digest pass sends (nodes/batch.py)."""
    settings = step.settings
    outline = run_store.get_outline(step.store, step.run_id, key)
    outline_text = outline_to_prompt_text(outline, "full" if settings.mode == "reference" else "construction")
    room = input_budget(settings, DIGEST) - PROMPT_OVERHEAD - count_tokens(outline_text)
    title, body, cut = paper_body(step.store, step.run_id, pid, settings, max(100, room))

    def build(scale: float) -> list:  # a context overflow halves the paper's text and asks again
        shown = body if scale >= 1 else truncate_to_tokens(body, max(50, int(count_tokens(body) * scale)))[0]
        return DIGEST.prompt(outline_text, pid, title, shown, language=settings.language)

    return f"{pid}@{key[:8]}", build, outline, max(100, room) if cut else None


def digest_schema(outline: Outline) -> type:
    """The digest's schema for this outline: its real section ids as an enum, so a grammar-enforcing server
    cannot name a section that does not exist. Batch jobs send the same (it is part of the request's key)."""
    return digest_reply_for(tuple(section_ids(outline)))


def outline_digest(task: DigestTask, step: Step) -> Command:
    """One paper read against the outline; then the pass's join (`then`: what the digests are for)."""
    run_id, pid, key = step.run_id, task["paper_id"], task["outline_key"]
    if run_store.get_digest(step.store, run_id, key, pid) is not None:
        return Command(update=step.update(), goto=task["then"])  # already digested against this outline
    unit, build, outline, cut_to = digest_request(pid, key, step)
    if cut_to is not None:
        step.calls.fail(DIGEST.name, unit, "truncated", f"paper text cut to {cut_to} tokens to fit the reader's budget")

    ids = tuple(section_ids(outline))
    reply = step.calls.ask_shrinking(DIGEST, unit, build, schema=digest_schema(outline))
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
