"""Outline digest: one reader call per paper with the current outline (a Send per paper), reading the
paper's map notes (default) or its full text truncated to the budget (reference)."""

from __future__ import annotations

from typing import Any

from llmxmr.citations import validate_citations
from llmxmr.core.tree import outline_to_prompt_text, section_ids
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import input_budget
from llmxmr.prompts import digest as prompts
from llmxmr.state.models import Digest
from llmxmr.state.responses import DigestReply

PROMPT_OVERHEAD = 300


def paper_body(store, run_id: str, paper_id: str, settings, room: int) -> tuple[str, str, bool]:
    """(title, body, truncated): the notes in default mode, else the text cut to `room` tokens."""
    doc = storage.get_document(store, run_id, paper_id)
    if settings.digest_input == "notes":
        notes = storage.get_notes(store, run_id, paper_id)
        if notes:
            body, cut = truncate_to_tokens("\n".join(f"- {n}" for n in notes), room)
            return doc.title, body, cut
    body, cut = truncate_to_tokens(doc.text, room)
    return doc.title, body, cut


def make_digest_paper(env: Env):
    def digest_paper(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        run_id, pid, key = task["run_id"], task["paper_id"], task["outline_key"]
        call = Call(caller, settings)
        unit = f"{pid}@{key[:8]}"
        if storage.get_digest(store, run_id, key, pid) is not None:
            return call.update()  # already digested against this outline (a resumed pass)
        outline = storage.get_outline(store, run_id, key)
        outline_text = outline_to_prompt_text(outline, "full" if settings.mode == "reference" else "construction")
        room = input_budget(settings, "digest") - PROMPT_OVERHEAD - count_tokens(outline_text)
        title, body, cut = paper_body(store, run_id, pid, settings, max(100, room))
        if cut:
            call.fail("digest", unit, "truncated", f"paper text cut to {max(100, room)} tokens to fit the reader's budget")

        def build(scale: float) -> list:  # a context overflow halves the paper's text and asks again
            shown = body if scale >= 1 else truncate_to_tokens(body, max(50, int(count_tokens(body) * scale)))[0]
            return prompts.digest_paper(outline_text, pid, title, shown, language=settings.language)

        reply = call.ask_shrinking("digest", unit, build, DigestReply)
        digest = Digest(paper_id=pid, outline_key=key)
        if reply is not None:
            known = set(section_ids(outline))
            for item in reply.value.sections:
                if item.section_id not in known:
                    call.fail("digest", unit, "unknown_section", f"dropped content for unknown section {item.section_id}")
                    continue
                text, problems = validate_citations(item.content, {pid})
                for p in problems:
                    call.fail("digest", unit, "citation", p)
                if text.strip():
                    digest.sections[item.section_id] = (digest.sections.get(item.section_id, "") + "\n" + text).strip()
            digest.suggestion = reply.value.suggestion.strip()
        storage.put_digest(store, run_id, digest)
        progress("digest", done=1, unit=pid)
        return call.update()

    return digest_paper
