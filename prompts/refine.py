"""Self-refine: critique the best outline so far, using the judge's rationale, into one suggestion."""

from __future__ import annotations

from llmxmr.prompts.common import json_only, messages

SYSTEM = """You critique a survey outline. The judge gave it the score and rationale below. Find its weakest
points (structure, redundancy, coverage, vague construction or analysis descriptions) and propose ONE
concrete suggestion that fixes them. Name every section it changes by its id, e.g. [s3]."""


def critique(outline_text: str, score: float | None, rationale: str, *, language: str = "en"):
    s = "n/a" if score is None else f"{score:.1f}/10"
    user = f"Outline:\n{outline_text}\n\nJudge score: {s}\nJudge rationale: {rationale or '(none)'}"
    return messages("critique", SYSTEM, user, answer=json_only(
        '{"suggestion": "Move the benchmark comparison into its own chapter after the methods chapters."} '
        "(an example: write one concrete change for this outline)"), language=language)
