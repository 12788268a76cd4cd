"""Entropy scoring (METHOD §3): `entropy_score` is the node that scores one outline, fanned out per
candidate (a block's O_b, every convolution unit's and self-refine candidate's outline, the fresh re-scores
at a block's end). Its record shows the judge's digit distribution, the judge's uncertainty, the
structural entropy where the outline has digests, and the combined score E."""

from __future__ import annotations

from langgraph.types import Command, Send

from llmxmr import run_store
from llmxmr.core.entropy import (
    combine,
    digit_distribution,
    digit_score,
    parsed_digit_score,
)
from llmxmr.core.revision import revision_text
from llmxmr.core.tree import outline_to_prompt_text
from llmxmr.limits import input_budget
from llmxmr.models.specs import ModelSpec
from llmxmr.models.tokens import count_tokens
from llmxmr.nodes.model_calls import ModelCalls
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.context import Settings
from llmxmr.state.records import Outline, Score
from llmxmr.state.tasks import ScoreTask

JUDGE_DIGIT, JUDGE_NUMBER = STAGES["judge"], STAGES["judge_number"]
PROMPT_OVERHEAD = 400  # the judge's instructions and format around the outlines


def judge_prompt(settings: Settings, outline: Outline, base: Outline | None) -> list:
    """Default mode: the block's start outline `base` in full, then `outline` as its revision (the judge
    calls of a block then share a prefix a provider's prompt cache serves); the outline in full when there is
    no base, with `judge_revisions` off, when most of its sections are revised, or when the two would not fit
    the judge's budget."""
    language = settings.language
    revised = None if base is None or not settings.judge_revisions else revision_text(base, outline)
    if base is not None and revised is not None:
        base_text = outline_to_prompt_text(base)
        if _fits(input_budget(settings, JUDGE_DIGIT) - PROMPT_OVERHEAD, base_text, revised):
            return JUDGE_DIGIT.prompt(revised, language=language, base_text=base_text)
    return JUDGE_DIGIT.prompt(outline_to_prompt_text(outline), language=language)


def _fits(budget: int, *texts: str) -> bool:
    """Whether `texts` take at most `budget` tokens. A token is at least one byte, so texts within the budget
    in bytes (a large window's usual case) are not tokenised: this runs for every judge call."""
    return sum(len(t.encode()) for t in texts) <= budget or sum(count_tokens(t) for t in texts) <= budget


def judge_outline(calls: ModelCalls, outline: Outline, unit: str, *, candidate: int = 0,
                  base: Outline | None = None) -> Score | None:
    """J of one outline, or None when the judge's answer stayed unusable (recorded as a failure). `base`:
    the block's start outline (default mode), which the prompt shows first."""
    settings = calls.settings
    if settings.mode == "reference":  # the reference's 0-10 number, parsed
        reply = calls.ask(JUDGE_NUMBER, unit, JUDGE_NUMBER.prompt(outline_to_prompt_text(outline), language=settings.language),
                          candidate=candidate)
        return None if reply is None else Score(J=float(reply.value.score), method="parsed", rationale=reply.value.rationale)
    wants_logprobs = ModelSpec.parse(settings.judge_model).supports_logprobs
    reply = calls.ask(JUDGE_DIGIT, unit, judge_prompt(settings, outline, base), candidate=candidate, logprobs=wants_logprobs)
    if reply is None:
        return None
    p = digit_distribution(reply.logprobs, reply.text) if reply.logprobs else None
    if p is not None:
        J, uncertainty = digit_score(p)
        return Score(J=J, method="logprobs", uncertainty=uncertainty, distribution=p, rationale=reply.value.rationale)
    reason = "provider returned no logprobs" if not reply.logprobs else "score digit position not found in logprobs"
    return Score(J=parsed_digit_score(reply.value.score), method="parsed", rationale=reply.value.rationale, reason=reason)


def entropy_score(task: ScoreTask, step: Step) -> Command:
    """Score one outline and hand the record to the join that asked for it (`then`)."""
    unit, key = task["unit"], task["outline_key"]
    if key is None:
        score = Score(J=0.0, method="failed", reason="the unit produced no outline to score")
    else:
        outline = run_store.get_outline(step.store, step.run_id, key)
        base_key = task.get("base_key")
        base = run_store.get_outline(step.store, step.run_id, base_key) if base_key else None
        score = judge_outline(step.calls, outline, unit, candidate=task["candidate"], base=base) or Score(
            J=0.0, method="failed", reason="the judge's answers were unusable")
    if score.method != "failed":
        score.H = task["H"]
        score.E = combine(score.J, task["H"], step.settings.entropy_lambda)
    record = {"unit": unit, "outline_key": key, **score.model_dump()}
    step.progress("entropy_score", done=1, block=task["block"], unit=unit,
                  score=None if score.method == "failed" else round(score.J, 2))
    return Command(update=step.update(scores=[record]), goto=task["then"])


def score_next(task: ScoreTask) -> Send:
    """The fan-out of one outline to `entropy_score` (from a convolution unit or a self-refine candidate)."""
    return Send("entropy_score", task)
