"""modify: apply one suggestion to an outline. Default mode asks for edits by section id and applies them
with the pure `apply_edits`; reference mode asks for the whole outline and keeps ids by title."""

from __future__ import annotations

from llmxmr.core.edits import apply_edits, edits_from_drafts
from llmxmr.core.tree import focus_sections, outline_from_draft_keeping_ids, outline_to_prompt_text
from llmxmr.nodes.calls import Call
from llmxmr.prompts import convolve as prompts
from llmxmr.state.models import Outline
from llmxmr.state.responses import EditsReply, OutlineDraft


def modify_outline(
    call: Call, base: Outline, suggestion: str, unit: str, *, candidate: int = 0, temperature: float | None = None
) -> Outline | None:
    """The modified outline, or None when the model's answer was unusable (recorded)."""
    settings = call.settings
    if settings.mode == "reference":
        text = outline_to_prompt_text(base)  # it rewrites the whole outline: it must see all of it
        reply = call.ask("modify", unit, prompts.modify_rewrite(text, suggestion, language=settings.language),
                         OutlineDraft, candidate=candidate, temperature=temperature, limit_stage="modify_rewrite")
        if reply is None or not reply.value.sections:
            return None
        return outline_from_draft_keeping_ids(reply.value, base)
    # Edits touch the sections the suggestion names; the rest of the outline only needs its ids and titles
    # (to place, move or remove). At S = 38 this is ~1.5 k prompt tokens instead of ~6.5 k per modify call.
    # A suggestion that names no section could touch any: then the model sees every description.
    focus = focus_sections(base, suggestion)
    text = outline_to_prompt_text(base, focus=focus) if focus else outline_to_prompt_text(base)
    reply = call.ask("modify", unit, prompts.modify_edits(text, suggestion, language=settings.language),
                     EditsReply, candidate=candidate, temperature=temperature)
    if reply is None:
        return None
    outline, rejected = apply_edits(base, edits_from_drafts(reply.value.edits))
    for r in rejected:
        call.fail("modify", unit, "edit_rejected", f"{r.edit.op} {r.edit.section_id or ''}: {r.reason}".strip())
    return outline
