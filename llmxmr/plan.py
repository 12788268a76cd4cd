"""Plan before paying: the expected calls and tokens of a run per stage, from the corpus token counts and
the settings (docs/METHOD.md, "What it costs"). Pure functions; `llmxmr plan` prints them.

Counts are upper bounds where the method stops early: every block runs `max_layers` layers and every
self-refine round, and default mode runs `max_blocks` blocks. Tokens are rough (prompt sizes from the
corpus and typical outline sizes; completions at half of each stage's output cap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmxmr.limits import input_budget
from llmxmr.stages import STAGES
from llmxmr.state.context import Settings

OUTLINE_TOKENS_PER_SECTION = 60  # an outline's prompt text per section (title, construction, analysis)
TITLE_TOKENS_PER_SECTION = 12  # the same with titles only ("[s7] 2.3 Title")
FOCUS_SECTIONS = 2  # sections a default-mode modify sees in full (those its suggestion names)
NOTES_TOKENS = 250  # a paper's map notes
PROMPT_OVERHEAD = 350
GROUP_TITLE_TOKENS = 40  # a paper's title line in the group prompt
# The citation check, per written section: cited claims, citations per claim, the share of sections a
# repair rewrites and the share of pairs checked again after it; a passage is ~160 tokens.
CLAIMS_PER_SECTION = 10
CITES_PER_CLAIM = 1.3
REPAIRED_SHARE = 0.5
RECHECK_SHARE = 0.2
PASSAGE_TOKENS = 160
SECTION_TOKENS = 450


@dataclass
class StagePlan:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Plan:
    stages: dict[str, StagePlan] = field(default_factory=dict)
    papers: int = 0
    sections: int = 0
    blocks: int = 0

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.stages.values())

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.stages.values())

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.stages.values())

    def cost(self, price_in: float, price_out: float) -> float:
        """Money at `price_in` / `price_out` per million prompt / completion tokens."""
        return (self.prompt_tokens * price_in + self.completion_tokens * price_out) / 1e6


def default_sections(papers: int, group_size: int = 3) -> int:
    """A typical outline size when none is known yet: about one section per group, 8 to 40."""
    return max(8, min(40, 3 * math.ceil(papers / group_size)))


def layer_calls(settings: Settings, groups: int) -> int:
    """Calls of the convolution layers of one block (3 per unit: merge, modify, judge), at most max_layers."""
    total, width = 0, groups  # W after layer 0 holds every feedback of the block
    for _ in range(settings.max_layers):
        pooling = width / settings.kernel_width > settings.units
        units = math.ceil(width / settings.kernel_width) if pooling else settings.units
        total += 3 * units
        width = settings.top_k if not pooling else min(settings.top_k, units)
    return total


def merge_levels(drafts: int, per_draft: int, settings: Settings) -> list[int]:
    """Merge calls per level of the hierarchical skeleton merge (at least one call)."""
    merge = STAGES["merge_skeleton"]
    budget = input_budget(settings, merge) - PROMPT_OVERHEAD
    fan_in = max(2, budget // max(1, per_draft))
    if settings.mode != "reference":
        fan_in = max(2, min(fan_in, merge.fan_in, merge.max_input // max(1, per_draft)))
    levels = [math.ceil(drafts / fan_in)]
    while levels[-1] > 1:
        levels.append(math.ceil(levels[-1] / fan_in))
    return levels


def estimate(settings: Settings, paper_tokens: list[int], chunks: list[int] | None = None,
             sections: int | None = None) -> Plan:
    """Expected calls and tokens per stage for papers of `paper_tokens` tokens (split into `chunks`)."""
    n = len(paper_tokens)
    chunks = chunks or [1] * n
    g = math.ceil(n / settings.group_size)
    s = sections or default_sections(n, settings.group_size)
    blocks = settings.max_blocks
    outline = s * OUTLINE_TOKENS_PER_SECTION
    titles = s * TITLE_TOKENS_PER_SECTION
    reference = settings.mode == "reference"
    # What each stage sees of the outline: all of it in reference mode; default mode trims (core.tree).
    construction = outline if reference else (outline + titles) // 2
    titles_view = outline if reference else titles
    modify_view = outline if reference else titles + FOCUS_SECTIONS * (OUTLINE_TOKENS_PER_SECTION - TITLE_TOKENS_PER_SECTION)
    plan = Plan(papers=n, sections=s, blocks=blocks)

    def add(stage: str, calls: int, prompt_each: int) -> None:
        if calls <= 0:
            return
        sp = plan.stages.setdefault(stage, StagePlan())
        sp.calls += calls
        sp.prompt_tokens += calls * prompt_each
        sp.completion_tokens += calls * STAGES[stage].output_tokens // 2

    if not reference:
        map_calls = sum(chunks)
        per_chunk = (sum(paper_tokens) // max(1, map_calls)) + PROMPT_OVERHEAD
        add("map", map_calls, per_chunk)
        add("reduce_notes", sum(1 for c in chunks if c > 1), 4 * NOTES_TOKENS + PROMPT_OVERHEAD)
    # Titles are grouped in batches, as nodes/group.py makes them: by the input budget, and at most
    # `fan_in` papers per call in default mode (5,000 papers: 50 calls, not one 200k-token call).
    group_calls = max(1, math.ceil(n * GROUP_TITLE_TOKENS / max(1, input_budget(settings, "group") - PROMPT_OVERHEAD)))
    if not reference:
        group_calls = max(group_calls, math.ceil(n / STAGES["group"].fan_in))
    add("group", group_calls, math.ceil(n * GROUP_TITLE_TOKENS / group_calls) + PROMPT_OVERHEAD)
    drafts = math.ceil(g / settings.skeleton_group_size)
    add("skeleton", drafts, 3 * settings.group_size * 300 + PROMPT_OVERHEAD)
    levels = merge_levels(drafts, outline, settings)
    add("merge_skeleton", sum(levels), math.ceil(drafts / levels[0]) * outline + PROMPT_OVERHEAD)
    if settings.digest_input == "notes":
        body = NOTES_TOKENS
    else:
        room = input_budget(settings, "digest") - outline - PROMPT_OVERHEAD
        body = min(sum(paper_tokens) // max(1, n), max(100, room))
    add("digest", n * (blocks + 1), body + construction + PROMPT_OVERHEAD)
    add("feedback", g * blocks, titles_view + 3 * NOTES_TOKENS + PROMPT_OVERHEAD)
    conv_units = layer_calls(settings, g) // 3
    add("judge", blocks * (1 + g + conv_units + settings.best_of * settings.refine_rounds + (0 if reference else 2)),
        outline + PROMPT_OVERHEAD)
    add("modify", blocks * (g + conv_units + settings.best_of * settings.refine_rounds), modify_view + 200 + PROMPT_OVERHEAD)
    add("merge_suggestions", blocks * conv_units, titles_view + 3 * 200 + PROMPT_OVERHEAD)
    add("critique", blocks * settings.best_of * settings.refine_rounds, outline + PROMPT_OVERHEAD)
    evidence = min(input_budget(settings, "write_section"), max(200, 2 * n * 60 // max(1, s) * 3))
    add("write_section", s, evidence + PROMPT_OVERHEAD)
    add("polish", s, STAGES["write_section"].output_tokens // 2 + PROMPT_OVERHEAD)
    if settings.charts:
        add("charts", 1, outline + PROMPT_OVERHEAD)
    if settings.verify_citations:
        # Pairs and sections are batched: each round is at most `max_concurrency` calls (nodes/verify.py).
        pairs = round(s * CLAIMS_PER_SECTION * CITES_PER_CLAIM)
        rechecks = round(pairs * RECHECK_SHARE)
        per_pair = 60 + settings.verify_passages * PASSAGE_TOKENS
        for n in (pairs, rechecks):
            calls = min(n, settings.max_concurrency)
            if calls:
                add("verify", calls, n * per_pair // calls + PROMPT_OVERHEAD)
        repaired = math.ceil(s * REPAIRED_SHARE)
        calls = min(repaired, settings.max_concurrency)
        add("repair", calls, repaired * (SECTION_TOKENS + evidence // 2) // calls + PROMPT_OVERHEAD)
    return plan


# Stages without which no article is written (refinement and the digest passes are counted apart).
WRITING_PATH = tuple(dict.fromkeys(s.name for s in STAGES.values() if not s.optional and s.name != "digest"))
# The stages that write an outline into the article: the budget's reserve while refining. The citation check
# is optional for the method but the run always does it when `verify_citations` is on, so it is reserved too.
WRITE_STAGES = ("write_section", "polish", "charts", "verify", "repair")


def writing_cost(settings: Settings, paper_tokens: list[int], sections: int) -> tuple[int, int]:
    """(calls, tokens) of writing an outline of `sections` sections, as `estimate` plans them."""
    p = estimate(settings, paper_tokens, sections=max(1, sections))
    stages = [p.stages[k] for k in WRITE_STAGES if k in p.stages]
    return sum(s.calls for s in stages), sum(s.prompt_tokens + s.completion_tokens for s in stages)


def block_calls(settings: Settings, papers: int, groups: int) -> int:
    """Calls a refinement block makes once it starts, whatever the budget: feedback per group, O_b's score,
    layer 0 (modify and judge per feedback), the fresh re-scores at its end and the digest pass of its outline."""
    rescore = 2 if settings.mode == "default" else 0
    return groups + 1 + 2 * groups + rescore + papers


def _reading(p: Plan) -> list[StagePlan]:
    return [p.stages[k] for k in WRITING_PATH if k in p.stages and k not in WRITE_STAGES]


# The outline's size is only known once it is drafted: the minimum budget reserves writing for half again the
# typical size (default_sections), so that an ordinary outline still gets written.
MINIMUM_SECTIONS_MARGIN = 1.5


def _minimum_sections(settings: Settings, papers: int) -> int:
    return math.ceil(default_sections(papers, settings.group_size) * MINIMUM_SECTIONS_MARGIN)


def minimum_calls(settings: Settings, paper_tokens: list[int], chunks: list[int] | None = None) -> int:
    """Calls without which no article can be written, as the run follows them when the budget is tight:
    reading, one outline and its digest pass, no refinement block, and writing (with the citation check)."""
    n = len(paper_tokens)
    s = _minimum_sections(settings, n)
    p = estimate(settings, paper_tokens, chunks, sections=s)
    return sum(sp.calls for sp in _reading(p)) + n + writing_cost(settings, paper_tokens, s)[0]


def minimum_tokens(settings: Settings, paper_tokens: list[int], chunks: list[int] | None = None) -> int:
    n = len(paper_tokens)
    s = _minimum_sections(settings, n)
    p = estimate(settings, paper_tokens, chunks, sections=s)
    digest = p.stages.get("digest")
    one_pass = (digest.prompt_tokens + digest.completion_tokens) // (p.blocks + 1) if digest else 0
    reading = sum(sp.prompt_tokens + sp.completion_tokens for sp in _reading(p))
    return reading + one_pass + writing_cost(settings, paper_tokens, s)[1]
