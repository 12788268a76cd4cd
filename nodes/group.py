"""group: sort papers by topic with one planner call over titles (hierarchical when the titles do not fit
one call), then re-pack into groups of `group_size`; random groups when the model's answer is unusable.
It also plans the skeleton drafts: `skeleton_group_size` groups per draft."""

from __future__ import annotations

from typing import Any

from llmxmr.core.grouping import (
    batched,
    random_groups,
    repack_topics,
    title_batches,
)
from llmxmr.core.rng import rng_for
from llmxmr.limits import input_budget
from llmxmr.models.tokens import count_tokens
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.graph_state import SurveyState
from llmxmr.state.responses import topics_for

GROUP = STAGES["group"]


def group(state: SurveyState, step: Step) -> dict[str, Any]:
    settings = step.settings
    refs = state["paper_refs"]
    batches = title_batches([count_tokens(r["title"]) for r in refs], input_budget(settings, GROUP),
                            GROUP.fan_in if settings.mode == "default" else None)
    topics: list[list[int]] = []
    failed = False
    for b, batch in enumerate(batches):
        reply = step.calls.ask(GROUP, f"batch{b}", GROUP.prompt(
            state["title"], [refs[i]["title"] for i in batch], language=settings.language),
            schema=topics_for(len(batch)))  # only the numbers shown
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
    drafts = batched(list(range(len(ids))), settings.skeleton_group_size)
    step.progress("group", done=1, total=1, groups=len(ids))
    return step.update(groups=ids, skeleton_batches=[list(d) for d in drafts])
