"""Grouping papers and batching inputs: topic re-packing, random fallback, budget-fitted batches."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive chunks of `size` (the last may be smaller)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def repack_topics(
    topics: Sequence[Sequence[int]], n_papers: int, group_size: int, first_number: int = 1
) -> list[list[int]]:
    """Reference grouping: papers in topic order, cut into consecutive groups of `group_size`.

    `topics` hold paper numbers as listed in the prompt (starting at `first_number`); the result holds
    0-based indices. Out-of-range and repeated numbers are ignored; papers the model forgot are appended
    at the end, so every paper is in exactly one of the ceil(N / group_size) groups.
    """
    order: list[int] = []
    seen: set[int] = set()
    for topic in topics:
        for number in topic:
            if isinstance(number, bool):  # bool is an int subclass; a model "true" is not paper 1
                continue
            idx = number - first_number
            if 0 <= idx < n_papers and idx not in seen:
                seen.add(idx)
                order.append(idx)
    order.extend(i for i in range(n_papers) if i not in seen)
    return batched(order, group_size)


def random_groups(n: int, group_size: int, rng: random.Random) -> list[list[int]]:
    """Fallback grouping when the topic call fails: a seeded shuffle of 0..n-1 cut like repack_topics."""
    order = list(range(n))
    rng.shuffle(order)
    return batched(order, group_size)


def batches_by_budget(items: Sequence[T], cost: Callable[[T], int | float], budget: int | float) -> list[list[T]]:
    """Greedy consecutive batches whose summed cost fits `budget`.

    For inputs too long for one call (hundreds of titles, dozens of local outlines): an item costing
    more than the budget goes alone in its batch (the caller truncates or records it).
    """
    batches: list[list[T]] = []
    current: list[T] = []
    used: int | float = 0
    for item in items:
        c = cost(item)
        if current and used + c > budget:
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += c
        if used > budget:  # an over-budget item stays alone
            batches.append(current)
            current, used = [], 0
    if current:
        batches.append(current)
    return batches


GROUP_PROMPT_OVERHEAD = 250  # tokens of the group prompt around the titles
TITLE_LINE_TOKENS = 4  # a title's number and line end in the group prompt


def title_batches(title_tokens: Sequence[int], budget: int, fan_in: int | None = None) -> list[list[int]]:
    """The group calls: indexes of the titles each call sorts. Consecutive batches whose titles fit the stage's
    input `budget`, each cut at `fan_in` titles (default mode). The run (nodes/group.py) and the planner
    (llmxmr.plan) both batch with this, so `llmxmr plan` counts the calls the run makes."""
    costs = [t + TITLE_LINE_TOKENS for t in title_tokens]
    batches = batches_by_budget(list(range(len(costs))), costs.__getitem__, budget - GROUP_PROMPT_OVERHEAD)
    if fan_in:
        batches = [part for b in batches for part in batched(b, fan_in)]
    return batches


def merge_level_batches(
    items: Sequence[T], cost: Callable[[T], int | float], budget: int | float, fan_in: int | None = None
) -> list[list[T]]:
    """The batches of one level of a hierarchical merge (local outlines into one).

    Consecutive batches that fit `budget`, each cut to at most `fan_in` items when given. A level must
    have fewer batches than items or the merge never ends: when every item alone overflows, pairs.
    """
    batches = batches_by_budget(items, cost, budget)
    if fan_in:
        batches = [part for b in batches for part in batched(b, fan_in)]
    if len(items) > 1 and len(batches) >= len(items):
        batches = batched(items, 2)
    return batches
