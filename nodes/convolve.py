"""The convolution: feedback per group (the block's input features) and the units of every layer
(merge the unit's suggestions, modify O_b with the result, score it)."""

from __future__ import annotations

from typing import Any

from llmxmr.core.rng import rng_for
from llmxmr.core.tree import iter_sections, outline_key, outline_to_prompt_text, section_numbers
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.entropy import judge_outline
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import input_budget
from llmxmr.nodes.modify import modify_outline
from llmxmr.prompts import convolve as conv_prompts
from llmxmr.prompts import feedback as fb_prompts
from llmxmr.state.models import Suggestion
from llmxmr.state.responses import SuggestionReply

PROMPT_OVERHEAD = 400


def _detail(settings, trimmed: str) -> str:
    # Reference mode shows the whole outline everywhere, as the reference does.
    return "full" if settings.mode == "reference" else trimmed


def seeded_order(seed: int, suggestion_id: str) -> int:
    return int(rng_for(seed, "order", suggestion_id).random() * 1_000_000_000)


def merged_digest(digests, numbers: dict[str, str], titles: dict[str, str], room: int) -> str:
    """The group's digests merged per section without an LLM, cut evenly to fit `room` tokens."""
    by_section: dict[str, list[str]] = {}
    for d in digests:
        for sid, text in d.sections.items():
            by_section.setdefault(sid, []).append(text)
    if not by_section:
        return "(the group's papers matched no section)"
    per_section = max(40, room // len(by_section))
    parts = []
    for sid in sorted(by_section, key=lambda s: numbers.get(s, "~")):
        body = truncate_to_tokens("\n".join(by_section[sid]), per_section)[0]
        parts.append(f"[{sid}] {numbers.get(sid, '')} {titles.get(sid, '')}\n{body}")
    return "\n\n".join(parts)


def make_feedback(env: Env):
    def feedback(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        run_id, key, b, g = task["run_id"], task["outline_key"], task["block"], task["group"]
        outline = storage.get_outline(store, run_id, key)
        outline_text = outline_to_prompt_text(outline, _detail(settings, "titles"))
        digests = storage.get_digests(store, run_id, key, task["paper_ids"])
        suggestions = [d.suggestion for d in digests]
        room = input_budget(settings, "feedback") - PROMPT_OVERHEAD - count_tokens(outline_text) - sum(
            count_tokens(s) for s in suggestions)
        titles = {s.section_id: s.title for s, _, _ in iter_sections(outline)}
        merged = merged_digest(digests, section_numbers(outline), titles, max(100, room))
        call = Call(caller, settings)
        reply = call.ask("feedback", f"b{b}:g{g}", fb_prompts.feedback(outline_text, merged, suggestions, language=settings.language), SuggestionReply)
        results = []
        if reply is not None and reply.value.suggestion.strip():
            sid = f"b{b}f{g}"
            results.append(Suggestion(suggestion_id=sid, text=reply.value.suggestion.strip(), source=f"feedback:g{g}",
                                      order=seeded_order(settings.seed, sid)).model_dump())
        progress("feedback", done=1, block=b, unit=f"g{g}")
        return call.update(results=results)

    return feedback


def make_conv_unit(env: Env):
    def conv_unit(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        run_id, b, layer, u = task["run_id"], task["block"], task["layer"], task["unit"]
        base = storage.get_outline(store, run_id, task["base_key"])
        group = [Suggestion(**s) for s in task["suggestions"]]
        unit = f"b{b}l{layer}u{u}"
        call = Call(caller, settings)
        result = Suggestion(suggestion_id=unit, text="", source=f"layer{layer}:u{u}", order=seeded_order(settings.seed, unit))
        if len(group) == 1:
            text = group[0].text
        else:
            reply = call.ask("merge_suggestions", unit, conv_prompts.merge_suggestions(
                outline_to_prompt_text(base, _detail(settings, "titles")), [(s.text, s.score, s.rationale) for s in group], language=settings.language),
                SuggestionReply)
            text = reply.value.suggestion.strip() if reply is not None else ""
        if text:
            result.text = text
            outline = modify_outline(call, base, text, unit)
            if outline is not None:
                key = outline_key(outline)
                storage.put_outline(store, run_id, key, outline)
                score = judge_outline(call, outline, unit)
                if score is not None:
                    result.outline_key, result.score, result.rationale = key, score.J, score.rationale
        progress("convolution", done=1, block=b, layer=layer, unit=unit,
                 score=None if result.score is None else round(result.score, 2))
        return call.update(results=[result.model_dump()])

    return conv_unit
