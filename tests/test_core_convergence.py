"""Stop rules and keep/final decisions (METHOD §4)."""

from __future__ import annotations

import pytest

from llmxmr.core.convergence import (
    ENTROPY_GAIN_TOO_SMALL,
    NO_BETTER_OUTLINE,
    budget_allows,
    entropy_gain_too_small,
    final_outline_index,
    keep_if_better,
    layer_should_stop,
    no_better_outline,
)


def test_layer_stop_needs_patience_consecutive_small_gains():
    eps = 0.1
    assert not layer_should_stop([5.0], eps, 2)  # only layer 0
    assert not layer_should_stop([5.0, 5.05], eps, 2)  # one stalled layer < patience
    assert layer_should_stop([5.0, 5.05, 5.1], eps, 2)  # two in a row
    assert not layer_should_stop([5.0, 5.05, 6.0, 6.05], eps, 2)  # the streak was broken by +0.95
    assert layer_should_stop([5.0, 5.05, 6.0, 6.05, 6.1], eps, 2)
    assert layer_should_stop([5.0, 5.05], eps, 1)
    assert not layer_should_stop([5.0, 5.1], eps, 1)  # a gain of exactly epsilon is progress
    assert layer_should_stop([5.0, 4.0], eps, 1)  # a drop is a stall
    assert layer_should_stop([5.0, 5.0], eps, 0)  # patience < 1 acts as 1


def test_layer_stop_never_in_reference_mode():
    assert not layer_should_stop([5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0], 0.1, 1, "reference")


def test_no_better_outline():
    assert no_better_outline(7.0, 7.0) == NO_BETTER_OUTLINE == "converged: no better outline"
    assert no_better_outline(6.9, 7.0) == NO_BETTER_OUTLINE
    assert no_better_outline(7.1, 7.0) is None
    assert no_better_outline(6.0, 7.0, "reference") is None


def test_entropy_gain_too_small():
    assert entropy_gain_too_small(6.0, 6.05, 0.1) == ENTROPY_GAIN_TOO_SMALL == "converged: entropy gain < epsilon"
    assert entropy_gain_too_small(6.0, 5.0, 0.1) == ENTROPY_GAIN_TOO_SMALL
    assert entropy_gain_too_small(6.0, 6.1, 0.1) is None  # E_new == E_prev + eps is not "< E_prev + eps"
    assert entropy_gain_too_small(6.0, 7.0, 0.1) is None
    assert entropy_gain_too_small(6.0, 5.0, 0.1, "reference") is None


def test_keep_if_better():
    assert keep_if_better(7.0, 7.5)
    assert not keep_if_better(7.0, 7.0)  # strictly better only
    assert not keep_if_better(7.0, 6.0)
    assert keep_if_better(7.0, 6.0, "reference")  # reference takes the round's best even if worse
    assert not keep_if_better(7.0, None)
    assert not keep_if_better(7.0, None, "reference")
    assert keep_if_better(None, 3.0)


def test_final_outline_index():
    assert final_outline_index([5.0, 7.0, 6.5]) == 1
    assert final_outline_index([5.0, 7.0, 7.0]) == 1  # first on ties
    assert final_outline_index([8.0]) == 0
    assert final_outline_index([5.0, 7.0, 6.5], "reference") == 2
    with pytest.raises(ValueError):
        final_outline_index([])


def test_budget_allows():
    args = dict(used_calls=90, used_tokens=9000, reserve_calls=5, reserve_tokens=500)
    assert budget_allows(**args, next_calls=5, next_tokens=500, max_calls=100, max_tokens=10000)  # exactly fits
    assert not budget_allows(**args, next_calls=6, next_tokens=500, max_calls=100, max_tokens=10000)
    assert not budget_allows(**args, next_calls=5, next_tokens=501, max_calls=100, max_tokens=10000)
    assert budget_allows(**args, next_calls=10**6, next_tokens=10**9, max_calls=None, max_tokens=None)
    assert not budget_allows(**args, next_calls=0, next_tokens=10**9, max_calls=None, max_tokens=10000)
