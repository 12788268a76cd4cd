"""skeleton init: one planner call per batch of `skeleton_group_size` groups drafts a local outline from
titles and abstracts; merge_skeleton merges them into O_0 (hierarchically when they do not fit one call)."""

from __future__ import annotations

from typing import Any

from llmxmr.core.grouping import batched, batches_by_budget
from llmxmr.core.tree import outline_from_draft, outline_key, outline_to_prompt_text, section_ids
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import FAN_IN, MAX_INPUT, input_budget
from llmxmr.prompts import skeleton as prompts
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


def make_merge_skeleton(env: Env):
    def merge_skeleton(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(state, runtime)
        run_id = state["run_id"]
        keys = [r["outline_key"] for r in sorted(state.get("results") or [], key=lambda r: r["batch"])]
        texts = [outline_to_prompt_text(storage.get_outline(store, run_id, k)) for k in keys]
        call = Call(caller, settings)
        budget = input_budget(settings, "merge_skeleton") - PROMPT_OVERHEAD
        fan_in = None
        if settings.mode == "default":
            budget = min(budget, MAX_INPUT["merge_skeleton"])
            fan_in = FAN_IN["merge_skeleton"]
        outline = None
        level = 0
        # Always at least one merge call (the reference makes one); more levels only when drafts overflow.
        while texts:
            batches = batches_by_budget(texts, count_tokens, budget)
            if fan_in:
                batches = [part for b in batches for part in batched(b, fan_in)]
            if len(texts) > 1 and len(batches) >= len(texts):
                batches = batched(texts, 2)  # every draft alone overflows: pairs still halve the count
            merged = []
            for b, batch in enumerate(batches):
                reply = call.ask("merge_skeleton", f"level{level}:batch{b}", prompts.merge_outlines(
                    state["title"], batch, language=settings.language), OutlineDraft)
                if reply is not None and reply.value.sections:
                    merged.append(outline_from_draft(reply.value, title=state["title"]))
            if len(batches) == 1 or not merged:
                outline = merged[0] if merged else None
                break
            texts = [outline_to_prompt_text(o) for o in merged]
            level += 1
        if outline is None and keys:
            outline = storage.get_outline(store, run_id, keys[0])  # the merge failed: keep a local draft
        if outline is None:
            titles = {r["paper_id"]: r["title"] for r in state["paper_refs"]}
            outline = fallback_outline(state["title"], state["groups"], titles)
            call.fail("skeleton", "outline", "fallback", "no usable outline draft: started from one section per group")
        key = outline_key(outline)
        storage.put_outline(store, run_id, key, outline)
        progress("merge_skeleton", done=1, total=1, sections=len(outline.sections))
        return call.update(outline_key=key, base_key=key, outline_sections=len(section_ids(outline)), results=RESET,
                           phase="skeleton")

    return merge_skeleton
