"""A metric's mean with a bootstrap 95 % interval (percentile method, seeded: the same values and seed give
the same interval)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    mean: float | None
    low: float | None  # the interval's bounds; equal to the mean for a single value
    high: float | None
    n: int  # values behind it (claims, sections, seeds)

    def as_dict(self) -> dict:
        return asdict(self)


def bootstrap(values: Sequence[float], *, seed: int = 0, level: float = 0.95, resamples: int = RESAMPLES) -> Estimate:
    """Mean of `values` and the bootstrap interval of the mean; None for no values."""
    n = len(values)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = sum(values) / n
    if n == 1 or min(values) == max(values):
        return Estimate(mean, mean, mean, n)
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(values) for _ in range(n)) / n for _ in range(resamples))
    cut = (1 - level) / 2
    low = means[int(cut * resamples)]
    high = means[min(resamples - 1, int((1 - cut) * resamples))]
    return Estimate(mean, low, high, n)
