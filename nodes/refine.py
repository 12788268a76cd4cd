"""Self-refine: a candidate = critique the best outline so far with its judge rationale, modify, score."""

from __future__ import annotations

from typing import Any

from llmxmr.core.tree import outline_key, outline_to_prompt_text
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.entropy import judge_outline
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.modify import modify_outline
from llmxmr.prompts import refine as prompts
from llmxmr.state.responses import SuggestionReply


def make_refine_candidate(env: Env):
    def refine_candidate(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        run_id, b, r, c = task["run_id"], task["block"], task["round"], task["candidate"]
        best = task["best"]
        current = storage.get_outline(store, run_id, best["outline_key"])
        unit = f"b{b}r{r}c{c}"
        # A distinct candidate index per block and round: a round that starts from the same outline as the
        # last one must draw new candidates, not replay the recorded ones.
        index = (b * max(1, settings.refine_rounds) + (r - 1)) * settings.best_of + c
        # Identical prompts at temperature 0 give identical candidates: best-of needs a temperature above 0.
        temperature = settings.candidate_temperature if settings.best_of > 1 else None
        call = Call(caller, settings)
        result: dict[str, Any] = {"suggestion_id": unit, "outline_key": None, "J": None, "rationale": "", "text": ""}
        reply = call.ask("critique", unit, prompts.critique(outline_to_prompt_text(current), best.get("J"),
                         best.get("rationale", ""), language=settings.language), SuggestionReply,
                         candidate=index, temperature=temperature)
        if reply is not None and reply.value.suggestion.strip():
            result["text"] = reply.value.suggestion.strip()
            outline = modify_outline(call, current, result["text"], unit, candidate=index, temperature=temperature)
            if outline is not None:
                key = outline_key(outline)
                storage.put_outline(store, run_id, key, outline)
                score = judge_outline(call, outline, unit)  # an identical outline deserves the recorded score
                if score is not None:
                    result.update(outline_key=key, J=score.J, rationale=score.rationale)
        progress("refine", done=1, block=b, round=r, unit=unit, score=None if result["J"] is None else round(result["J"], 2))
        return call.update(results=[result])

    return refine_candidate
