"""Topic re-packing, random groups and batching."""

from __future__ import annotations

import math

import pytest

from llmxmr.core.grouping import batched, batches_by_budget, merge_level_batches, random_groups, repack_topics
from llmxmr.core.rng import rng_for


def test_batched():
    assert batched([1, 2, 3, 4, 5, 6, 7], 3) == [[1, 2, 3], [4, 5, 6], [7]]
    assert batched([1, 2, 3], 3) == [[1, 2, 3]]
    assert batched([], 3) == []
    assert batched("abcd", 2) == [["a", "b"], ["c", "d"]]
    with pytest.raises(ValueError):
        batched([1], 0)


def test_repack_topics_reference_order_and_remainder():
    # 10 papers numbered 1..10 in the prompt; topics cut across group boundaries on purpose
    topics = [[3, 1, 7, 9], [2, 5], [10, 4, 6, 8]]
    groups = repack_topics(topics, 10, 3)
    assert groups == [[2, 0, 6], [8, 1, 4], [9, 3, 5], [7]]
    assert len(groups) == math.ceil(10 / 3)


def test_repack_topics_ignores_bad_numbers_and_appends_forgotten():
    topics = [[2, 2, 99, 0, -1, True], [1, 2], []]  # dupes, out of range, bool
    groups = repack_topics(topics, 5, 2)
    assert groups == [[1, 0], [2, 3], [4]]  # papers 3,4,5 forgotten -> appended in order
    assert sorted(i for g in groups for i in g) == list(range(5))


def test_repack_topics_zero_based_numbers_and_no_topics():
    assert repack_topics([[2, 0]], 3, 3, first_number=0) == [[2, 0, 1]]
    assert repack_topics([], 4, 3) == [[0, 1, 2], [3]]
    assert repack_topics([], 0, 3) == []


def test_random_groups_seeded_partition():
    g1 = random_groups(11, 3, rng_for(3, "group"))
    assert [len(g) for g in g1] == [3, 3, 3, 2]
    assert sorted(i for g in g1 for i in g) == list(range(11))
    assert g1 == random_groups(11, 3, rng_for(3, "group"))
    assert g1 != random_groups(11, 3, rng_for(4, "group"))


def test_batches_by_budget():
    items = [4, 3, 3, 5, 1, 12, 2, 2]
    batches = batches_by_budget(items, lambda x: x, 10)
    assert batches == [[4, 3, 3], [5, 1], [12], [2, 2]]
    assert all(sum(b) <= 10 or len(b) == 1 for b in batches)
    assert [x for b in batches for x in b] == items  # consecutive, nothing lost
    assert batches_by_budget(["aa", "bbbbbbbbbbbbb", "c"], len, 5) == [["aa"], ["bbbbbbbbbbbbb"], ["c"]]
    assert batches_by_budget([], len, 5) == []


def test_merge_level_batches_budget_fan_in_and_pairs():
    # the budget alone, then capped at fan_in items per batch
    assert merge_level_batches([3, 3, 3, 3, 3], lambda x: x, 100) == [[3, 3, 3, 3, 3]]
    assert merge_level_batches([3, 3, 3, 3, 3], lambda x: x, 100, fan_in=2) == [[3, 3], [3, 3], [3]]
    assert merge_level_batches([4, 4, 4, 4], lambda x: x, 8, fan_in=8) == [[4, 4], [4, 4]]
    # every draft alone overflows: pairs, so the level still halves the count
    assert merge_level_batches([9, 9, 9], lambda x: x, 5) == [[9, 9], [9]]
    # one over-budget draft among others is not the pairs case
    assert merge_level_batches([9, 2, 2], lambda x: x, 5) == [[9], [2, 2]]
    # a single draft is still one batch (the reference always makes one merge call)
    assert merge_level_batches([50], lambda x: x, 5) == [[50]]
    assert merge_level_batches([], lambda x: x, 5) == []


def test_merge_levels_shrink_to_one():
    """Repeated levels (each batch merged into one item) always end, whatever the budget."""
    for n in range(1, 40):
        for budget, fan_in in ((10, None), (10, 3), (1, None), (1, 8)):
            items, levels = [4] * n, 0
            while True:
                batches = merge_level_batches(items, lambda x: x, budget, fan_in)
                levels += 1
                if len(batches) == 1:
                    break
                assert len(batches) < len(items)
                items = [4] * len(batches)
            assert levels <= n
