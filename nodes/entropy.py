"""Entropy scoring: the judge's score J of an outline (expected digit from logprobs where the provider
gives them), and score_base, the block's one score of its starting outline O_b."""

from __future__ import annotations

from typing import Any

from llmxmr.core.entropy import expected_digit_score, parsed_digit_score
from llmxmr.core.tree import outline_to_prompt_text
from llmxmr.models.specs import ModelSpec
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.env import Env, progress
from llmxmr.prompts import judge as prompts
from llmxmr.state.models import Outline, Score
from llmxmr.state.responses import JudgeDigit, JudgeNumber


def judge_outline(call: Call, outline: Outline, unit: str, *, candidate: int = 0) -> Score | None:
    """J of one outline, or None when the judge's answer stayed unusable (recorded as a failure)."""
    settings = call.settings
    reference = settings.mode == "reference"
    text = outline_to_prompt_text(outline)
    wants_logprobs = not reference and ModelSpec.parse(settings.judge_model).structured_method == "response_format"
    reply = call.ask(
        "judge", unit, prompts.judge(text, digit=not reference, language=settings.language),
        JudgeNumber if reference else JudgeDigit, candidate=candidate, logprobs=wants_logprobs,
    )
    if reply is None:
        return None
    value = reply.value
    if reference:
        return Score(J=float(value.score), method="parsed", rationale=value.rationale)
    expected = expected_digit_score(reply.logprobs, reply.text) if reply.logprobs else None
    if expected is not None:
        J, uncertainty = expected
        return Score(J=J, method="logprobs", uncertainty=uncertainty, rationale=value.rationale)
    reason = "provider returned no logprobs" if not reply.logprobs else "score digit position not found in logprobs"
    return Score(J=parsed_digit_score(value.score), method="parsed", rationale=value.rationale, reason=reason)


def make_score_base(env: Env):
    def score_base(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        outline = storage.get_outline(store, task["run_id"], task["outline_key"])
        call = Call(caller, settings)
        score = judge_outline(call, outline, f"b{task['block']}:base")
        if score is None:
            score = Score(J=0.0, method="failed", reason="the judge's answers for O_b were unusable")
        progress("score_base", done=1, block=task["block"], score=round(score.J, 2))
        return call.update(base_score=score.model_dump())

    return score_base
