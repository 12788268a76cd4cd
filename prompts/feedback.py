"""Feedback: one integrated, cited suggestion per group of papers (the convolution's input features)."""

from __future__ import annotations

from llmxmr.prompts.common import json_only, messages

SYSTEM = """You improve the outline of a survey. Below are the outline, what a group of papers contributes to
each section, and each paper's own suggestion. Integrate them into ONE concrete suggestion for changing the
outline (sections to add, remove, move, rename or re-describe), citing papers as [@paper-id]. Name every
section it changes by its id, e.g. [s3]: the outline is then edited by those ids."""


def feedback(outline_text: str, merged_digest: str, suggestions: list[str], *, language: str = "en"):
    sugg = "\n".join(f"- {s}" for s in suggestions if s.strip()) or "- (none)"
    user = (f"Outline:\n{outline_text}\n\nContent of the group's papers by section:\n{merged_digest}\n\n"
            f"Suggestions of the papers:\n{sugg}")
    return messages("feedback", SYSTEM, user, language=language, answer=json_only(
        '{"suggestion": "Add a subsection on eviction under memory pressure, which two papers measure [@paper-id]."} '
        "(an example: write one change for this outline)"))
