"""Every model-calling stage, named once: its role, its output cap, the schema its answer must match and
the prompt that asks for it.

A node asks for a stage (`step.calls.ask(STAGES["digest"], ...)`); the caller takes the role's model, the
cap and the schema from the row. The planner (`llmxmr.plan`), the scripted test model, the benchmark mock
and the tests read this table instead of repeating stage names. `name` is what usage, failures and the
prompt's `Task:` line say; two rows may share a name when a mode asks the same stage for a different answer
(the judge's digit or number, modify's edits or whole outline).

Every prompt is laid out for the provider's prefix cache: its system message is the same in every call of
the stage in a run, and its user message starts with what many calls share (the outline) and ends with what
varies per call (the paper, the suggestion, the candidate); docs/DESIGN.md and
tests/test_prompt_cache_layout.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from llmxmr.prompts import (
    convolve,
    digest,
    evaluate,
    feedback,
    group,
    judge,
    refine,
    skeleton,
    verify,
    write,
)
from llmxmr.prompts import map as map_prompts
from llmxmr.state.responses import (
    AtomicClaims,
    ChartsReply,
    DigestReply,
    EditsReply,
    JudgeDigit,
    JudgeNumber,
    Notes,
    OutlineDraft,
    RepairReply,
    SuggestionReply,
    Topics,
    VerdictsReply,
)

Role = Literal["reader", "planner", "judge", "writer", "verifier"]
ROLES: tuple[Role, ...] = ("reader", "planner", "judge", "writer", "verifier")


@dataclass(frozen=True)
class Stage:
    key: str  # the row's key in STAGES
    name: str  # the stage as usage, failures and the prompt's `Task:` line name it
    role: Role
    output_tokens: int  # completion budget, sized for the bounded schema (a small model pretty-prints JSON)
    schema: type[BaseModel] | None  # None: prose
    prompt: Callable[..., list[BaseMessage]]
    optional: bool = False  # a run can write an article without it (refinement, the citation check)
    fan_in: int | None = None  # default mode: items one call takes at most (titles, drafts)
    max_input: int | None = None  # default mode: prompt tokens one call takes at most, whatever N is


def _rows(*rows: Stage) -> dict[str, Stage]:
    return {r.key: r for r in rows}


STAGES: dict[str, Stage] = _rows(
    Stage("map", "map", "reader", 700, Notes, map_prompts.map_chunk),
    Stage("reduce_notes", "reduce_notes", "reader", 700, Notes, map_prompts.reduce_notes),
    Stage("group", "group", "planner", 800, Topics, group.group_papers, fan_in=100),
    Stage("skeleton", "skeleton", "planner", 4000, OutlineDraft, skeleton.draft_outline),
    # 8 drafts / 48k tokens per merge call: the 7 drafts of a 60-paper run (~6.5k tokens each) merge in one
    # call; 250 papers (28 drafts) in 2 levels of parallel calls.
    Stage("merge_skeleton", "merge_skeleton", "planner", 8000, OutlineDraft, skeleton.merge_outlines,
          fan_in=8, max_input=48_000),
    Stage("digest", "digest", "reader", 900, DigestReply, digest.digest_paper),
    Stage("feedback", "feedback", "planner", 500, SuggestionReply, feedback.feedback, optional=True),
    Stage("merge_suggestions", "merge_suggestions", "planner", 500, SuggestionReply, convolve.merge_suggestions,
          optional=True),
    Stage("modify", "modify", "planner", 900, EditsReply, convolve.modify_edits, optional=True),
    Stage("modify_rewrite", "modify", "planner", 8000, OutlineDraft, convolve.modify_rewrite, optional=True),
    Stage("judge", "judge", "judge", 500, JudgeDigit, partial(judge.judge, digit=True), optional=True),
    Stage("judge_number", "judge", "judge", 500, JudgeNumber, partial(judge.judge, digit=False), optional=True),
    Stage("critique", "critique", "planner", 500, SuggestionReply, refine.critique, optional=True),
    Stage("write_section", "write_section", "writer", 900, None, write.write_section, max_input=8_000),
    Stage("polish", "polish", "writer", 1000, None, write.polish),
    Stage("charts", "charts", "writer", 700, ChartsReply, write.charts),
    # The citation check (default mode): verdicts on batches of (claim, cited paper) pairs (~45 tokens each),
    # repairs of batches of failing sections; each fan-out fits one round of `max_concurrency` calls.
    Stage("verify", "verify", "verifier", 2000, VerdictsReply, verify.verify_claims, optional=True),
    Stage("repair", "repair", "writer", 2000, RepairReply, verify.repair_sections, optional=True, max_input=16_000),
    # `llmxmr eval`'s judge: one criterion of an article or a section (faithfulness asks `verify`).
    Stage("eval_judge", "eval_judge", "judge", 500, JudgeDigit, evaluate.judge_criterion, optional=True),
    Stage("eval_claims", "eval_claims", "judge", 1200, AtomicClaims, evaluate.atomic_claims, optional=True),
)

# Stage names in pipeline order (usage tables, the benchmark report).
STAGE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.name for s in STAGES.values()))


def stages_named(name: str) -> list[Stage]:
    return [s for s in STAGES.values() if s.name == name]
