"""Suggestion sampling (METHOD §2.5d) and the seeded rng."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest

import llmxmr.core.sampling as sampling
from llmxmr.core.rng import rng_for
from llmxmr.core.sampling import is_pooling, pooling_groups, sampling_groups, top_k
from llmxmr.state.records import Suggestion


def sugg(scores: list[float | None], orders: list[int] | None = None) -> list[Suggestion]:
    orders = orders or list(range(len(scores)))
    return [
        Suggestion(suggestion_id=f"u{i}", text="t", score=sc, order=o) for i, (sc, o) in enumerate(zip(scores, orders))
    ]


# --- rng -----------------------------------------------------------------------------------------------


def test_rng_for_is_deterministic_and_position_dependent():
    draw = lambda *p: [rng_for(*p).random() for _ in range(3)]  # noqa: E731
    assert draw(7, 0, 1, 2) == draw(7, 0, 1, 2)
    assert draw(7, 0, 1, 2) != draw(7, 0, 1, 3)
    assert draw(7, 0, 1, 2) != draw(8, 0, 1, 2)
    assert draw(7, 0, 12) != draw(7, 1, 2)  # parts are separated
    assert draw(7, 1) != draw(7, "1")


# --- pooling -------------------------------------------------------------------------------------------


def test_is_pooling_threshold():
    assert is_pooling(31, 3, 10) is True
    assert is_pooling(30, 3, 10) is False  # 30/3 == 10 is not more than 10 units
    assert is_pooling(51, 3, 10) is True  # reference N=150: first layer pools


def test_pooling_groups_split_sizes_and_cover_everything():
    ids = [f"u{i}" for i in range(50)]
    groups = pooling_groups(ids, 3, rng_for(1, "pool"))
    assert [len(g) for g in groups] == [3] * 16 + [2]
    assert sorted(itertools.chain.from_iterable(groups)) == sorted(ids)
    assert groups == pooling_groups(ids, 3, rng_for(1, "pool"))  # seeded
    assert groups != pooling_groups(ids, 3, rng_for(2, "pool"))  # actually shuffled
    assert [len(g) for g in pooling_groups(ids[:6], 3, rng_for(0))] == [3, 3]
    assert ids == [f"u{i}" for i in range(50)]  # input untouched


# --- sampling ------------------------------------------------------------------------------------------


def test_no_repeated_set_until_all_combinations_seen():
    pool = sugg([9, 1, 5, 3])  # C(4,3) = 4 sets
    for seed in range(200):
        groups = sampling_groups(pool, 3, 10, rng_for(seed, 0, 1))
        assert len(groups) == 10
        assert all(len(g) == 3 == len(set(g)) for g in groups)
        assert len({frozenset(g) for g in groups[:4]}) == 4
        assert len({frozenset(g) for g in groups}) == 4


def test_larger_pool_first_groups_all_distinct():
    pool = sugg([8, 7, 6, 5, 4, 3])  # C(6,3) = 20 sets > 10 units
    for seed in range(50):
        groups = sampling_groups(pool, 3, 10, rng_for(seed))
        assert len({frozenset(g) for g in groups}) == 10


def test_single_draw_frequencies_proportional_to_score():
    pool = sugg([1, 2, 3, 4])
    counts: Counter[str] = Counter()
    trials = 20000
    for seed in range(trials):
        counts[sampling_groups(pool, 1, 1, rng_for(seed, "freq"))[0][0]] += 1
    for i, score in enumerate([1, 2, 3, 4]):
        assert counts[f"u{i}"] / trials == pytest.approx(score / 10, abs=0.015)


def test_first_member_of_a_group_proportional_to_score():
    pool = sugg([1, 3, 6])
    counts: Counter[str] = Counter()
    for seed in range(12000):
        counts[sampling_groups(pool, 2, 1, rng_for(seed))[0][0]] += 1
    assert counts["u0"] / 12000 == pytest.approx(0.1, abs=0.015)
    assert counts["u2"] / 12000 == pytest.approx(0.6, abs=0.02)


def test_zero_score_counts_as_a_hundredth():
    pool = sugg([0, 10])
    hits = sum(sampling_groups(pool, 1, 1, rng_for(s))[0] == ["u0"] for s in range(20000))
    assert 5 <= hits <= 60  # expected 0.01/10.01 * 20000 ≈ 20: small but not impossible


def test_failed_suggestions_are_excluded():
    pool = sugg([5, None, 5, None, 5, 5])
    for seed in range(100):
        for g in sampling_groups(pool, 3, 10, rng_for(seed)):
            assert "u1" not in g and "u3" not in g
    assert sampling_groups(sugg([None, None]), 3, 10, rng_for(0)) == []


def test_fewer_eligible_than_kernel_width_draws_uniformly_with_replacement():
    pool = sugg([9, None, 0.5])  # 2 eligible < k=3
    counts: Counter[str] = Counter()
    dupes = 0
    for seed in range(2000):
        groups = sampling_groups(pool, 3, 10, rng_for(seed))
        assert len(groups) == 10 and all(len(g) == 2 for g in groups)
        for g in groups:
            counts.update(g)
            dupes += g[0] == g[1]
    assert set(counts) == {"u0", "u2"}
    assert counts["u0"] / sum(counts.values()) == pytest.approx(0.5, abs=0.02)  # uniform, not ∝ score
    assert dupes / 20000 == pytest.approx(0.5, abs=0.02)  # with replacement


def test_sampling_is_seeded():
    pool = sugg([3, 1, 4, 1, 5, 9, 2])
    assert sampling_groups(pool, 3, 10, rng_for(5, 1, 2)) == sampling_groups(pool, 3, 10, rng_for(5, 1, 2))
    assert sampling_groups(pool, 3, 10, rng_for(5, 1, 2)) != sampling_groups(pool, 3, 10, rng_for(5, 1, 3))


def test_skewed_scores_still_see_every_set(monkeypatch):
    monkeypatch.setattr(sampling, "_MAX_REDRAWS", 1)  # force the exact fallback
    pool = sugg([10, 10, 10, 0])
    for seed in range(50):
        groups = sampling_groups(pool, 3, 5, rng_for(seed))
        assert len({frozenset(g) for g in groups[:4]}) == 4


def test_exact_fallback_matches_sequential_draw_law(monkeypatch):
    monkeypatch.setattr(sampling, "_MAX_REDRAWS", 0)  # every draw goes through the enumeration
    w = [1.0, 2.0, 3.0, 4.0]
    pool = sugg(w)
    counts: Counter[frozenset[str]] = Counter()
    trials = 20000
    for seed in range(trials):
        counts[frozenset(sampling_groups(pool, 2, 1, rng_for(seed))[0])] += 1
    for a, b in itertools.combinations(range(4), 2):
        exact = w[a] / 10 * w[b] / (10 - w[a]) + w[b] / 10 * w[a] / (10 - w[b])
        assert counts[frozenset({f"u{a}", f"u{b}"})] / trials == pytest.approx(exact, abs=0.015)
    assert sum(counts.values()) == trials and math.comb(4, 2) == len(counts)


# --- top-k ---------------------------------------------------------------------------------------------


def test_top_k_over_previous_and_new_with_seeded_ties():
    previous = [
        Suggestion(suggestion_id="f1", text="", score=7.0, order=5),
        Suggestion(suggestion_id="f2", text="", score=5.0, order=1),
    ]
    new = [
        Suggestion(suggestion_id="l1u1", text="", score=7.0, order=2),
        Suggestion(suggestion_id="l1u2", text="", score=None, order=0),  # failed: never kept
        Suggestion(suggestion_id="l1u3", text="", score=8.5, order=9),
        Suggestion(suggestion_id="l1u4", text="", score=5.0, order=1),  # same order as f2: id decides
    ]
    best = top_k(previous + new, 4)
    assert [s.suggestion_id for s in best] == ["l1u3", "l1u1", "f1", "f2"]
    assert [s.suggestion_id for s in top_k(previous + new, 10)] == ["l1u3", "l1u1", "f1", "f2", "l1u4"]
    assert top_k(previous + new, 0) == []
    assert [s.suggestion_id for s in top_k(previous + previous, 5)] == ["f1", "f2"]  # union, not a multiset
