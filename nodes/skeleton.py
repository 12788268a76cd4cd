"""skeleton init: one planner call per batch of `skeleton_group_size` groups drafts a local outline from
titles and abstracts; they are merged into O_0 level by level: plan_merge (the join) plans a level's
batches, merge_batch tasks merge them in parallel, until one outline remains; merge_skeleton stores it."""

from __future__ import annotations

from typing import Any

from llmxmr.core.grouping import merge_level_batches
from llmxmr.core.tree import outline_from_draft, outline_key, outline_to_prompt_text, section_ids
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import FAN_IN, MAX_INPUT, input_budget
from llmxmr.prompts import skeleton as prompts
from llmxmr.state.context import Settings
from llmxmr.state.graph_state import RESET
from llmxmr.state.models import Outline, Section
from llmxmr.state.responses import OutlineDraft

PROMPT_OVERHEAD = 500


def make_skeleton_batch(env: Env):
    def skeleton_batch(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        pids = task["paper_ids"]
        per_paper = max(40, (input_budget(settings, "skeleton") - PROMPT_OVERHEAD) // max(1, len(pids)))
        papers = []
        for pid in pids:
            doc = storage.get_document(store, task["run_id"], pid)
            papers.append((pid, doc.title, truncate_to_tokens(doc.abstract or doc.text, per_paper)[0]))
        call = Call(caller, settings)
        reply = call.ask("skeleton", f"batch{task['batch']}", prompts.draft_outline(
            task["topic"], papers, language=settings.language), OutlineDraft)
        results = []
        if reply is not None:
            outline = outline_from_draft(reply.value, title=task["topic"])
            if outline.sections:
                key = outline_key(outline)
                storage.put_outline(store, task["run_id"], key, outline)
                results.append({"kind": "local_outline", "batch": task["batch"], "outline_key": key})
            else:
                call.fail("skeleton", f"batch{task['batch']}", "output_wrong_shape", "the draft outline had no sections")
        progress("skeleton", done=1, unit=f"batch{task['batch']}")
        return call.update(results=results)

    return skeleton_batch


def fallback_outline(title: str, groups: list[list[str]], titles: dict[str, str]) -> Outline:
    """When no draft survived: one section per group, so the pipeline can still refine and write."""
    sections = [
        Section(section_id=f"s{i + 1}", title=f"Theme {i + 1}: {titles[g[0]]}"[:150],
                construction="Extract the problem, method and results of each paper.",
                analysis="Compare the papers' approaches and evidence.")
        for i, g in enumerate(groups) if g
    ][:10]
    return Outline(title=title, sections=sections, next_id=len(sections) + 1)


def merge_limits(settings: Settings) -> tuple[int, int | None]:
    """Prompt tokens and drafts one merge call may take: the stage's input budget; default mode also caps
    both so that a merge call's input does not grow with N."""
    budget = input_budget(settings, "merge_skeleton") - PROMPT_OVERHEAD
    if settings.mode == "default":
        return min(budget, MAX_INPUT["merge_skeleton"]), FAN_IN["merge_skeleton"]
    return budget, None


def make_merge_batch(env: Env):
    """One merge call of one level: its drafts (outline keys) into one outline. A failed call passes its first
    draft on, so the level still shrinks and the merge ends."""

    def merge_batch(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        run_id, keys = task["run_id"], task["outline_keys"]
        unit = f"level{task['level']}:batch{task['batch']}"  # the durable record and failures are keyed by it
        texts = [outline_to_prompt_text(storage.get_outline(store, run_id, k)) for k in keys]
        call = Call(caller, settings)
        reply = call.ask("merge_skeleton", unit, prompts.merge_outlines(
            task["topic"], texts, language=settings.language), OutlineDraft)
        key = keys[0]
        if reply is not None and reply.value.sections:
            outline = outline_from_draft(reply.value, title=task["topic"])
            key = outline_key(outline)
            storage.put_outline(store, run_id, key, outline)
        progress("merge_skeleton", done=1, unit=unit)
        return call.update(results=[{"kind": "merged_outline", "level": task["level"], "batch": task["batch"],
                                     "outline_key": key}])

    return merge_batch


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


def make_plan_merge(env: Env):
    """The join of each merge level: plans the next level's batches (merge_batch tasks), or hands the one
    remaining outline to merge_skeleton."""

    def plan_merge(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        level, keys = next_merge_level(state.get("results") or [])
        if level is None:
            return {"merge_plan": []}  # results stay: merge_skeleton reads the final outline from them
        store, settings, _ = env.open(state, runtime)
        texts = {k: outline_to_prompt_text(storage.get_outline(store, state["run_id"], k)) for k in set(keys)}
        budget, fan_in = merge_limits(settings)
        plan = merge_level_batches(keys, lambda k: count_tokens(texts[k]), budget, fan_in)
        progress("merge_skeleton", level=level, batches=len(plan))
        return {"merge_level": level, "merge_plan": plan, "results": RESET}

    return plan_merge


def make_merge_skeleton(env: Env):
    """O_0: the last merge's outline (the fallback outline when no local draft survived), stored."""

    def merge_skeleton(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(state, runtime)
        run_id = state["run_id"]
        _, keys = next_merge_level(state.get("results") or [])
        call = Call(caller, settings)
        outline = storage.get_outline(store, run_id, keys[0]) if keys else None
        if outline is None:
            titles = {r["paper_id"]: r["title"] for r in state["paper_refs"]}
            outline = fallback_outline(state["title"], state["groups"], titles)
            call.fail("skeleton", "outline", "fallback", "no usable outline draft: started from one section per group")
        key = outline_key(outline)
        storage.put_outline(store, run_id, key, outline)
        progress("merge_skeleton", sections=len(outline.sections))
        return call.update(outline_key=key, base_key=key, outline_sections=len(section_ids(outline)), results=RESET,
                           phase="skeleton")

    return merge_skeleton
