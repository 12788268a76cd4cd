"""Control nodes of the refinement loop (docs/METHOD.md, "When the loop stops"): the joins of every fan-out. They make no model calls;
the decisions themselves are pure functions in `llmxmr.core`."""

from __future__ import annotations

import json
from statistics import mean
from typing import Any

from langgraph.types import Overwrite

from llmxmr import run_store
from llmxmr.core.convergence import (
    budget_allows,
    entropy_gain_too_small,
    final_outline_index,
    keep_if_better,
    layer_should_stop,
    no_better_outline,
)
from llmxmr.core.entropy import combine, structural_entropy
from llmxmr.core.rng import rng_for
from llmxmr.core.sampling import is_pooling, pooling_groups, sampling_groups, top_k
from llmxmr.core.tree import (
    cap_sections,
    leaf_ids,
    outline_key,
    outline_to_markdown,
    section_ids,
)
from llmxmr.nodes.step import Step
from llmxmr.nodes.update import probe_decided, probing
from llmxmr.plan import block_calls, max_sections_within, writing_cost
from llmxmr.state.context import Settings
from llmxmr.state.graph_state import SurveyState
from llmxmr.state.records import Score, Suggestion

RESCORE_CANDIDATE = 1000  # candidate index of the fresh judge calls at block end: an independent sample (seeded)


def cleared() -> dict[str, Overwrite]:
    """A join has consumed its fan-out's records: both channels start empty (fresh lists, never shared)."""
    return {"results": Overwrite([]), "scores": Overwrite([])}


def scores_by_unit(state: SurveyState) -> dict[str, tuple[str, Score]]:
    """entropy_score's records of the fan-out just joined, usable ones only: unit -> (outline key, score)."""
    return {r["unit"]: (r["outline_key"], Score(**{k: v for k, v in r.items() if k not in ("unit", "outline_key")}))
            for r in state.get("scores") or [] if r.get("method") != "failed"}


def _totals(usage: dict[str, dict[str, int]]) -> tuple[int, int]:
    calls = sum(u.get("calls", 0) for u in usage.values())
    tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in usage.values())
    return calls, tokens


def within_budget(state: dict[str, Any], settings: Settings, next_calls: int) -> bool:
    """Room for `next_calls` more refinement calls while still reserving the cost of writing the outline
    (the same plan `llmxmr plan` and the CLI's minimum budget use, citation check included)."""
    if settings.max_calls is None and settings.max_total_tokens is None:
        return True
    calls, tokens = _totals(state.get("usage") or {})
    per_call = tokens / calls if calls else 2000
    paper_tokens = [int(r.get("tokens") or 0) for r in state.get("paper_refs") or []]
    reserve_calls, reserve_tokens = writing_cost(settings, paper_tokens, int(state.get("outline_sections") or 0))
    return budget_allows(calls, tokens, reserve_calls + 1, reserve_tokens, next_calls, int(next_calls * per_call),
                         settings.max_calls, settings.max_total_tokens)


def entropy_artifact(step: Step, state: SurveyState, new: list[dict[str, Any]]) -> None:
    """OUTDIR/entropy.json: the entropy history so far (layers, refine rounds, blocks, final choice)."""
    history = list(state.get("entropy_history") or []) + list(new)
    step.artifact("entropy.json", json.dumps(history, indent=1) + "\n")


def outline_artifact(step: Step, name: str, outline: Any, key: str, extra: str = "") -> None:
    """OUTDIR/<name>: an outline as markdown (every block's outline, the reviewed one)."""
    step.artifact(name, f"<!-- outline {key}{extra} -->\n\n" + outline_to_markdown(outline))


def block_start(state: SurveyState, step: Step) -> dict[str, Any]:
    step.progress("block", block=state["block"])
    # A block, once started, pays for feedback, layer 0 and a digest pass: without room for them and the
    # writing after, the run writes the outline it has (the minimum budget counts no block).
    need = block_calls(step.settings, len(state["paper_refs"]), len(state["groups"]))
    if not within_budget(state, step.settings, need):
        return {"stop_reason": "budget: refinement skipped to keep the cost of writing"}
    return {"base_key": state["outline_key"], "layer": 0, "round": 0, "layer_best": [], "working_set": [],
            "plan": [], "plan_kind": "layer0", "base_score": {}, "rescore_keys": [], **cleared()}


def _rescore_keys(state: SurveyState, settings: Settings, best: dict[str, Any]) -> list[str]:
    """Default mode re-scores the block's best outline C and O_b with fresh judge calls at the block's end
    (the winner's curse), unless C is O_b."""
    if settings.mode != "default" or best["outline_key"] == state["base_key"]:
        return []
    return [best["outline_key"], state["base_key"]]


def _leave_layers(state: SurveyState, settings: Settings, W: list[Suggestion]) -> dict[str, Any]:
    """Leave the layers: the best outline so far (O_b or a unit's) seeds self-refine."""
    base = state.get("base_score") or {}
    best = {"outline_key": state["base_key"], "J": base.get("J", 0.0), "rationale": base.get("rationale", "")}
    for s in W:
        if s.score is not None and s.outline_key and s.score > best["J"]:
            best = {"outline_key": s.outline_key, "J": s.score, "rationale": s.rationale}
    # Self-refine is optional: its rounds run only when the budget still covers them, the block's close and
    # writing after (layers that stopped by their own rule checked nothing of it).
    refine = settings.refine_rounds > 0 and within_budget(
        state, settings, 3 * settings.best_of * settings.refine_rounds + block_close_calls(state, settings))
    return {"plan": [], "best": best, "round": 1 if refine else 0, "candidates": settings.best_of,
            "rescore_keys": [] if refine else _rescore_keys(state, settings, best)}


def block_close_calls(state: SurveyState, settings: Settings) -> int:
    """Calls that close a block once its layers are left: the fresh re-scores (default) and C's digest pass."""
    return (2 if settings.mode == "default" else 0) + len(state.get("paper_refs") or [])


def feedback_done(state: SurveyState, step: Step) -> dict[str, Any]:
    """Join of feedback and O_b's score: E_0 on the first block, then plan layer 0 (each feedback alone)."""
    settings = step.settings
    feedbacks = [Suggestion(**r) for r in state.get("results") or []]
    scored = list(scores_by_unit(state).values())  # the one score of O_b
    base = scored[0][1] if scored else Score(J=0.0, method="failed", reason="the judge's answers for O_b were unusable")
    update: dict[str, Any] = {**cleared(), "base_score": base.model_dump(),
                              "working_set": [s.model_dump() for s in feedbacks]}
    outlines = [dict(o) for o in state.get("block_outlines") or []]
    if state["block"] == 0 and outlines and outlines[0].get("J") is None:
        outlines[0].update(J=base.J, E=combine(base.J, outlines[0]["H"], settings.entropy_lambda))
        update["block_outlines"] = outlines
        update["entropy_history"] = [{"kind": "block", "block": 0, "layer": None, "best": outlines[0]["E"],
                                      "mean": outlines[0]["E"], "parts": {"J": base.J, "H": outlines[0]["H"],
                                      "lambda": settings.entropy_lambda, "method": base.method}}]
        entropy_artifact(step, state, update["entropy_history"])
    if feedbacks and settings.max_layers >= 0:
        update.update(plan=[[s.suggestion_id] for s in feedbacks], plan_kind="layer0", layer=0)
    else:
        update.update(_leave_layers({**state, **update}, settings, []))
    return update


def scored_suggestions(state: SurveyState) -> list[Suggestion]:
    """The units' suggestions (`results`) with their outlines' scores (`scores`); unscored = failed unit."""
    scores = scores_by_unit(state)
    out = []
    for r in state.get("results") or []:
        s = Suggestion(**r)
        if s.suggestion_id in scores:
            key, score = scores[s.suggestion_id]
            s.outline_key, s.score, s.rationale = key, score.J, score.rationale
        out.append(s)
    return out


def layer_done(state: SurveyState, step: Step) -> dict[str, Any]:
    """Fold a layer's scored units into W (top-k), record it, and plan the next layer or leave the layers."""
    settings = step.settings
    new = scored_suggestions(state)
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
    step.progress("layer", block=block, layer=layer, best=round(best_l, 2))
    entropy_artifact(step, state, [record])
    update: dict[str, Any] = {**cleared(), "working_set": [s.model_dump() for s in W], "layer_best": layer_best,
                              "entropy_history": [record]}
    if kind == "layer0" and probing(state):  # an update's refine=auto: go on only if the new suggestions help
        update.update(probe_decided(state, settings, best_l))
        if update.get("stop_reason"):
            return update
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
    if not stop and not within_budget(state, settings, 3 * units + block_close_calls(state, settings)):
        update["stop_reason"] = "budget: refinement stopped early to keep the cost of writing"
        stop = True
    if stop:
        update.update(_leave_layers(state, settings, W))
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


def refine_done(state: SurveyState, step: Step) -> dict[str, Any]:
    """Keep the best scored candidate of a self-refine round (default: only if better); plan the next round."""
    settings = step.settings
    best = dict(state["best"])
    scores = scores_by_unit(state)
    cands = [(*scores[r["suggestion_id"]], r["suggestion_id"]) for r in state.get("results") or []
             if r["suggestion_id"] in scores]  # (outline key, score, unit)
    if cands:
        key, top, _ = max(cands, key=lambda c: (c[1].J, c[2]))
        if keep_if_better(best.get("J"), top.J, settings.mode):
            best = {"outline_key": key, "J": top.J, "rationale": top.rationale}
    js = [c[1].J for c in cands]
    record = {"kind": "refine", "block": state["block"], "layer": None, "best": best["J"],
              "mean": mean(js) if js else None, "parts": {"round": state["round"], "candidates": len(state.get("results") or [])}}
    entropy_artifact(step, state, [record])
    rnd = state["round"] + 1 if state["round"] + 1 <= settings.refine_rounds else 0
    return {**cleared(), "best": best, "round": rnd, "entropy_history": [record],
            "rescore_keys": _rescore_keys(state, settings, best) if rnd == 0 else []}


def block_end(state: SurveyState, step: Step) -> dict[str, Any]:
    """C = the block's best outline. Default mode takes the fresh re-scores of C and O_b (entropy_score) and
    stops when C is not better; otherwise C goes on to be digested for E_{b+1}."""
    best = dict(state["best"])
    if state.get("stop_reason"):
        return {}
    if step.settings.mode == "default":
        if best["outline_key"] == state["base_key"]:
            return {"stop_reason": "converged: no better outline"}
        scores = scores_by_unit(state)
        jc, jb = (scores[u][1].J if u in scores else 0.0 for u in rescore_units(state["block"]))
        if no_better_outline(jc, jb):
            return {**cleared(), "stop_reason": "converged: no better outline"}
        best["J"] = jc
    outline = run_store.get_outline(step.store, step.run_id, best["outline_key"])
    return {**cleared(), "best": best, "outline_key": best["outline_key"], "outline_sections": len(section_ids(outline)),
            "rescore_keys": []}


def rescore_units(block: int) -> tuple[str, str]:
    """The units of the two fresh re-scores at a block's end: C's, then O_b's."""
    return f"b{block}:rescore_C", f"b{block}:rescore_Ob"


def _digested(state: SurveyState, step: Step) -> tuple[Any, str, float, float, float]:
    """The outline just digested, its key, and (H, H_norm, coverage) of its digests."""
    key = state["outline_key"]
    outline = run_store.get_outline(step.store, step.run_id, key)
    digests = run_store.get_digests(step.store, step.run_id, key, [r["paper_id"] for r in state["paper_refs"]])
    return (outline, key, *structural_entropy(leaf_ids(outline), digests))


def skeleton_entropy(state: SurveyState, step: Step) -> dict[str, Any]:
    """Structural entropy of O_0 (its J comes with the first block's score of O_b)."""
    outline, key, H, _, coverage = _digested(state, step)
    outline_artifact(step, "outline-b0.md", outline, key, f": O_0, the skeleton; H={H:.3f}")
    return {"block_outlines": [{"outline_key": key, "J": None, "H": H, "E": None, "coverage": coverage}]}


def block_entropy(state: SurveyState, step: Step) -> dict[str, Any]:
    """E_{b+1} of the block's outline C, now digested, and the block-level stop rules."""
    settings = step.settings
    outline, key, H, H_norm, coverage = _digested(state, step)
    J = state["best"]["J"]
    E = combine(J, H, settings.entropy_lambda)
    outlines = list(state["block_outlines"]) + [{"outline_key": key, "J": J, "H": H, "E": E, "coverage": coverage}]
    record = {"kind": "block", "block": state["block"] + 1, "layer": None, "best": E, "mean": E,
              "parts": {"J": J, "H": H, "H_norm": H_norm, "coverage": coverage, "lambda": settings.entropy_lambda}}
    update: dict[str, Any] = {"block_outlines": outlines, "entropy_history": [record]}
    prev = outlines[-2].get("E") or 0.0
    step.progress("block_done", block=state["block"], entropy=round(E, 3))
    outline_artifact(step, f"outline-b{state['block'] + 1}.md", outline, key, f": O_{state['block'] + 1}; E={E:.3f}")
    entropy_artifact(step, state, [record])
    if settings.mode == "default" and entropy_gain_too_small(prev, E, settings.epsilon):
        update["stop_reason"] = "converged: entropy gain < epsilon"
    elif state.get("update"):
        update["stop_reason"] = "update: one refinement block"
    elif state["block"] + 1 >= settings.max_blocks:
        update["stop_reason"] = f"max_blocks reached ({settings.max_blocks})"
    elif not within_budget(state, settings, 2 * len(state["paper_refs"]) + len(state["groups"]) * 3):
        update["stop_reason"] = "budget: refinement stopped early to keep the cost of writing"
    else:
        update["block"] = state["block"] + 1
    return update


def review_digested(state: SurveyState, step: Step) -> dict[str, Any]:
    """A person changed the final outline's structure (nodes/review.py): it is digested; now it is written."""
    outline, key, H, _, coverage = _digested(state, step)
    step.progress("review_digested", outline_key=key, entropy=round(H, 3), coverage=coverage)
    outline_artifact(step, "outline-reviewed.md", outline, key, f": edited by a person; H={H:.3f}")
    return {}


def fit_to_budget(state: SurveyState, step: Step, key: str) -> str:
    """The final outline cut to the sections the budget left can write (citation check included), so that a run
    that got this far finishes its article: an outline's size is only known once it is drafted. The cut
    outline's digests are the kept sections of the original's (no model call); returns its key."""
    settings = step.settings
    spent = run_store.get_spent(step.store, step.run_id) or {}
    calls_left = None if settings.max_calls is None else settings.max_calls - int(spent.get("calls", 0))
    tokens_left = None if settings.max_total_tokens is None else settings.max_total_tokens - int(spent.get("tokens", 0))
    paper_tokens = [int(r.get("tokens") or 0) for r in state["paper_refs"]]
    fit = max_sections_within(settings, paper_tokens, calls_left, tokens_left)
    outline = run_store.get_outline(step.store, step.run_id, key)
    had = len(section_ids(outline))
    if fit is None or had <= fit:
        return key
    cut = cap_sections(outline, fit)
    new_key = outline_key(cut)
    run_store.put_outline(step.store, step.run_id, new_key, cut)
    kept = set(section_ids(cut))
    for digest in run_store.get_digests(step.store, step.run_id, key, [r["paper_id"] for r in state["paper_refs"]]):
        run_store.put_digest(step.store, step.run_id, digest.model_copy(update={
            "outline_key": new_key, "sections": {k: v for k, v in digest.sections.items() if k in kept}}))
    left = f"{calls_left} calls" if calls_left is not None else f"{tokens_left} tokens"
    step.calls.fail("write_section", "outline", "budget",
                    f"the final outline was cut from {had} to {fit} sections: {left} of the budget were left to "
                    "write it. Fix: a larger max_calls / max_total_tokens writes the whole outline")
    outline_artifact(step, "outline-final.md", cut, new_key, f": cut to {fit} sections to fit the budget")
    return new_key


def select_final(state: SurveyState, step: Step) -> dict[str, Any]:
    """The final outline by key: the highest E among O_0..O_last (default) or the last one (reference)."""
    outlines = state.get("block_outlines") or []
    scores = [o["E"] if o.get("E") is not None else (o.get("J") or 0.0) for o in outlines]
    index = final_outline_index(scores, step.settings.mode) if scores else 0
    chosen = fit_to_budget(state, step, outlines[index]["outline_key"] if outlines else state["outline_key"])
    update: dict[str, Any] = {"final_key": chosen, "stop_reason": state.get("stop_reason") or "completed"}
    update["entropy_history"] = [{"kind": "final", "block": index, "layer": None, "best": scores[index] if scores else None,
                                  "mean": None, "parts": {"outline_key": chosen}}]
    entropy_artifact(step, state, update["entropy_history"])
    step.progress("select_final", stop_reason=update["stop_reason"])
    return step.update(**update)
