"""The convolution: feedback per group (the block's input features) and the units of every layer
(merge the unit's suggestions, modify O_b with the result); each unit's outline goes on to `entropy_score`."""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

from llmxmr import run_store
from llmxmr.core.rng import rng_for
from llmxmr.core.tree import iter_sections, outline_to_prompt_text, section_numbers
from llmxmr.limits import input_budget
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes.modify import modified_outline_key
from llmxmr.nodes.scoring import score_next
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.records import Suggestion
from llmxmr.state.tasks import ConvUnitTask, FeedbackTask

FEEDBACK, MERGE_SUGGESTIONS = STAGES["feedback"], STAGES["merge_suggestions"]
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


def feedback(task: FeedbackTask, step: Step) -> dict[str, Any]:
    settings, run_id, key, b, g = step.settings, step.run_id, task["outline_key"], task["block"], task["group"]
    outline = run_store.get_outline(step.store, run_id, key)
    outline_text = outline_to_prompt_text(outline, _detail(settings, "titles"))
    digests = run_store.get_digests(step.store, run_id, key, task["paper_ids"])
    suggestions = [d.suggestion for d in digests]
    room = input_budget(settings, FEEDBACK) - PROMPT_OVERHEAD - count_tokens(outline_text) - sum(
        count_tokens(s) for s in suggestions)
    titles = {s.section_id: s.title for s, _, _ in iter_sections(outline)}
    merged = merged_digest(digests, section_numbers(outline), titles, max(100, room))
    reply = step.calls.ask(FEEDBACK, f"b{b}:g{g}", FEEDBACK.prompt(outline_text, merged, suggestions, language=settings.language))
    results = []
    if reply is not None and reply.value.suggestion.strip():
        sid = f"b{b}f{g}"
        results.append(Suggestion(suggestion_id=sid, text=reply.value.suggestion.strip(), source=f"feedback:g{g}",
                                  order=seeded_order(settings.seed, sid)).model_dump())
    step.progress("feedback", done=1, block=b, unit=f"g{g}")
    return step.update(results=results)


def conv_unit(task: ConvUnitTask, step: Step) -> Command:
    """One unit of a layer: merge its suggestions (one alone is taken as it is), apply the result to O_b; the
    outline goes on to be scored (`entropy_score`), and `layer_done` joins suggestion and score."""
    settings, b, layer, u = step.settings, task["block"], task["layer"], task["unit"]
    base = run_store.get_outline(step.store, step.run_id, task["base_key"])
    group = [Suggestion(**s) for s in task["suggestions"]]
    unit = f"b{b}l{layer}u{u}"
    result = Suggestion(suggestion_id=unit, text="", source=f"layer{layer}:u{u}", order=seeded_order(settings.seed, unit))
    if len(group) == 1:
        text = group[0].text
    else:
        reply = step.calls.ask(MERGE_SUGGESTIONS, unit, MERGE_SUGGESTIONS.prompt(
            outline_to_prompt_text(base, _detail(settings, "titles")), [(s.text, s.score, s.rationale) for s in group],
            language=settings.language))
        text = reply.value.suggestion.strip() if reply is not None else ""
    key = None
    if text:
        result.text = text
        key = modified_outline_key(step, base, text, unit)
    step.progress("convolution", done=1, block=b, layer=layer, unit=unit)
    return Command(update=step.update(results=[result.model_dump()]), goto=score_next(
        {"run_id": step.run_id, "block": b, "unit": unit, "outline_key": key, "candidate": 0, "H": None,
         "then": "layer_done", "base_key": task["base_key"]}))
