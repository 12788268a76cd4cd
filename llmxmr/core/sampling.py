"""Which suggestions a convolution layer combines (METHOD §2.5d): pooling, score-weighted sampling, top-k.

All randomness comes from the `random.Random` the caller passes (see `llmxmr.core.rng.rng_for`), so a
resumed run draws the same groups.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

from llmxmr.state.records import Suggestion

ZERO_SCORE_WEIGHT = 0.01  # a score of 0 still gets a small chance (reference behaviour)
_MAX_REDRAWS = 2000  # rejection draws for an unseen set before computing the exact fallback
_MAX_ENUMERATION = 200_000  # combinations we are willing to enumerate for that fallback


def is_pooling(n_suggestions: int, kernel_width: int, units: int) -> bool:
    """Pooling when there are more than `units` kernels' worth of suggestions."""
    return n_suggestions / kernel_width > units


def pooling_groups(ids: Sequence[str], kernel_width: int, rng: random.Random) -> list[list[str]]:
    """Shuffle, then consecutive chunks of `kernel_width` (the last may be smaller)."""
    shuffled = list(ids)
    rng.shuffle(shuffled)
    return [shuffled[i : i + kernel_width] for i in range(0, len(shuffled), kernel_width)]


def _weight(score: float) -> float:
    return score if score > 0 else ZERO_SCORE_WEIGHT


def _draw_without_replacement(ids: list[str], weights: list[float], k: int, rng: random.Random) -> list[str]:
    """k successive draws, each ∝ weight among the ids not drawn yet."""
    ids, weights = list(ids), list(weights)
    out: list[str] = []
    for _ in range(k):
        x = rng.random() * sum(weights)
        acc = 0.0
        pick = len(ids) - 1  # float round-off guard: fall back to the last item
        for i, w in enumerate(weights):
            acc += w
            if x < acc:
                pick = i
                break
        out.append(ids.pop(pick))
        weights.pop(pick)
    return out


def _order_probability(order: tuple[int, ...], weights: list[float], total: float) -> float:
    """P(successive weighted draws without replacement yield exactly this sequence)."""
    q, left = 1.0, total
    for i in order:
        q *= weights[i] / left
        left -= weights[i]
    return q


def _draw_unseen(
    ids: list[str], weights: list[float], k: int, seen: set[frozenset[str]], rng: random.Random
) -> list[str]:
    """Redraw until the set is new; with very skewed weights, draw exactly from the unseen sets instead."""
    group: list[str] = []
    for _ in range(_MAX_REDRAWS):
        group = _draw_without_replacement(ids, weights, k, rng)
        if frozenset(group) not in seen:
            return group
    if math.comb(len(ids), k) > _MAX_ENUMERATION:
        # Unreachable in practice (scores lie in 0-10); never hang on a huge enumeration.
        return group or _draw_without_replacement(ids, weights, k, rng)
    # Same law as unbounded redrawing (sequential draws conditioned on an unseen set), computed exactly.
    total = sum(weights)
    orders = [
        order
        for combo in itertools.combinations(range(len(ids)), k)
        if frozenset(ids[i] for i in combo) not in seen
        for order in itertools.permutations(combo)
    ]
    probs = [_order_probability(o, weights, total) for o in orders]
    return [ids[i] for i in rng.choices(orders, weights=probs)[0]]


def sampling_groups(
    suggestions: Sequence[Suggestion], kernel_width: int, units: int, rng: random.Random
) -> list[list[str]]:
    """`units` groups of suggestion ids for a sampling layer.

    Failed suggestions (score None) are excluded. Each group is `kernel_width` successive draws without
    replacement ∝ score; a group whose set was drawn before is redrawn until all C(n, k) sets have been
    seen, then repeats are allowed. With fewer eligible suggestions n than `kernel_width`, a group is n
    uniform draws with replacement, returned as drawn (duplicates included; de-duplication is the
    caller's job).
    """
    eligible = [s for s in suggestions if s.score is not None]
    ids = [s.suggestion_id for s in eligible]
    n = len(ids)
    if n == 0 or units <= 0:
        return []
    if n < kernel_width:
        return [[rng.choice(ids) for _ in range(n)] for _ in range(units)]
    weights = [_weight(s.score or 0.0) for s in eligible]
    n_sets = math.comb(n, kernel_width)
    seen: set[frozenset[str]] = set()
    groups: list[list[str]] = []
    for _ in range(units):
        if len(seen) < n_sets:
            group = _draw_unseen(ids, weights, kernel_width, seen, rng)
        else:  # every set has been seen: repeats are allowed
            group = _draw_without_replacement(ids, weights, kernel_width, rng)
        seen.add(frozenset(group))
        groups.append(group)
    return groups


def top_k(pool: Sequence[Suggestion], k: int) -> list[Suggestion]:
    """The k best by score (failed ones excluded); ties by the seeded `order`, then suggestion_id.

    The pool is previous ∪ new, so a suggestion id present twice is counted once (first occurrence).
    """
    unique: dict[str, Suggestion] = {}
    for s in pool:
        if s.score is not None:
            unique.setdefault(s.suggestion_id, s)
    ranked = sorted(unique.values(), key=lambda s: (-(s.score or 0.0), s.order, s.suggestion_id))
    return ranked[: max(k, 0)]
