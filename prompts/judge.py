"""Entropy scoring: the judge rates an outline's information entropy (structure and descriptions)."""

from __future__ import annotations

from llmxmr.prompts.common import json_only, messages

RUBRIC = """Rate the outline's information entropy: how much well-organised information it will carry.
Structure: one theme per section; no redundancy between chapters; no chapter with exactly 1 or more than 10
subsections; coverage of the topic and a logical flow.
Descriptions: every construction says concretely what to extract and cites papers; every analysis says
what/why/how, compares with evidence, proposes a taxonomy, root causes and future directions."""

DIGIT = "Give your reasoning first, then the score as a single digit from 0 (worst) to 9 (best)."
NUMBER = "Give your reasoning first, then a score from 0 to 10."

# Default mode: one system message for both presentations, so every judge call of a run shares it.
REVISION = """The outline you rate follows "Outline to rate:". It may come after the outline this refinement
block started from: it then lists all its sections in its own order, and a section shown with its title
only has the descriptions of the section with the same id above. Rate the outline to rate as a whole, as if
it were written out in full; the outline above is there only to be read from."""

BASE_HEAD = "Outline this refinement block started from:"
RATE_HEAD = "Outline to rate:"
RATE_REVISION_HEAD = "Outline to rate (a section shown by its title only reads as in the outline above):"


def judge(outline_text: str, *, digit: bool, language: str = "en", base_text: str | None = None):
    """`outline_text` is the outline in full or, with `base_text` (default mode), its revision of the block's
    start outline (core/revision.py). Reference mode (`digit=False`) reads the outline in full, as before."""
    why = ("Clear pipeline order, but chapters 2 and 4 overlap on caching and the analysis descriptions "
           "name no trade-offs.")  # a filled example rationale, not a <placeholder> to copy
    if not digit:
        return messages("judge", f"You judge survey outlines.\n{RUBRIC}\n{NUMBER}", f"Outline:\n{outline_text}",
                        answer=json_only(f'{{"rationale": "{why}", "score": 7.5}}'), language=language)
    if base_text is None:
        user = f"{RATE_HEAD}\n{outline_text}"
    else:  # the block's start outline first: the same bytes in every judge call of the block
        user = f"{BASE_HEAD}\n{base_text}\n\n{RATE_REVISION_HEAD}\n{outline_text}"
    return messages("judge", f"You judge survey outlines.\n{RUBRIC}\n{REVISION}\n{DIGIT}", user,
                    answer=json_only(f'{{"rationale": "{why}", "score": 7}}'), language=language)
