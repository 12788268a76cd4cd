"""group: sort papers by topic with one planner call over titles (hierarchical when the titles do not fit
one call), then re-pack into groups of `group_size`; random groups when the model's answer is unusable."""

from __future__ import annotations

from typing import Any

from llmxmr.core.grouping import batched, batches_by_budget, random_groups, repack_topics
from llmxmr.core.rng import rng_for
from llmxmr.models.tokens import count_tokens
from llmxmr.nodes.calls import Call
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import FAN_IN, input_budget
from llmxmr.prompts import group as prompts
from llmxmr.state.responses import Topics

PROMPT_OVERHEAD = 250


def make_group(env: Env):
    def group(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(state, runtime)
        refs = state["paper_refs"]
        call = Call(caller, settings)
        budget = input_budget(settings, "group") - PROMPT_OVERHEAD
        batches = batches_by_budget(list(range(len(refs))), lambda i: count_tokens(refs[i]["title"]) + 4, budget)
        if settings.mode == "default":
            batches = [part for b in batches for part in batched(b, FAN_IN["group"])]
        topics: list[list[int]] = []
        failed = False
        for b, batch in enumerate(batches):
            reply = call.ask("group", f"batch{b}", prompts.group_papers(
                state["title"], [refs[i]["title"] for i in batch], language=settings.language), Topics)
            if reply is None:
                failed = True
                topics.append(list(batch))
                continue
            # Numbers in the prompt are 1-based within the batch.
            for topic in reply.value.topics:
                topics.append([batch[n - 1] for n in topic.papers if 1 <= n <= len(batch)])
        if failed and len(batches) == 1:
            groups = random_groups(len(refs), settings.group_size, rng_for(settings.seed, "group"))
        else:
            groups = repack_topics(topics, len(refs), settings.group_size, first_number=0)
        ids = [[refs[i]["paper_id"] for i in g] for g in groups]
        progress("group", done=1, total=1, groups=len(ids))
        return call.update(groups=ids)

    return group
