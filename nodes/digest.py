"""Outline digest: one reader call per paper with the current outline (a Send per paper), reading the
paper's map notes (default) or its full text truncated to the budget (reference)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from langgraph.types import Command

from llmxmr import run_store
from llmxmr.citations import validate_citations
from llmxmr.core.revision import kept_digest_sections, sections_to_read_again
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


class DigestRequest(NamedTuple):
    """What `outline_digest` asks for one paper, also what a Batch API job of the pass sends (nodes/batch.py)."""

    unit: str
    build: Callable[[float], list]  # build(scale) -> messages
    outline: Outline
    cut_to: int | None  # the room the paper's text was cut to, or None
    again: list[str] | None  # a later reading: the sections asked for again, in outline order ([]: none)
    kept: dict[str, str]  # a later reading: the paper's earlier content for the other sections
    kept_suggestion: str  # a later reading: the paper's earlier suggestion (kept when nothing is asked again)


def digest_request(pid: str, key: str, step: Step, prior_key: str | None = None) -> DigestRequest:
    """The reading of paper `pid` against outline `key`; with `prior_key` (an outline the paper was digested
    against) and `incremental_digest` on, only for the sections that are new or changed since."""
    settings = step.settings
    outline = run_store.get_outline(step.store, step.run_id, key)
    again, kept, suggestion = _again(pid, key, outline, prior_key, step)
    detail = "full" if settings.mode == "reference" else "construction"
    outline_text = outline_to_prompt_text(outline, detail, focus=None if again is None else set(again))
    room = input_budget(settings, DIGEST) - PROMPT_OVERHEAD - count_tokens(outline_text)
    title, body, cut = paper_body(step.store, step.run_id, pid, settings, max(100, room))

    def build(scale: float) -> list:  # a context overflow halves the paper's text and asks again
        shown = body if scale >= 1 else truncate_to_tokens(body, max(50, int(count_tokens(body) * scale)))[0]
        return DIGEST.prompt(outline_text, pid, title, shown, language=settings.language, again=again)

    return DigestRequest(f"{pid}@{key[:8]}", build, outline, max(100, room) if cut else None, again, kept, suggestion)


def _again(pid: str, key: str, outline: Outline, prior_key: str | None,
           step: Step) -> tuple[list[str] | None, dict[str, str], str]:
    """(sections to read again in outline order, content kept, earlier suggestion), or (None, {}, "") for a
    reading of the whole outline: no earlier outline, the setting off, no usable earlier digest (a failed
    one is read in full) or most sections changed."""
    whole: tuple[None, dict[str, str], str] = (None, {}, "")
    if not prior_key or prior_key == key or not step.settings.incremental_digest:
        return whole
    before = run_store.get_digest(step.store, step.run_id, prior_key, pid)
    if before is None or not (before.sections or before.suggestion):
        return whole
    again = sections_to_read_again(run_store.get_outline(step.store, step.run_id, prior_key), outline)
    if again is None:
        return whole
    ids = section_ids(outline)
    return [sid for sid in ids if sid in again], kept_digest_sections(before.sections, set(ids), again), before.suggestion


def digest_schema(outline: Outline, again: list[str] | None = None) -> type:
    """The digest's schema for this outline: its real section ids (or those asked for again) as an enum, so a
    grammar-enforcing server cannot name a section that does not exist. Batch jobs send the same (it is part
    of the request's key)."""
    return digest_reply_for(tuple(again) if again is not None else tuple(section_ids(outline)))


def outline_digest(task: DigestTask, step: Step) -> Command:
    """One paper read against the outline; then the pass's join (`then`: what the digests are for)."""
    run_id, pid, key = step.run_id, task["paper_id"], task["outline_key"]
    if run_store.get_digest(step.store, run_id, key, pid) is not None:
        return Command(update=step.update(), goto=task["then"])  # already digested against this outline
    request = digest_request(pid, key, step, task.get("prior_key"))
    digest = Digest(paper_id=pid, outline_key=key, sections=dict(request.kept))
    if request.again == []:  # nothing the paper was read for has changed: the same answer, not asked again
        digest.suggestion = request.kept_suggestion
        run_store.put_digest(step.store, run_id, digest)
        step.progress("digest", done=1, unit=pid, kept=True)
        return Command(update=step.update(), goto=task["then"])
    unit = request.unit
    if request.cut_to is not None:
        step.calls.fail(DIGEST.name, unit, "truncated", f"paper text cut to {request.cut_to} tokens to fit the reader's budget")

    asked = request.again if request.again is not None else section_ids(request.outline)
    reply = step.calls.ask_shrinking(DIGEST, unit, request.build, schema=digest_schema(request.outline, request.again))
    if reply is not None:
        known = set(asked)
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
    if request.again is not None:  # kept and new content, in the outline's order
        digest.sections = {sid: digest.sections[sid] for sid in section_ids(request.outline) if sid in digest.sections}
    run_store.put_digest(step.store, run_id, digest)
    step.progress("digest", done=1, unit=pid)
    return Command(update=step.update(), goto=task["then"])
