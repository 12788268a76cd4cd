"""Plan before paying: the expected calls and tokens of a run per stage, from the corpus token counts and
the settings (docs/METHOD.md, "What it costs"). Pure functions; `llmxmr plan` prints them.

Counts are upper bounds where the method stops early: every block runs `max_layers` layers and every
self-refine round, and default mode runs `max_blocks` blocks. Tokens are rough (prompt sizes from the
corpus and typical outline sizes; completions at half of each stage's output cap). Cached tokens are what a
provider with OpenAI's prompt-caching rule (`llmxmr.core.prompt_cache`) would serve from its cache: the
shared prefixes of each stage's calls (instructions, then the pass's or layer's outline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmxmr.core import prompt_cache
from llmxmr.core.grouping import GROUP_PROMPT_OVERHEAD, TITLE_LINE_TOKENS, title_batches
from llmxmr.limits import input_budget
from llmxmr.stages import STAGES
from llmxmr.state.context import Settings

# Sized like the reference implementation's measured answers (a whole-outline rewrite ~4,600 tokens for 38
# sections; tests/test_plan_vs_run.py holds the estimates to a run of the calibrated benchmark mock).
OUTLINE_TOKENS_PER_SECTION = 120  # an outline's prompt text per section (title, construction, analysis)
TITLE_TOKENS_PER_SECTION = 17  # the same with titles only ("[s7] 2.3 Title")
FOCUS_SECTIONS = 2  # sections a default-mode modify sees in full (those its suggestion names)
NOTES_TOKENS = 480  # a paper's map notes
PROMPT_OVERHEAD = 350
GROUP_TITLE_TOKENS = 16  # a paper's title in the group prompt, when the titles are not known
# The citation check, per written section: cited claims, citations per claim, the share of sections a
# repair rewrites and the share of pairs checked again after it; a passage is ~160 tokens.
CLAIMS_PER_SECTION = 10
CITES_PER_CLAIM = 1.3
REPAIRED_SHARE = 0.5
RECHECK_SHARE = 0.2
PASSAGE_TOKENS = 160
# A verifier call shows each cited paper's passages once for all its claims (prompts/verify.py::by_paper):
# in the 60 x 3,000 benchmark that left out 46 % of the passage tokens (verify prompts 194 k -> 115 k).
PASSAGE_REPEAT_SHARE = 0.45
SECTION_TOKENS = 450
SYSTEM_TOKENS = 250  # a stage's instructions: the start of every prompt's cacheable prefix


@dataclass
class StagePlan:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens a provider with prompt caching serves from its cache


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

    @property
    def cached_tokens(self) -> int:
        return sum(s.cached_tokens for s in self.stages.values())

    def cost(self, price_in: float, price_out: float, price_cached: float | None = None,
             batch: frozenset[str] = frozenset()) -> float:
        """Money at `price_in` / `price_out` per million prompt / completion tokens; with `price_cached`,
        the prompt tokens a provider serves from its prompt cache at that price; the `batch` stages at the
        Batch API's price."""
        return sum(stage_cost(sp, price_in, price_out, price_cached, batched=stage in batch)
                   for stage, sp in self.stages.items())


def stage_cost(sp: StagePlan, price_in: float, price_out: float, price_cached: float | None = None, *,
               batched: bool = False) -> float:
    if batched:  # a Batch API job: half price, and no prompt-cache discount counted on it (as the run bills)
        return prompt_cache.cost(sp.prompt_tokens, sp.completion_tokens, price_in=price_in * prompt_cache.BATCH_PRICE,
                                 price_out=price_out * prompt_cache.BATCH_PRICE)
    return prompt_cache.cost(sp.prompt_tokens, sp.completion_tokens, price_in=price_in, price_out=price_out,
                             cached_tokens=sp.cached_tokens if price_cached is not None else 0,
                             price_cached=price_cached)


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
             sections: int | None = None, title_tokens: list[int] | None = None) -> Plan:
    """Expected calls and tokens per stage for papers of `paper_tokens` tokens (split into `chunks`), titled in
    `title_tokens` tokens (when known: the group calls are then the run's exactly)."""
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

    def add(stage: str, calls: int, prompt_each: int, shared: int = 0, prefixes: int = 1) -> None:
        """`shared`: the prompt's leading tokens that `calls` share, `prefixes` distinct ones of them (the
        first call with each pays in full, the others read it from the provider's prompt cache)."""
        if calls <= 0:
            return
        sp = plan.stages.setdefault(stage, StagePlan())
        sp.calls += calls
        sp.prompt_tokens += calls * prompt_each
        sp.completion_tokens += calls * STAGES[stage].output_tokens // 2
        sp.cached_tokens += max(0, calls - max(1, prefixes)) * prompt_cache.cacheable(min(shared, prompt_each))

    if not reference:
        map_calls = sum(chunks)
        per_chunk = (sum(paper_tokens) // max(1, map_calls)) + PROMPT_OVERHEAD
        add("map", map_calls, per_chunk)
        add("reduce_notes", sum(1 for c in chunks if c > 1), 4 * NOTES_TOKENS + PROMPT_OVERHEAD)
    # Titles are grouped in the batches nodes/group.py makes (core.grouping.title_batches): by the input
    # budget, and at most `fan_in` papers per call in default mode (5,000 papers: 50 calls, not one call).
    titles_each = list(title_tokens) if title_tokens is not None else [GROUP_TITLE_TOKENS] * n
    group_batches = title_batches(titles_each, input_budget(settings, "group"),
                                  None if reference else STAGES["group"].fan_in) or [[]]
    add("group", len(group_batches),
        math.ceil(sum(titles_each) / len(group_batches)) + TITLE_LINE_TOKENS * math.ceil(n / len(group_batches))
        + GROUP_PROMPT_OVERHEAD)
    drafts = math.ceil(g / settings.skeleton_group_size)
    add("skeleton", drafts, 3 * settings.group_size * 300 + PROMPT_OVERHEAD)
    levels = merge_levels(drafts, outline, settings)
    add("merge_skeleton", sum(levels), math.ceil(drafts / levels[0]) * outline + PROMPT_OVERHEAD)
    if settings.digest_input == "notes":
        body = NOTES_TOKENS
    else:
        room = input_budget(settings, "digest") - outline - PROMPT_OVERHEAD
        body = min(sum(paper_tokens) // max(1, n), max(100, room))
    # Shared prefixes (prompts laid out for caching: instructions, then the outline of the pass or layer).
    # A pass after a block reads each paper in full when most sections changed, else only for the changed
    # ones (`incremental_digest`, often far less): counted in full, an upper bound.
    add("digest", n * (blocks + 1), body + construction + PROMPT_OVERHEAD, SYSTEM_TOKENS + construction, blocks + 1)
    add("feedback", g * blocks, titles_view + 3 * NOTES_TOKENS + PROMPT_OVERHEAD, SYSTEM_TOKENS + titles_view, blocks)
    conv_units = layer_calls(settings, g) // 3
    judged = blocks * (1 + g + conv_units + settings.best_of * settings.refine_rounds + (0 if reference else 2))
    if reference or not settings.judge_revisions:  # each outline in full: candidates share only the rubric
        add("judge", judged, outline + PROMPT_OVERHEAD, SYSTEM_TOKENS)
    else:  # the block's start outline, shared, then the candidate's revision of it (core/revision.py)
        add("judge", judged, outline + modify_view + PROMPT_OVERHEAD, SYSTEM_TOKENS + outline, blocks)
    passes = blocks * (1 + settings.max_layers + settings.refine_rounds)  # base outlines of modify: layer, round
    modify_shared = SYSTEM_TOKENS + (outline if reference else titles)
    add("modify", blocks * (g + conv_units + settings.best_of * settings.refine_rounds), modify_view + 200 + PROMPT_OVERHEAD,
        modify_shared, passes)
    add("merge_suggestions", blocks * conv_units, titles_view + 3 * 200 + PROMPT_OVERHEAD, SYSTEM_TOKENS + titles_view,
        blocks * settings.max_layers)
    add("critique", blocks * settings.best_of * settings.refine_rounds, outline + PROMPT_OVERHEAD,
        SYSTEM_TOKENS + outline, blocks * settings.refine_rounds)
    evidence = min(input_budget(settings, "write_section"), max(200, 2 * n * 60 // max(1, s) * 3))
    add("write_section", s, evidence + PROMPT_OVERHEAD)
    add("polish", s, STAGES["write_section"].output_tokens // 2 + PROMPT_OVERHEAD)
    if settings.charts:
        add("charts", 1, outline + PROMPT_OVERHEAD)
    if settings.verify_citations:
        pairs, rechecks, repaired = check_sizes(s)
        per_pair = 60 + round(settings.verify_passages * PASSAGE_TOKENS * (1 - PASSAGE_REPEAT_SHARE))
        first, repair, again = check_calls(settings, s)
        for n, calls in ((pairs, first), (rechecks, again)):
            if calls:
                add("verify", calls, n * per_pair // calls + PROMPT_OVERHEAD)
        if repair:
            add("repair", repair, repaired * (SECTION_TOKENS + evidence // 2) // repair + PROMPT_OVERHEAD)
    return plan


def _scaled(sp: StagePlan, calls: int) -> StagePlan:
    """`calls` calls of a stage at the average tokens of `sp`'s."""
    n = max(1, sp.calls)
    return StagePlan(calls, sp.prompt_tokens * calls // n, sp.completion_tokens * calls // n,
                     sp.cached_tokens * max(0, calls - 1) // max(1, n - 1))


def estimate_update(settings: Settings, added_tokens: list[int], added_chunks: list[int] | None, papers_after: int,
                    sections: int, rewrite: int) -> Plan:
    """Expected calls and tokens of an update with refine=never (nodes/update.py): the added documents read
    (default mode) and digested once against the final outline of `sections` sections, then `rewrite`
    sections written, polished and checked again (no charts). `papers_after`: the documents of the new
    version (the evidence a section is written from)."""
    plan = Plan(papers=len(added_tokens), sections=rewrite, blocks=0)
    if added_tokens:
        read = estimate(settings, added_tokens, added_chunks, sections=sections)
        for stage in ("map", "reduce_notes"):
            if stage in read.stages:
                plan.stages[stage] = read.stages[stage]
        plan.stages["digest"] = _scaled(read.stages["digest"], len(added_tokens))
    if rewrite:
        typical = [sum(added_tokens) // max(1, len(added_tokens))] * max(1, papers_after)
        whole = estimate(settings, typical, sections=sections)  # a section's writing, with the whole outline's evidence
        for stage in ("write_section", "polish"):
            plan.stages[stage] = _scaled(whole.stages[stage], rewrite)
        check = estimate(settings, typical, sections=rewrite)  # the check's rounds, for the rewritten sections
        for stage in CHECK_STAGES:
            if stage in check.stages:
                plan.stages[stage] = check.stages[stage]
    return plan


def check_sizes(sections: int) -> tuple[int, int, int]:
    """(pairs checked, pairs re-checked, sections repaired) the citation check expects for `sections`."""
    pairs = round(sections * CLAIMS_PER_SECTION * CITES_PER_CLAIM)
    return pairs, round(pairs * RECHECK_SHARE), math.ceil(sections * REPAIRED_SHARE)


def check_calls(settings: Settings, sections: int) -> tuple[int, int, int]:
    """Planned calls of the citation check's three rounds (check, repair, re-check): pairs and sections are
    batched so that each round is at most `max_concurrency` calls (nodes/verify.py). A run under a call
    budget holds each round to what is left after the rounds planned behind it."""
    if not settings.verify_citations:
        return 0, 0, 0
    pairs, rechecks, repaired = check_sizes(sections)
    return tuple(min(n, settings.max_concurrency) for n in (pairs, repaired, rechecks))  # type: ignore[return-value]


# Stages without which no article is written (refinement and the digest passes are counted apart).
WRITING_PATH = tuple(dict.fromkeys(s.name for s in STAGES.values() if not s.optional and s.name != "digest"))
# The stages that write an outline into the article: the budget's reserve while refining. The citation check
# is optional for the method but the run always does it when `verify_citations` is on, so it is reserved too.
WRITE_STAGES = ("write_section", "polish", "charts", "verify", "repair")
CHECK_STAGES = ("verify", "repair")


def writing_cost(settings: Settings, paper_tokens: list[int], sections: int, check: bool = True) -> tuple[int, int]:
    """(calls, tokens) of writing an outline of `sections` sections, as `estimate` plans them (`check`: with
    the citation check)."""
    p = estimate(settings, paper_tokens, sections=max(1, sections))
    stages = [p.stages[k] for k in WRITE_STAGES if k in p.stages and (check or k not in CHECK_STAGES)]
    return sum(s.calls for s in stages), sum(s.prompt_tokens + s.completion_tokens for s in stages)


def max_sections_within(settings: Settings, paper_tokens: list[int], calls_left: int | None,
                        tokens_left: int | None, limit: int = 1000) -> int | None:
    """The most sections whose writing fits `calls_left` calls (citation check included: its calls are few and
    known) and `tokens_left` tokens (without the check: its tokens are mostly passages, and under a token
    budget its rounds keep to what writing left, nodes/verify.py), as `writing_cost` plans them; None when
    neither is limited. At least 1: an article needs a section."""
    if calls_left is None and tokens_left is None:
        return None

    def fits(sections: int) -> bool:
        calls_ok = calls_left is None or writing_cost(settings, paper_tokens, sections)[0] <= calls_left
        return calls_ok and (tokens_left is None or writing_cost(settings, paper_tokens, sections, check=False)[1] <= tokens_left)

    lo, hi = 1, limit  # writing's cost grows with the sections: the last that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


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


def minimum_calls(settings: Settings, paper_tokens: list[int], chunks: list[int] | None = None,
                  title_tokens: list[int] | None = None) -> int:
    """Calls without which no article can be written, as the run follows them when the budget is tight:
    reading, one outline and its digest pass, no refinement block, and writing (with the citation check)."""
    n = len(paper_tokens)
    s = _minimum_sections(settings, n)
    p = estimate(settings, paper_tokens, chunks, sections=s, title_tokens=title_tokens)
    return sum(sp.calls for sp in _reading(p)) + n + writing_cost(settings, paper_tokens, s)[0]


def minimum_tokens(settings: Settings, paper_tokens: list[int], chunks: list[int] | None = None,
                   title_tokens: list[int] | None = None) -> int:
    n = len(paper_tokens)
    s = _minimum_sections(settings, n)
    p = estimate(settings, paper_tokens, chunks, sections=s, title_tokens=title_tokens)
    digest = p.stages.get("digest")
    one_pass = (digest.prompt_tokens + digest.completion_tokens) // (p.blocks + 1) if digest else 0
    reading = sum(sp.prompt_tokens + sp.completion_tokens for sp in _reading(p))
    return reading + one_pass + writing_cost(settings, paper_tokens, s)[1]
