"""Control nodes of the refinement loop (METHOD.md §4): they make no model calls except block_end's
re-scoring; the decisions themselves are pure functions in `llmxmr.core`."""

from __future__ import annotations

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from statistics import mean
from typing import Any

from llmxmr.core.convergence import (
    budget_allows, entropy_gain_too_small, final_outline_index, keep_if_better, layer_should_stop, no_better_outline,
)
from llmxmr.core.entropy import combine, structural_entropy
from llmxmr.core.rng import rng_for
from llmxmr.core.sampling import is_pooling, pooling_groups, sampling_groups, top_k
from llmxmr.core.tree import leaf_ids, section_ids
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.entropy import judge_outline
from llmxmr.nodes.env import Env, artifact, progress, run_settings
from llmxmr.state.context import Settings
from llmxmr.state.graph_state import RESET
from llmxmr.state.models import Suggestion

RESCORE_CANDIDATE = 1000  # candidate index of the fresh judge calls at block end (never a cache hit)


def _settings(state: dict[str, Any]) -> Settings:
    return run_settings(state)


def _totals(usage: dict[str, dict[str, int]]) -> tuple[int, int]:
    calls = sum(u.get("calls", 0) for u in usage.values())
    tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in usage.values())
    return calls, tokens


def within_budget(state: dict[str, Any], settings: Settings, next_calls: int) -> bool:
    """Room for `next_calls` more refinement calls while still reserving the cost of writing."""
    if settings.max_calls is None and settings.max_total_tokens is None:
        return True
    calls, tokens = _totals(state.get("usage") or {})
    per_call = tokens / calls if calls else 2000
    reserve = 2 * int(state.get("outline_sections") or 0) + 1
    return budget_allows(calls, tokens, reserve, int(reserve * per_call), next_calls, int(next_calls * per_call),
                         settings.max_calls, settings.max_total_tokens)


def entropy_artifact(state: dict[str, Any], new: list[dict[str, Any]]) -> None:
    """OUTDIR/entropy.json: the entropy history so far (layers, refine rounds, blocks, final choice)."""
    history = list(state.get("entropy_history") or []) + list(new)
    artifact("entropy.json", json.dumps(history, indent=1) + "\n")


def outline_artifact(name: str, outline: Any, key: str, extra: str = "") -> None:
    """OUTDIR/<name>: an outline as markdown (every block's outline, the reviewed one)."""
    from llmxmr.core.tree import outline_to_markdown

    artifact(name, f"<!-- outline {key}{extra} -->\n\n" + outline_to_markdown(outline))


def block_start(state: dict[str, Any]) -> dict[str, Any]:
    progress("block", block=state["block"])
    return {"base_key": state["outline_key"], "layer": 0, "round": 0, "layer_best": [], "working_set": [],
            "plan": [], "plan_kind": "layer0", "results": RESET, "base_score": {}}


def _refine_or_end(state: dict[str, Any], settings: Settings, W: list[Suggestion]) -> dict[str, Any]:
    """Leave the layers: the best outline so far (O_b or a unit's) seeds self-refine."""
    base = state.get("base_score") or {}
    best = {"outline_key": state["base_key"], "J": base.get("J", 0.0), "rationale": base.get("rationale", "")}
    for s in W:
        if s.score is not None and s.outline_key and s.score > best["J"]:
            best = {"outline_key": s.outline_key, "J": s.score, "rationale": s.rationale}
    return {"plan": [], "best": best, "round": 1 if settings.refine_rounds > 0 else 0}


def feedback_done(state: dict[str, Any]) -> dict[str, Any]:
    """Join of feedback and score_base: E_0 on the first block, then plan layer 0 (each feedback alone)."""
    settings = _settings(state)
    feedbacks = [Suggestion(**r) for r in state.get("results") or []]
    base = state.get("base_score") or {"J": 0.0}
    update: dict[str, Any] = {"results": RESET, "working_set": [s.model_dump() for s in feedbacks]}
    outlines = [dict(o) for o in state.get("block_outlines") or []]
    if state["block"] == 0 and outlines and outlines[0].get("J") is None:
        outlines[0].update(J=base["J"], E=combine(base["J"], outlines[0]["H"], settings.entropy_lambda))
        update["block_outlines"] = outlines
        update["entropy_history"] = [{"kind": "block", "block": 0, "layer": None, "best": outlines[0]["E"],
                                      "mean": outlines[0]["E"], "parts": {"J": base["J"], "H": outlines[0]["H"],
                                      "lambda": settings.entropy_lambda, "method": base.get("method")}}]
        entropy_artifact(state, update["entropy_history"])
    if feedbacks and settings.max_layers >= 0:
        update.update(plan=[[s.suggestion_id] for s in feedbacks], plan_kind="layer0", layer=0)
    else:
        update.update(_refine_or_end({**state, **update}, settings, []))
    return update


def layer_done(state: dict[str, Any]) -> dict[str, Any]:
    """Fold a layer's units into W (top-k), record it, and plan the next layer or leave the layers."""
    settings = _settings(state)
    new = [Suggestion(**r) for r in state.get("results") or []]
    old = [Suggestion(**s) for s in state.get("working_set") or []]
    kind, layer, block = state["plan_kind"], state["layer"], state["block"]
    if kind == "layer0":
        W = [s for s in new if s.score is not None]  # layer 0's results are all kept: the next layer may pool
    elif kind == "pooling":
        W = top_k(new, settings.top_k)
    else:
        W = top_k(old + new, settings.top_k)
    scores = [s.score for s in new if s.score is not None]
    best_l = max((s.score for s in W if s.score is not None), default=(state.get("layer_best") or [0.0])[-1])
    layer_best = list(state.get("layer_best") or []) + [best_l]
    record = {"kind": "layer", "block": block, "layer": layer, "best": best_l, "mean": mean(scores) if scores else None,
              "parts": {"units": len(new), "failed": len(new) - len(scores), "plan": kind}}
    progress("layer", block=block, layer=layer, best=round(best_l, 2))
    entropy_artifact(state, [record])
    update: dict[str, Any] = {"results": RESET, "working_set": [s.model_dump() for s in W], "layer_best": layer_best,
                              "entropy_history": [record]}
    next_layer = layer + 1
    rng = rng_for(settings.seed, "layer", block, next_layer)
    ids = [s.suggestion_id for s in W]
    pooling = is_pooling(len(W), settings.kernel_width, settings.units)
    units = -(-len(W) // settings.kernel_width) if pooling else settings.units
    stop = (
        next_layer > settings.max_layers
        or not W
        or (settings.mode == "default" and layer_should_stop(layer_best, settings.epsilon, settings.patience, settings.mode))
    )
    if not stop and not within_budget(state, settings, 3 * units + 9 * settings.best_of * settings.refine_rounds):
        update["stop_reason"] = "budget: refinement stopped early to keep the cost of writing"
        stop = True
    if stop:
        update.update(_refine_or_end(state, settings, W))
        return update
    if pooling:
        plan = pooling_groups(ids, settings.kernel_width, rng)
    else:
        plan = sampling_groups(W, settings.kernel_width, settings.units, rng)
        if settings.mode == "default":
            # With |W| < kernel_width the draws repeat; merging a suggestion with itself buys nothing.
            plan = [list(dict.fromkeys(group)) for group in plan]
    update.update(plan=plan, plan_kind="pooling" if pooling else "sampling", layer=next_layer)
    return update


def refine_done(state: dict[str, Any]) -> dict[str, Any]:
    settings = _settings(state)
    best = dict(state["best"])
    cands = [r for r in state.get("results") or [] if r.get("J") is not None]
    if cands:
        top = max(cands, key=lambda r: (r["J"], r["suggestion_id"]))
        if keep_if_better(best.get("J"), top["J"], settings.mode):
            best = {"outline_key": top["outline_key"], "J": top["J"], "rationale": top["rationale"]}
    scores = [r["J"] for r in cands]
    record = {"kind": "refine", "block": state["block"], "layer": None, "best": best["J"],
              "mean": mean(scores) if scores else None, "parts": {"round": state["round"], "candidates": len(state.get("results") or [])}}
    rnd = state["round"] + 1
    entropy_artifact(state, [record])
    return {"best": best, "round": rnd if rnd <= settings.refine_rounds else 0, "results": RESET,
            "entropy_history": [record]}


def make_block_end(env: Env):
    def block_end(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        """C = the block's best outline. Default mode re-scores C and O_b with fresh judge calls (the winner's
        curse) and stops when C is not better; otherwise C is digested for E_{b+1}."""
        store, settings, caller = env.open(state, runtime)
        best = dict(state["best"])
        call = Call(caller, settings)
        if state.get("stop_reason"):
            return call.update()
        if settings.mode == "default":
            if best["outline_key"] == state["base_key"]:
                return call.update(stop_reason="converged: no better outline")
            salt = RESCORE_CANDIDATE + state["block"]
            pair = [(storage.get_outline(store, state["run_id"], best["outline_key"]), f"b{state['block']}:rescore_C"),
                    (storage.get_outline(store, state["run_id"], state["base_key"]), f"b{state['block']}:rescore_Ob")]
            # The two fresh judge calls are independent: one round of model latency, not two.
            with ThreadPoolExecutor(2) as pool:
                j_c, j_b = pool.map(lambda job: contextvars.copy_context().run(
                    judge_outline, call, job[0], job[1], candidate=salt), pair)
            jc = j_c.J if j_c else 0.0
            jb = j_b.J if j_b else 0.0
            if no_better_outline(jc, jb):
                return call.update(stop_reason="converged: no better outline")
            best["J"] = jc
        outline = storage.get_outline(store, state["run_id"], best["outline_key"])
        return call.update(best=best, outline_key=best["outline_key"], outline_sections=len(section_ids(outline)),
                           phase="block_end")

    return block_end


def make_digest_done(env: Env):
    def digest_done(state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        """Structural entropy of the outline just digested; at a block's end E_{b+1} and the stop rules."""
        store = env.store(runtime, state["run_id"])
        settings = _settings(state)
        key = state["outline_key"]
        outline = storage.get_outline(store, state["run_id"], key)
        digests = storage.get_digests(store, state["run_id"], key, [r["paper_id"] for r in state["paper_refs"]])
        H, H_norm, coverage = structural_entropy(leaf_ids(outline), digests)
        if state["phase"] == "skeleton":
            outline_artifact("outline-b0.md", outline, key, f": O_0, the skeleton; H={H:.3f}")
            return {"block_outlines": [{"outline_key": key, "J": None, "H": H, "E": None, "coverage": coverage}]}
        if state["phase"] == "review":
            # A person changed the final outline's structure (nodes/review.py): it is digested; now write it.
            progress("review_digested", outline_key=key, entropy=round(H, 3), coverage=coverage)
            outline_artifact("outline-reviewed.md", outline, key, f": edited by a person; H={H:.3f}")
            return {}
        J = state["best"]["J"]
        E = combine(J, H, settings.entropy_lambda)
        outlines = list(state["block_outlines"]) + [{"outline_key": key, "J": J, "H": H, "E": E, "coverage": coverage}]
        record = {"kind": "block", "block": state["block"] + 1, "layer": None, "best": E, "mean": E,
                  "parts": {"J": J, "H": H, "H_norm": H_norm, "coverage": coverage, "lambda": settings.entropy_lambda}}
        update: dict[str, Any] = {"block_outlines": outlines, "entropy_history": [record]}
        prev = outlines[-2].get("E") or 0.0
        progress("block_done", block=state["block"], entropy=round(E, 3))
        outline_artifact(f"outline-b{state['block'] + 1}.md", outline, key, f": O_{state['block'] + 1}; E={E:.3f}")
        entropy_artifact(state, [record])
        if settings.mode == "default" and entropy_gain_too_small(prev, E, settings.epsilon):
            update["stop_reason"] = "converged: entropy gain < epsilon"
        elif state["block"] + 1 >= settings.max_blocks:
            update["stop_reason"] = f"max_blocks reached ({settings.max_blocks})"
        elif not within_budget(state, settings, 2 * len(state["paper_refs"]) + len(state["groups"]) * 3):
            update["stop_reason"] = "budget: refinement stopped early to keep the cost of writing"
        else:
            update["block"] = state["block"] + 1
        return update

    return digest_done


def select_final(state: dict[str, Any], runtime: Any = None) -> dict[str, Any]:
    """The final outline: the highest E among O_0..O_last (default) or the last one (reference)."""
    settings = _settings(state)
    outlines = state.get("block_outlines") or []
    scores = [o["E"] if o.get("E") is not None else (o.get("J") or 0.0) for o in outlines]
    index = final_outline_index(scores, settings.mode) if scores else 0
    chosen = outlines[index]["outline_key"] if outlines else state["outline_key"]
    update: dict[str, Any] = {"final_key": chosen, "stop_reason": state.get("stop_reason") or "completed"}
    update["entropy_history"] = [{"kind": "final", "block": index, "layer": None, "best": scores[index] if scores else None,
                                  "mean": None, "parts": {"outline_key": chosen}}]
    entropy_artifact(state, update["entropy_history"])
    return update
