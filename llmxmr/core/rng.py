"""Deterministic random streams derived from the run seed and a position in the run.

Every draw of the method (which suggestions form a group, the pooling shuffle, tie-break orders) takes its
generator from `rng_for(seed, block, layer, unit, ...)`. Hashing the parts instead of sharing one global
generator means a resumed run re-creates exactly the same draws without replaying earlier ones.
"""

from __future__ import annotations

import hashlib
import random


def rng_for(seed: int, *parts: object) -> random.Random:
    """A `random.Random` seeded from sha256 of the seed and the parts (order matters)."""
    # repr keeps 1 and "1" apart; the separator keeps ("ab", "c") apart from ("a", "bc").
    material = "\x1f".join(repr(p) for p in (int(seed), *parts))
    digest = hashlib.sha256(material.encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
