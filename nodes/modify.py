"""modify: apply one suggestion to an outline. Default mode asks for edits by section id and applies them
with the pure `apply_edits`; reference mode asks for the whole outline and keeps ids by title."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmxmr import run_store
from llmxmr.core.edits import apply_edits, edits_from_drafts
from llmxmr.core.tree import (
    describe_sections,
    focus_sections,
    outline_from_draft_keeping_ids,
    outline_key,
    outline_to_prompt_text,
    section_ids,
)
from llmxmr.nodes.model_calls import ModelCalls
from llmxmr.nodes.step import Step
from llmxmr.prompts.convolve import EDIT_EXAMPLE_TITLE
from llmxmr.prompts.skeleton import SHAPE_TITLES
from llmxmr.stages import STAGES
from llmxmr.state.records import Outline
from llmxmr.state.responses import edits_reply_for

EDITS, REWRITE = STAGES["modify"], STAGES["modify_rewrite"]


def modified_outline_key(step: Step, base: Outline, suggestion: str, unit: str, **kwargs: Any) -> str | None:
    """`modify_outline`, stored under its content key; None when the answer was unusable (recorded)."""
    papers = run_store.get_paper_titles(step.store, step.run_id)
    outline = modify_outline(step.calls, base, suggestion, unit, not_headings=papers, **kwargs)
    if outline is None:
        return None
    key = outline_key(outline)
    run_store.put_outline(step.store, step.run_id, key, outline)
    return key


def modify_outline(
    calls: ModelCalls, base: Outline, suggestion: str, unit: str, *, candidate: int = 0,
    temperature: float | None = None, not_headings: Sequence[str] = (),
) -> Outline | None:
    """The modified outline, or None when the model's answer was unusable (recorded). `not_headings`: titles
    (the papers') no section may take, besides the survey's and the prompt example's."""
    settings = calls.settings
    if settings.mode == "reference":
        text = outline_to_prompt_text(base)  # it rewrites the whole outline: it must see all of it
        reply = calls.ask(REWRITE, unit, REWRITE.prompt(text, suggestion, language=settings.language),
                          candidate=candidate, temperature=temperature)
        if reply is None or not reply.value.sections:
            return None
        outline = calls.usable_headings(REWRITE.name, unit, outline_from_draft_keeping_ids(reply.value, base),
                                        [*SHAPE_TITLES, *not_headings])
        return outline if outline.sections else None
    # Edits touch the sections the suggestion names; the rest of the outline only needs its ids and titles
    # (to place, move or remove). At S = 38 this is ~1.5 k prompt tokens instead of ~6.5 k per modify call.
    # The titles come first (every modify of a layer shares them: a prompt-cache prefix), the named
    # sections' descriptions after. A suggestion that names no section could touch any: then the model
    # sees every description.
    focus = focus_sections(base, suggestion)
    if focus:
        text, named = outline_to_prompt_text(base, "titles"), describe_sections(base, focus)
    else:
        text, named = outline_to_prompt_text(base), ""
    reply = calls.ask(EDITS, unit, EDITS.prompt(text, suggestion, named=named, language=settings.language),
                      candidate=candidate, temperature=temperature,
                      schema=edits_reply_for(tuple(section_ids(base))))  # only ids that exist
    if reply is None:
        return None
    outline, rejected = apply_edits(base, edits_from_drafts(reply.value.edits), not_headings=[EDIT_EXAMPLE_TITLE, *not_headings])
    for r in rejected:
        calls.fail(EDITS.name, unit, "edit_rejected", f"{r.edit.op} {r.edit.section_id or ''}: {r.reason}".strip())
    return outline
