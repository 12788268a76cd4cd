"""Self-refine: a candidate = critique the best outline so far with its judge rationale and modify it; the
outline goes on to `entropy_score`, and `refine_done` keeps the best."""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

from llmxmr import run_store
from llmxmr.core.tree import outline_to_prompt_text
from llmxmr.nodes.modify import modified_outline_key
from llmxmr.nodes.scoring import score_next
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.tasks import RefineTask

CRITIQUE = STAGES["critique"]


def refine_candidate(task: RefineTask, step: Step) -> Command:
    settings, b, r, c, best = step.settings, task["block"], task["round"], task["candidate"], task["best"]
    current = run_store.get_outline(step.store, step.run_id, best["outline_key"])
    unit = f"b{b}r{r}c{c}"
    # A distinct candidate index per block and round: a round that starts from the same outline as the
    # last one must draw new candidates, not replay the recorded ones.
    index = (b * max(1, settings.refine_rounds) + (r - 1)) * settings.best_of + c
    # Identical prompts at temperature 0 give identical candidates: best-of needs a temperature above 0.
    temperature = settings.candidate_temperature if settings.best_of > 1 else None
    result: dict[str, Any] = {"suggestion_id": unit, "text": ""}
    reply = step.calls.ask(CRITIQUE, unit, CRITIQUE.prompt(outline_to_prompt_text(current), best.get("J"),
                           best.get("rationale", ""), language=settings.language), candidate=index, temperature=temperature)
    key = None
    if reply is not None and reply.value.suggestion.strip():
        result["text"] = reply.value.suggestion.strip()
        key = modified_outline_key(step, current, result["text"], unit, candidate=index, temperature=temperature)
    step.progress("refine", done=1, block=b, round=r, unit=unit)
    # Scored with candidate 0: an outline identical to an earlier one deserves the recorded score.
    return Command(update=step.update(results=[result]), goto=score_next(
        {"run_id": step.run_id, "block": b, "unit": unit, "outline_key": key, "candidate": 0, "H": None,
         "then": "refine_done", "base_key": task.get("base_key")}))
