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


def judge(outline_text: str, *, digit: bool, language: str = "en"):
    system = f"You judge survey outlines.\n{RUBRIC}\n{DIGIT if digit else NUMBER}"
    why = ("Clear pipeline order, but chapters 2 and 4 overlap on caching and the analysis descriptions "
           "name no trade-offs.")  # a filled example rationale, not a <placeholder> to copy
    shape = f'{{"rationale": "{why}", "score": 7}}' if digit else f'{{"rationale": "{why}", "score": 7.5}}'
    return messages("judge", system, f"Outline:\n{outline_text}", answer=json_only(shape), language=language)
