"""Stop rules and keep/final decisions of the refinement loop (METHOD §4), as pure functions.

Reference mode has no early stops and always takes the newest outline; the default mode stops when the
scores stop improving by `epsilon` (absolute, on the 0-10 scale). The reason strings are recorded in the
run's decisions, so they are constants here.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmxmr.state.context import Mode

NO_BETTER_OUTLINE = "converged: no better outline"
ENTROPY_GAIN_TOO_SMALL = "converged: entropy gain < epsilon"
BUDGET = "budget"

# Scores are floats: 6.1 - 6.0 < 0.1 in binary, so a gain of exactly epsilon must not count as a stall.
_TOL = 1e-9


def layer_should_stop(best_per_layer: Sequence[float], epsilon: float, patience: int, mode: Mode = "default") -> bool:
    """After layer l (best_per_layer[0] is layer 0): stop when the last `patience` layers each gained
    less than epsilon over the layer before. Reference mode runs every layer."""
    if mode == "reference":
        return False
    patience = max(1, patience)
    stalled = 0
    for prev, cur in zip(best_per_layer, best_per_layer[1:]):
        stalled = stalled + 1 if cur - prev < epsilon - _TOL else 0
    return stalled >= patience


def no_better_outline(J_C: float, J_Ob: float, mode: Mode = "default") -> str | None:
    """Block end, after re-scoring C and O_b together: stop when the block's best is not better."""
    if mode == "reference":
        return None
    return NO_BETTER_OUTLINE if J_C <= J_Ob else None


def entropy_gain_too_small(E_prev: float, E_new: float, epsilon: float, mode: Mode = "default") -> str | None:
    """Block end, after digesting C: stop when E rose by less than epsilon."""
    if mode == "reference":
        return None
    return ENTROPY_GAIN_TOO_SMALL if E_new < E_prev + epsilon - _TOL else None


def keep_if_better(current_score: float | None, candidate_score: float | None, mode: Mode = "default") -> bool:
    """Self-refine: should the round's best candidate replace the current outline?

    Reference takes it even if worse; default only if strictly better. A failed candidate (None) never
    replaces; a scored candidate always replaces an unscored current outline.
    """
    if candidate_score is None:
        return False
    if mode == "reference" or current_score is None:
        return True
    return candidate_score > current_score


def final_outline_index(E_history: Sequence[float], mode: Mode = "default") -> int:
    """Which of O_0 .. O_last is final: default the highest E (earliest on ties), reference the last."""
    if not E_history:
        raise ValueError("no outline to choose from")
    if mode == "reference":
        return len(E_history) - 1
    return max(range(len(E_history)), key=lambda i: (E_history[i], -i))


def budget_allows(
    used_calls: int,
    used_tokens: int,
    reserve_calls: int,
    reserve_tokens: int,
    next_calls: int,
    next_tokens: int,
    max_calls: int | None,
    max_tokens: int | None,
) -> bool:
    """Can the next step run and still leave the reserve (e.g. the cost of writing)? None = unlimited."""
    if max_calls is not None and used_calls + next_calls + reserve_calls > max_calls:
        return False
    if max_tokens is not None and used_tokens + next_tokens + reserve_tokens > max_tokens:
        return False
    return True
