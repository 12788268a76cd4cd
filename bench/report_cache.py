"""BENCHMARKS.md's section on prompt caching, units and money (issue 14), from the `cache` part's results
(`results["cache"]`: the code measured; `results["cache_before"]`: the same part on the code before the
prompts were laid out for caching, when recorded)."""

from __future__ import annotations

from typing import Any

from bench.config import ONE_BLOCK, SAME_WORK
from llmxmr.core.prompt_cache import cost
from llmxmr.stages import STAGE_NAMES

# One published price list (per 1M tokens): OpenAI gpt-4.1-mini, as announced on 2025-04-14
# (openai.com/index/gpt-4-1: cached input at 25 % of input; Batch API at 50 % of input and output).
PRICES = {"name": "OpenAI gpt-4.1-mini (published 2025-04-14, unchanged in March 2026)",
          "in": 0.40, "cached": 0.10, "out": 1.60, "batch_in": 0.20, "batch_out": 0.80}
BATCH_STAGES = ("map", "digest")
# The reference implementation's answers per call (o200k tokens, issue 14) and the mock's calibrated stage.
REFERENCE_ANSWERS = [("digest", "digest of the whole outline tree", 2000), ("feedback", "suggestion", "650–840"),
                     ("merge_suggestions", "merged suggestion", "650–840"), ("critique", "critique", "650–840"),
                     ("judge", "judge rationale", 240), ("group", "grouping", 1700), ("charts", "charts", 350),
                     ("write_section", "a section", 525), ("modify", "whole-outline rewrite (reference mode)", 4600)]
WHY_SHORTER = {
    "digest": "ours fills only the sections the paper is relevant to (~3 of 38), the reference's the whole tree",
    "feedback": "our schema bounds a suggestion at 1,200 characters (one concrete change)",
    "merge_suggestions": "our schema bounds a suggestion at 1,200 characters",
    "critique": "our schema bounds a suggestion at 1,200 characters",
    "group": "ours answers topic names and paper numbers only",
    "judge": "our schema bounds a rationale at 1,000 characters",
}


def _i(x: float | None) -> str:
    return "–" if x is None else f"{int(x):,}"


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.0f} %" if b else "–"


def _stages(log: dict[str, Any]) -> dict[str, dict[str, int]]:
    return log["stages"]


def bill(stages: dict[str, dict[str, int]], *, caching: bool, batch: bool) -> float:
    """The run's money at PRICES: cached prompt tokens at the cached price (`caching`), map and digest at
    the Batch API's price (`batch`; no cache discount assumed on batched calls)."""
    total = 0.0
    for st, s in stages.items():
        if batch and st in BATCH_STAGES:
            total += cost(s["prompt_tokens"], s["completion_tokens"], price_in=PRICES["batch_in"],
                          price_out=PRICES["batch_out"])
        else:
            total += cost(s["prompt_tokens"], s["completion_tokens"], price_in=PRICES["in"], price_out=PRICES["out"],
                          cached_tokens=s.get("cached_tokens", 0) if caching else 0,
                          price_cached=PRICES["cached"] if caching else None)
    return total


def _totals(log: dict[str, Any]) -> dict[str, int]:
    return {k: int(log.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "cached_tokens",
                                               "prompt_chars", "completion_chars", "calls")}


def cache_section(results: dict[str, Any]) -> list[str]:
    after = results.get("cache")
    if not after or "sizes" not in after:
        return []
    before = (results.get("cache_before") or {}).get("sizes", {})
    m = after.get("machine") or {}
    mb = (results.get("cache_before") or {}).get("machine") or {}
    L = ["## 7. Prompt caching, units and cost", "",
         f"*Commit `{m.get('commit', '?')}`, {m.get('date', '?')}" + (
             f"; before: commit `{mb.get('commit', '?')}`'s prompts and caller with the same mock" if before else "") + ".*", "",
         "Zero-latency runs (counts only) against the mock with its prefix cache (`bench/prefix_cache.py`), a rule "
         "modelled on OpenAI's prompt caching: a prompt's leading 128-token blocks that equal those of an earlier "
         "request to the same model (within 300 s of their last use) are served from cache, none below 1,024 tokens. "
         "A prefix counts from the arrival of the first request with it: optimistic for the first wave of a fan-out, "
         "and deterministic. Corpora are sized in **characters ÷ 4** (the unit of the reference's measurement): "
         "\"3,000 tokens per document\" is 12,000 characters. Token counts are **tiktoken o200k** unless a column says "
         "characters ÷ 4. The mock's answers are calibrated per stage (table below). Regenerate: "
         "`python bench/run.py --only cache --cache-sizes 60x3000,250x4000`.", ""]
    for label, size in after["sizes"].items():
        modes = size["modes"]
        old = before.get(label, {}).get("modes", {})
        L += [f"### {size['n']} documents × {size['tokens']:,} (characters ÷ 4): corpus {_i(size['corpus_chars4'])} "
              f"characters ÷ 4 = {_i(size['corpus_o200k'])} o200k tokens", ""]
        head = "| stage |"
        rule = "|---|"
        for mode in modes:
            cols = ["prompt tokens", "cached before", "cached after"] if mode in old else ["prompt tokens", "cached"]
            head += "".join(f" {mode}: {c} |" for c in cols)
            rule += "---:|" * len(cols)
        L += [head, rule]
        names = [s for s in STAGE_NAMES if any(s in _stages(r["run"]["log"]) for r in modes.values())]
        for st in names:
            row = f"| {st} |"
            for mode, r in modes.items():
                s = _stages(r["run"]["log"]).get(st)
                if s is None:
                    row += " – |" * (3 if mode in old else 2)
                    continue
                row += f" {_i(s['prompt_tokens'])} |"
                if mode in old:
                    o = _stages(old[mode]["run"]["log"]).get(st)
                    row += f" {_pct(o['cached_tokens'], o['prompt_tokens']) if o else '–'} |"
                row += f" {_pct(s['cached_tokens'], s['prompt_tokens'])} |"
            L.append(row)
        row = "| **total** |"
        for mode, r in modes.items():
            t = _totals(r["run"]["log"])
            row += f" **{_i(t['prompt_tokens'])}** |"
            if mode in old:
                o = _totals(old[mode]["run"]["log"])
                row += f" **{_pct(o['cached_tokens'], o['prompt_tokens'])}** |"
            row += f" **{_pct(t['cached_tokens'], t['prompt_tokens'])}** |"
        L += [row, ""]
        L += ["| mode | calls | prompt o200k | prompt chars ÷ 4 | completion o200k | completion chars ÷ 4 | cached (o200k) | "
              "prompt ÷ corpus (o200k) | repeated request bodies |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for tag, src in (("before", old), ("after", modes)):
            for mode, r in src.items():
                t = _totals(r["run"]["log"])
                rep = sum((r["run"]["log"].get("repeated_bodies") or {}).values())
                L.append(f"| {mode} ({tag}) | {_i(t['calls'])} | {_i(t['prompt_tokens'])} | {_i(t['prompt_chars'] / 4)} | "
                         f"{_i(t['completion_tokens'])} | {_i(t['completion_chars'] / 4)} | "
                         f"{_i(t['cached_tokens'])} ({_pct(t['cached_tokens'], t['prompt_tokens'])}) | "
                         f"{t['prompt_tokens'] / max(1, size['corpus_o200k']):.1f}× | {rep} |")
        if {"default", "reference"} <= set(modes):
            d, ref = _totals(modes["default"]["run"]["log"]), _totals(modes["reference"]["run"]["log"])
            L += ["", f"Default-mode prompt tokens ÷ `mode=reference`'s: **{d['prompt_tokens'] / ref['prompt_tokens']:.2f}** "
                  f"in o200k, **{d['prompt_chars'] / max(1, ref['prompt_chars']):.2f}** in characters ÷ 4 (goal ≤ 0.5). "
                  f"Cached share of the default mode's prompt tokens: **{_pct(d['cached_tokens'], d['prompt_tokens'])}** "
                  f"(goal ≥ 50 %)."]
            one = modes.get(ONE_BLOCK)
            if one is not None:  # the same refinement depth as mode=reference (the mock's scores decide the blocks)
                o = _totals(one["run"]["log"])
                L += ["", f"With one refinement block, as `mode=reference` runs (`max_blocks=1`; the default run above "
                      f"ran {(modes['default']['run'].get('blocks') or 0) + 1}): **{o['prompt_tokens'] / ref['prompt_tokens']:.2f}** "
                      f"in o200k, **{o['prompt_chars'] / max(1, ref['prompt_chars']):.2f}** in characters ÷ 4; cached share "
                      f"**{_pct(o['cached_tokens'], o['prompt_tokens'])}**."]
            same = modes.get(SAME_WORK)
            if same is not None:  # mode=reference's work: one block and no citation check
                o = _totals(same["run"]["log"])
                L += ["", (f"Doing `mode=reference`'s work (one block, and no citation check, which the reference does "
                           f"not make: `--set verify_citations=false`): **{o['prompt_tokens'] / ref['prompt_tokens']:.2f}** "
                           f"in o200k, **{o['prompt_chars'] / max(1, ref['prompt_chars']):.2f}** in characters ÷ 4; cached "
                           f"share **{_pct(o['cached_tokens'], o['prompt_tokens'])}**.")]
        L += ["", f"Cost at {PRICES['name']}: ${PRICES['in']}/M input, ${PRICES['cached']}/M cached input, "
              f"${PRICES['out']}/M output; Batch API ${PRICES['batch_in']}/M input and ${PRICES['batch_out']}/M output "
              "(no cache discount assumed on batched calls).", "",
              "| mode | no caching | with caching | with caching + batch (map, digest) |", "|---|---:|---:|---:|"]
        for tag, src in (("before", old), ("after", modes)):
            for mode, r in src.items():
                st = _stages(r["run"]["log"])
                L.append(f"| {mode} ({tag}) | ${bill(st, caching=False, batch=False):.3f} | "
                         f"${bill(st, caching=True, batch=False):.3f} | ${bill(st, caching=True, batch=True):.3f} |")
        L.append("")
    first = next(iter(after["sizes"].values()))["modes"]
    L += ["### The mock's answers, calibrated", "",
          "Completion tokens per call (o200k) of the mock at the first size, next to the reference's measured answers "
          "where our prompt asks for the same thing; where ours stays shorter, why.", "",
          "| stage | reference's answer | reference | mock (reference mode) | mock (default mode) | why shorter |",
          "|---|---|---:|---:|---:|---|"]
    for st, what, ref in REFERENCE_ANSWERS:
        cells = []
        for mode in ("reference", "default"):
            s = _stages(first[mode]["run"]["log"]).get(st) if mode in first else None
            cells.append(_i(s["completion_tokens"] / s["calls"]) if s and s["calls"] else "–")
        why = WHY_SHORTER.get(st, "")
        if st == "modify":
            why = "default mode answers edits, not the whole outline"
        L.append(f"| {st} | {what} | {ref if isinstance(ref, str) else _i(ref)} | {cells[0]} | {cells[1]} | {why} |")
    L += ["", "Sections 1–4 run against the same calibrated answers, on corpora sized in characters ÷ 4 (each "
          "section names its commit; the decode goal is in §2's \"Realistic decode\").", ""]
    return L
