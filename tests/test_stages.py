"""The stage table: every model-calling stage named once, and what reads it (limits, the planner, the
scripted model) agrees with it."""

from __future__ import annotations

import json

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from bench.mock import BenchResponder
from llmxmr.limits import output_tokens
from llmxmr.models.jsonparse import parse_json_reply
from llmxmr.plan import WRITING_PATH, estimate
from llmxmr.prompts.verify import SectionToRepair
from llmxmr.stages import ROLES, STAGE_NAMES, STAGES, Stage, stages_named
from llmxmr.state.context import resolve_settings
from llmxmr.testing.responder import Responder, stage_of

OUTLINE = "[s1] 1 Methods\n  [s2] 1.1 Caches"
# One sample call per row: a new row must add one here (the test below checks it), and then every scripted
# model is checked to answer it in its schema.
SAMPLE_ARGS = {
    "map": ("Topic", "p-1", "Paper", "Body text about caches."),
    "reduce_notes": ("Topic", "p-1", "Paper", [["a note"], ["another note"]]),
    "group": ("Topic", ["Paper one", "Paper two", "Paper three"]),
    "skeleton": ("Topic", [("p-1", "Paper", "Abstract."), ("p-2", "Other", "Abstract.")]),
    "merge_skeleton": ("Topic", [OUTLINE, OUTLINE]),
    "digest": (OUTLINE, "p-1", "Paper", "Body."),
    "feedback": (OUTLINE, "[s1] merged digest [@p-1]", ["suggestion one"]),
    "merge_suggestions": (OUTLINE, [("one", 6.0, "ok"), ("two", None, "")]),
    "modify": (OUTLINE, "Rename [s2]."),
    "modify_rewrite": (OUTLINE, "Rename [s2]."),
    "judge": (OUTLINE,),
    "judge_number": (OUTLINE,),
    "critique": (OUTLINE, 6.0, "Too flat."),
    "write_section": ("Topic", "1", "Methods", "Compare.", "[@p-1] Paper:\nIt reports a gain.", ""),
    "polish": ("Draft text citing [@p-1].",),
    "charts": (OUTLINE,),
    "verify": ([("Caches cut latency by 40%.", "p-1", "Paper", ["Passage about caches.", "Another passage."]),
                ("Locks hurt.", "p-2", "Other", ["Passage about locks."])],),
    "repair": ([SectionToRepair("s2", "Caches", "Caches help [@p-1]. Locks hurt [@p-2].",
                                [(2, "Locks hurt [@p-2].", "passage disagrees")], ["p-3"], "[@p-1] Paper:\nCaches help.")],),
    "eval_judge": ("criticalness", "A survey", "Caches", "Caches help [1], but locks hurt [2]."),
    "eval_claims": ("A survey", "Caches", "Caches help [1], but locks hurt [2]."),
}


def test_every_row_is_complete_and_named_in_its_prompt():
    assert set(SAMPLE_ARGS) == set(STAGES), "a new stage needs a sample call here"
    for key, row in STAGES.items():
        assert row.key == key and row.role in ROLES and row.output_tokens > 0
        messages = row.prompt(*SAMPLE_ARGS[key])
        assert stage_of(messages) == row.name, f"{key}: the prompt's Task line names another stage"
    assert STAGE_NAMES == tuple(dict.fromkeys(s.name for s in STAGES.values()))
    assert [s.key for s in stages_named("judge")] == ["judge", "judge_number"]


def test_every_scripted_model_answers_every_stage_in_its_schema():
    for responder in (Responder(), BenchResponder()):
        for key, row in STAGES.items():
            answer = responder.respond(row.prompt(*SAMPLE_ARGS[key]))
            if row.schema is None:
                assert answer.strip(), key
            else:
                parse_json_reply(answer, row.schema)  # raises OutputFault when it does not fit


def test_a_new_stage_gets_a_valid_scripted_answer_without_a_handler():
    class Verdict(BaseModel):
        verdict: str = Field(max_length=20)
        confidence: float
        passages: list[str] = Field(default_factory=list)

    row = Stage("fact_check", "fact_check", "judge", 300, Verdict,
                lambda: [SystemMessage("Task: fact_check\nCheck."), HumanMessage("x")])
    STAGES["fact_check"] = row
    try:
        answer = Responder().respond(row.prompt())
        assert parse_json_reply(answer, Verdict) == Verdict(verdict="scripted", confidence=0)
        assert json.loads(answer) == {"verdict": "scripted", "confidence": 0}
    finally:
        del STAGES["fact_check"]


def test_limits_and_the_planner_read_the_table():
    settings = resolve_settings({"model": "openai:m"})
    for key, row in STAGES.items():
        assert output_tokens(settings, key) == row.output_tokens  # the provider's cap is higher
    assert output_tokens(resolve_settings({"model": "openai:m", "max_output_tokens": 700}), "modify_rewrite") == 700
    plan = estimate(settings, [3000] * 12)
    assert set(plan.stages) <= set(STAGE_NAMES)
    assert plan.stages["digest"].completion_tokens == plan.stages["digest"].calls * STAGES["digest"].output_tokens // 2
    assert set(WRITING_PATH) == {s.name for s in STAGES.values() if not s.optional} - {"digest"}
