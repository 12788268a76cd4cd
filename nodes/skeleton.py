"""skeleton init: one planner call per batch of `skeleton_group_size` groups drafts a local outline from
titles and abstracts; they are merged into O_0 level by level: plan_merge (the join) plans a level's
batches, merge_batch tasks merge them in parallel, until one outline remains; merge_skeleton stores it."""

from __future__ import annotations

from typing import Any

from langgraph.types import Overwrite

from llmxmr import run_store
from llmxmr.core.grouping import merge_level_batches
from llmxmr.core.headings import group_heading
from llmxmr.core.tree import (
    outline_from_draft,
    outline_key,
    outline_to_prompt_text,
    section_ids,
)
from llmxmr.limits import input_budget
from llmxmr.models.tokens import CHARS_PER_TOKEN_MAX, count_tokens, truncate_to_tokens
from llmxmr.nodes.finalize import MIN_SECTIONS
from llmxmr.nodes.step import Step
from llmxmr.prompts.skeleton import example_titles
from llmxmr.stages import STAGES
from llmxmr.state.context import Settings
from llmxmr.state.graph_state import SurveyState
from llmxmr.state.records import Outline, Section
from llmxmr.state.tasks import MergeTask, SkeletonTask

SKELETON, MERGE = STAGES["skeleton"], STAGES["merge_skeleton"]
PROMPT_OVERHEAD = 500


def skeleton_batch(task: SkeletonTask, step: Step) -> dict[str, Any]:
    settings, pids, unit = step.settings, task["paper_ids"], f"batch{task['batch']}"
    per_paper = max(40, (input_budget(settings, SKELETON) - PROMPT_OVERHEAD) // max(1, len(pids)))
    papers = []
    for pid in pids:
        doc = run_store.get_document(step.store, step.run_id, pid, max_chars=per_paper * CHARS_PER_TOKEN_MAX)
        papers.append((pid, doc.title, truncate_to_tokens(doc.abstract or doc.text, per_paper)[0]))
    reply = step.calls.ask(SKELETON, unit, SKELETON.prompt(task["topic"], papers, language=settings.language))
    results = []
    if reply is not None:
        # A chapter titled as one of these papers, or as the prompt's example, is no chapter (core.headings).
        outline = step.calls.usable_headings(SKELETON.name, unit, outline_from_draft(reply.value, title=task["topic"]),
                                             [*example_titles(task["topic"]), *(t for _, t, _ in papers)], renumber=True)
        if outline.sections:
            key = outline_key(outline)
            run_store.put_outline(step.store, step.run_id, key, outline)
            results.append({"kind": "local_outline", "batch": task["batch"], "outline_key": key})
        else:
            step.calls.fail(SKELETON.name, unit, "output_wrong_shape", "the draft outline had no sections")
    step.progress("skeleton", done=1, unit=unit)
    return step.update(results=results)


def fallback_outline(title: str, groups: list[list[str]], titles: dict[str, str]) -> Outline:
    """When no draft survived: one section per group, so the pipeline can still refine and write."""
    sections = [
        Section(section_id=f"s{i + 1}", title=group_heading([titles[p] for p in g], list(titles.values()))[:150],
                construction="Extract the problem, method and results of each paper.",
                analysis="Compare the papers' approaches and evidence.")
        for i, g in enumerate(groups) if g
    ][:10]
    return Outline(title=title, sections=sections, next_id=len(sections) + 1)


def merge_limits(settings: Settings) -> tuple[int, int | None]:
    """Prompt tokens and drafts one merge call may take: the stage's input budget; default mode also caps
    both so that a merge call's input does not grow with N."""
    budget = input_budget(settings, MERGE) - PROMPT_OVERHEAD
    if settings.mode == "default":
        return min(budget, MERGE.max_input), MERGE.fan_in
    return budget, None


def merge_batch(task: MergeTask, step: Step) -> dict[str, Any]:
    """One merge call of one level: its drafts (outline keys) into one outline. A failed call passes its first
    draft on, so the level still shrinks and the merge ends."""
    keys = task["outline_keys"]
    unit = f"level{task['level']}:batch{task['batch']}"  # the durable record and failures are keyed by it
    texts = [outline_to_prompt_text(run_store.get_outline(step.store, step.run_id, k)) for k in keys]
    reply = step.calls.ask(MERGE, unit, MERGE.prompt(task["topic"], texts, language=step.settings.language))
    key = keys[0]
    if reply is not None and reply.value.sections:
        not_headings = [*example_titles(task["topic"]), *run_store.get_paper_titles(step.store, step.run_id)]
        outline = step.calls.usable_headings(MERGE.name, unit, outline_from_draft(reply.value, title=task["topic"]),
                                             not_headings, renumber=True)
        if outline.sections:
            key = outline_key(outline)
            run_store.put_outline(step.store, step.run_id, key, outline)
        else:
            step.calls.fail(MERGE.name, unit, "output_wrong_shape", "no usable heading in the merged outline: "
                            "its first draft goes on")
    step.progress("merge_skeleton", done=1, unit=unit)
    return step.update(results=[{"kind": "merged_outline", "level": task["level"], "batch": task["batch"],
                                 "outline_key": key}])


def next_merge_level(results: list[dict[str, Any]]) -> tuple[int | None, list[str]]:
    """The drafts in `results` (local outlines, or the merged outlines of the last level) in a fixed order, and
    the merge level to run on them next; None when they are final: one merged outline, or no draft at all."""
    drafts = sorted(results, key=lambda r: (r.get("level", -1), r["batch"]))
    keys = [r["outline_key"] for r in drafts]
    if not drafts:
        return None, []
    if drafts[0]["kind"] != "merged_outline":
        return 0, keys  # at least one merge call (the reference makes one), even for a single local draft
    return (None if len(keys) == 1 else drafts[-1]["level"] + 1), keys


def plan_merge(state: SurveyState, step: Step) -> dict[str, Any]:
    """The join of each merge level: plans the next level's batches (merge_batch tasks), or hands the one
    remaining outline to merge_skeleton."""
    level, keys = next_merge_level(state.get("results") or [])
    if level is None:
        return {"merge_plan": []}  # results stay: merge_skeleton reads the final outline from them
    texts = {k: outline_to_prompt_text(run_store.get_outline(step.store, step.run_id, k)) for k in set(keys)}
    budget, fan_in = merge_limits(step.settings)
    plan = merge_level_batches(keys, lambda k: count_tokens(texts[k]), budget, fan_in)
    step.progress("merge_skeleton", level=level, batches=len(plan))
    return {"merge_level": level, "merge_plan": plan, "results": Overwrite([])}


def merge_skeleton(state: SurveyState, step: Step) -> dict[str, Any]:
    """O_0: the last merge's outline (the fallback outline when no local draft survived), stored."""
    _, keys = next_merge_level(state.get("results") or [])
    outline = run_store.get_outline(step.store, step.run_id, keys[0]) if keys else None
    # A draft thinner than the groups allow (a small model's one-chapter outline, or one left with a section
    # or two once copied headings were dropped) would make a thin article: the groups give a better start.
    enough = min(MIN_SECTIONS, sum(1 for g in state["groups"] if g))
    if outline is None or len(outline.sections) < enough:
        why = ("no usable outline draft" if outline is None else
               f"the drafted outline has {len(outline.sections)} top-level section(s), fewer than {enough}")
        titles = {r["paper_id"]: r["title"] for r in state["paper_refs"]}
        outline = fallback_outline(state["title"], state["groups"], titles)
        step.calls.fail(SKELETON.name, "outline", "fallback", f"{why}: started from one section per group")
    key = outline_key(outline)
    run_store.put_outline(step.store, step.run_id, key, outline)
    step.progress("merge_skeleton", sections=len(outline.sections))
    return step.update(outline_key=key, base_key=key, outline_sections=len(section_ids(outline)),
                       results=Overwrite([]))
