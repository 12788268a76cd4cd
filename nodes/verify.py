"""Citation check of the written article (default mode): every (claim, cited paper) pair is checked against
the paper's best passages by the verifier; sections with unsupported claims, or with evidence papers the
article leaves uncited, are repaired once; the claims a repair changed are checked once more; what is still
unsupported is marked (or removed) and reported, never passed as verified.

Three rounds of model calls on the critical path: check, repair, re-check. Each fan-out is cut into at most
`max_concurrency` calls (pairs and sections batched), so that each is one round of requests in flight. The
claim arithmetic is `llmxmr.core.claims`, the passage ranking `llmxmr.retrieval`.
"""

from __future__ import annotations

import math
from typing import Any

from langgraph.types import Command, Overwrite

from llmxmr import run_store
from llmxmr.citations import find_citations, merge_adjacent, validate_citations
from llmxmr.core.claims import claim_text, mark_claims, replace_claims, split_claims
from llmxmr.core.entropy import digit_distributions
from llmxmr.core.grouping import batched
from llmxmr.core.tree import find_section
from llmxmr.core.verification import SUPPORTED, article_counts, section_counts, worst
from llmxmr.limits import input_budget, output_tokens
from llmxmr.models.specs import ModelSpec
from llmxmr.nodes.step import Step
from llmxmr.nodes.write import evidence_text
from llmxmr.plan import PASSAGE_REPEAT_SHARE, check_calls
from llmxmr.prompts.verify import SectionToRepair, by_paper
from llmxmr.retrieval import PASSAGE_WORDS, index_for, passage_spans
from llmxmr.stages import STAGES
from llmxmr.state.context import Settings
from llmxmr.state.graph_state import WriterState
from llmxmr.state.responses import repair_reply_for, verdicts_reply_for
from llmxmr.state.tasks import CheckTask, RepairTask

VERIFY, REPAIR = STAGES["verify"], STAGES["repair"]
VERDICTS = {2: "supported", 1: "partial", 0: "unsupported"}
VERDICT_TOKENS = 50  # one verdict of the verifier's answer: claim and passage numbers, a short reason, the digit
PAIR_TOKENS = 60  # a claim and its paper's header in the verifier's prompt, besides the passages
FIXUP_PAPERS = 4  # uncited evidence papers one section is asked to place, at most
SECTIONS_PER_REPAIR = 3  # sections one repair call takes, at most (its answer stays within the stage's cap)
PROMPT_OVERHEAD = 500
CHARTS_TOKENS = 3000  # the charts call after the check (the outline and its answer), reserved under a token budget
REPAIR_SECTION_TOKENS = 1500  # a section, its flagged claims and its evidence in a repair call, and its fixes
PASSAGE_CHARS = 4_000_000  # characters of one paper its passages are cut from, at most (~1,500 pages)


def written(state: WriterState) -> list[str]:
    """Every section id, in writing order (the heights of the schedule, flattened)."""
    return [sid for height in state["schedule"] for sid in height]


def section_text(step: Step, final_key: str, sid: str) -> str:
    return run_store.get_section(step.store, step.run_id, f"{final_key}/{sid}")


def pairs_per_call(settings: Settings, total: int) -> int:
    """Pairs one verifier call takes: spread over `max_concurrency` calls (one round), within the stage's
    input and output budgets."""
    passage_tokens = settings.verify_passages * PASSAGE_WORDS * 4 // 3  # ~4/3 tokens per word
    by_input = (input_budget(settings, VERIFY) - PROMPT_OVERHEAD) // (passage_tokens + PAIR_TOKENS)
    by_output = output_tokens(settings, VERIFY) // VERDICT_TOKENS
    spread = math.ceil(total / max(1, settings.max_concurrency))
    return max(1, min(spread, by_input, by_output))


def calls_allowed(step: Step, sections: int, then: tuple[int, ...], per_call_tokens: int) -> int | None:
    """Calls a round of the citation check may make under the budget: what `max_calls` and `max_total_tokens`
    leave after the charts call and the later rounds' planned calls (`then`: indexes into plan.check_calls),
    at about `per_call_tokens` tokens a call; None without a budget. The check is optional: a round held to
    fewer calls leaves the rest of its claims unchecked, and the article is written within its budget."""
    settings = step.settings
    if settings.max_calls is None and settings.max_total_tokens is None:
        return None
    spent = run_store.get_spent(step.store, step.run_id) or {}
    later = sum(check_calls(settings, sections)[i] for i in then)
    allowed: int | None = None
    if settings.max_calls is not None:
        allowed = max(0, settings.max_calls - int(spent.get("calls", 0)) - int(settings.charts) - later)
    if settings.max_total_tokens is not None:
        charts = CHARTS_TOKENS if settings.charts else 0
        left = settings.max_total_tokens - int(spent.get("tokens", 0)) - charts - later * per_call_tokens
        by_tokens = max(0, left // max(1, per_call_tokens))
        allowed = by_tokens if allowed is None else min(allowed, by_tokens)
    return allowed


def check_call_tokens(settings: Settings, pairs: int) -> int:
    """About the tokens of one verifier call of a round of `pairs` pairs (prompt and verdicts). A call shows
    each cited paper's passages once for all its claims, and claims citing one paper mostly retrieve the
    same passages: the share measured at 60 x 3,000 (`plan.PASSAGE_REPEAT_SHARE`) is not counted again, as
    `llmxmr plan` estimates it. (`pairs_per_call` keeps every pair's passages: a call must fit its window.)"""
    passage_tokens = round(settings.verify_passages * PASSAGE_WORDS * 4 / 3 * (1 - PASSAGE_REPEAT_SHARE))
    return pairs_per_call(settings, pairs) * (passage_tokens + PAIR_TOKENS + VERDICT_TOKENS) + PROMPT_OVERHEAD


def _held(step: Step, stage: str, unit: str, planned: int, allowed: int | None) -> int:
    if allowed is None or planned <= allowed:
        return planned
    step.calls.fail(stage, unit, "budget", f"{allowed} of {planned} calls made to stay within the budget; "
                    "the rest stay unchecked. Fix: a larger max_calls / max_total_tokens")
    return allowed


def _store_batches(step: Step, final_key: str, round_: int, pairs: list[list[Any]], allowed: int | None = None) -> int:
    """The pairs cut into verifier calls (at most `allowed`), stored (checkpoints carry only their count)."""
    # Grouped by cited paper (a stable sort): a call then holds few papers, whose passages it shows once each.
    pairs = sorted(pairs, key=lambda pair: pair[2])
    batches = batched(pairs, pairs_per_call(step.settings, len(pairs))) if pairs else []
    batches = batches[:_held(step, VERIFY.name, f"round{round_}", len(batches), allowed)]
    for b, batch in enumerate(batches):
        run_store.put_check_batch(step.store, step.run_id, final_key, round_, b, batch)
    return len(batches)


# ------------------------------------------------------------------------------------------ rounds 1 and 3


def plan_checks(state: WriterState, step: Step) -> dict[str, Any]:
    """Round 1: every (claim, cited paper) pair of every written section, in batches."""
    pairs = []
    for sid in written(state):
        for claim in split_claims(section_text(step, state["final_key"], sid)):
            pairs += [[sid, claim.index, pid] for pid in claim.cited]
    step.progress("verify", done=0, total=len(pairs))
    allowed = calls_allowed(step, len(written(state)), (1, 2), check_call_tokens(step.settings, len(pairs)))
    batches = _store_batches(step, state["final_key"], 1, pairs, allowed)
    return step.update(check_batches=[batches, 0], check_round=1)


def verify_claims(task: CheckTask, step: Step) -> Command:
    """One verifier call for a batch of pairs: each claim with its cited paper's best passages (BM25)."""
    settings, texts = step.settings, {}
    papers: dict[str, tuple[str, Any] | None] = {}  # paper id -> (title, passage index), read once per task
    records, items, shown = [], [], []
    pairs = run_store.get_check_batch(step.store, step.run_id, task["final_key"], task["round"], task["batch"])
    for sid, index, pid in pairs:
        if sid not in texts:
            texts[sid] = split_claims(section_text(step, task["final_key"], sid))
        claim = texts[sid][index]
        record: dict[str, Any] = {"section_id": sid, "claim": claim.text, "paper_id": pid, "round": task["round"],
                                  "verdict": "unchecked", "passage": None, "confidence": None, "reason": ""}
        records.append(record)
        if pid not in papers:
            try:
                papers[pid] = _paper_index(step, pid)
            except LookupError:
                papers[pid] = None
        if papers[pid] is None:
            record["reason"] = "the cited paper is not in the run's store"
            continue
        title, passage_index = papers[pid]
        passages = passage_index.best(claim_text(claim), settings.verify_passages)
        items.append((claim_text(claim), pid, title, [p.text for p in passages]))
        shown.append((record, passages))
    unit = f"r{task['round']}:batch{task['batch']}"
    if items:
        # The prompt shows each paper's distinct passages once (`by_paper`): a verdict's passage number counts
        # within its claim's paper, so each claim reads against its paper's passages in that order.
        blocks = {b.paper_id: b for b in by_paper(items)}
        by_text = {(item[1], p.text): p for (_, passages), item in zip(shown, items) for p in passages}
        shown = [(record, [by_text[(item[1], t)] for t in blocks[item[1]].passages])
                 for (record, _), item in zip(shown, items)]
        logprobs = ModelSpec.parse(settings.model_for(VERIFY.role)).supports_logprobs
        reply = step.calls.ask(VERIFY, unit, VERIFY.prompt(items, language=settings.language), logprobs=logprobs,
                               schema=verdicts_reply_for(len(items), max(len(b.passages) for b in blocks.values())))
        _read_verdicts(reply, shown)
    run_store.put_verdicts(step.store, step.run_id, task["final_key"], task["round"], task["batch"], records)
    step.progress("verify", done=len(records), unit=unit)
    return Command(update=step.update(), goto=task["then"])


def _paper_index(step: Step, pid: str) -> tuple[str, Any]:
    """(title, passage index) of a cited paper: the index is built once per process (llmxmr.retrieval), from at
    most the paper's first PASSAGE_CHARS characters (every paper of ordinary length whole: the index of a
    200 MB document would not fit in memory), read only when it is not built yet."""

    def load() -> tuple[str, list[tuple[int, int]]]:
        text = run_store.get_document(step.store, step.run_id, pid, max_chars=PASSAGE_CHARS).text
        spans = run_store.get_passages(step.store, step.run_id, pid)
        if spans is None:  # cut once per run; every later check of this paper reads the same spans
            spans = passage_spans(text[:PASSAGE_CHARS])
            if len(text) > PASSAGE_CHARS:
                step.calls.fail(VERIFY.name, pid, "truncated", f"passages taken from the first {PASSAGE_CHARS:,} "
                                "characters of this paper only")
            run_store.put_passages(step.store, step.run_id, pid, spans)
        return text, spans

    return run_store.get_document_info(step.store, step.run_id, pid).title, index_for(step.run_id, pid, load)


def _read_verdicts(reply: Any, shown: list[tuple[dict[str, Any], list[Any]]]) -> None:
    """Fill the records from the verifier's answer; a claim it skipped, or a failed call, stays unchecked."""
    if reply is None:
        for record, _ in shown:
            record["reason"] = "the verifier's answers were unusable"
        return
    confidences = digit_distributions(reply.logprobs, reply.text, "verdict") if reply.logprobs else []
    for k, v in enumerate(reply.value.verdicts):
        if not 1 <= v.claim <= len(shown):
            continue
        record, passages = shown[v.claim - 1]
        record.update(verdict=VERDICTS[v.verdict], reason=v.reason)
        if 1 <= v.passage <= len(passages):
            p = passages[v.passage - 1]
            record["passage"] = {"paper_id": record["paper_id"], "start": p.start, "end": p.end}
        if k < len(confidences) and confidences[k] is not None:
            record["confidence"] = round(confidences[k][v.verdict], 4)
    for record, _ in shown:
        if record["verdict"] == "unchecked":
            record["reason"] = record["reason"] or "the verifier gave no verdict for this claim"


# ------------------------------------------------------------------------------------------ round 2


def plan_repairs(state: WriterState, step: Step) -> dict[str, Any]:
    """The sections to repair, in batches: those with an unsupported claim, and (default mode) those whose
    evidence papers the article cites nowhere (each such paper is given to one section, the first with its
    evidence)."""
    verdicts = run_store.get_verdicts(step.store, step.run_id, state["final_key"], 1, state["check_batches"][0])
    flagged = {v["section_id"] for v in verdicts if v["verdict"] == "unsupported"}
    # Every section of the article counts as citing, the ones an update kept too (`sections` has them).
    every = list(dict.fromkeys(written(state) + list(state.get("sections") or {})))
    cited = {pid for sid in every for pid in find_citations(section_text(step, state["final_key"], sid))}
    uncited: dict[str, list[str]] = {}
    for sid in written(state):
        for pid in state.get("evidence", {}).get(sid, []):
            if pid not in cited and len(uncited.get(sid, [])) < FIXUP_PAPERS:
                uncited.setdefault(sid, []).append(pid)
                cited.add(pid)
    sections = [[sid, uncited.get(sid, [])] for sid in written(state) if sid in flagged or sid in uncited]
    per_call = min(SECTIONS_PER_REPAIR, max(1, math.ceil(len(sections) / max(1, step.settings.max_concurrency))))
    batches = batched(sections, per_call) if sections else []
    allowed = calls_allowed(step, len(written(state)), (2,), per_call * REPAIR_SECTION_TOKENS + PROMPT_OVERHEAD)
    batches = batches[:_held(step, REPAIR.name, "round2", len(batches), allowed)]
    return step.update(repairs=batches)


def repair_sections(task: RepairTask, step: Step) -> dict[str, Any]:
    """One writer call for a batch of sections: fix their unsupported claims (re-cite, weaken, drop) and place
    their uncited evidence papers; the claims it changed or added go to the re-check."""
    settings, key = step.settings, task["final_key"]
    outline = run_store.get_outline(step.store, step.run_id, key)
    budget = input_budget(settings, REPAIR) - PROMPT_OVERHEAD
    if settings.mode == "default" and REPAIR.max_input:
        budget = min(budget, REPAIR.max_input)  # the sections' evidence is cut evenly, not grown with N
    room = budget // max(1, 2 * len(task["sections"]))
    shown, number = [], 0
    mine = {item["section_id"] for item in task["sections"]}
    round1 = [v for v in run_store.get_verdicts(step.store, step.run_id, key, 1, task["round1_batches"])
              if v["section_id"] in mine and v["verdict"] == "unsupported"]
    for item in task["sections"]:
        sid = item["section_id"]
        text = section_text(step, key, sid)
        claims = split_claims(text)
        unsupported = {v["claim"]: v for v in round1 if v["section_id"] == sid}
        flagged = []
        for c in claims:
            if c.text in unsupported and not c.has_code:  # code is never rewritten
                number += 1
                flagged.append((number, c, unsupported[c.text]["reason"] or "not supported by its source"))
        titles = {p["paper_id"]: p["title"] for p in item["papers"]}
        digests = run_store.get_digests(step.store, step.run_id, key, list(titles))
        evidence, allowed = evidence_text(digests, sid, titles, max(200, room))
        allowed |= {pid for c in claims for pid in c.cited}
        shown.append((item, text, claims, flagged, allowed,
                      SectionToRepair(sid, find_section(outline, sid).title, text, [(n, c.text, why) for n, c, why in flagged],
                                      item["uncited"], evidence)))
    unit = f"batch{task['batch']}"
    reply = step.calls.ask(REPAIR, unit, REPAIR.prompt([s[-1] for s in shown], language=settings.language),
                           schema=repair_reply_for(tuple(s[0]["section_id"] for s in shown), number))
    repaired = []
    for item, text, claims, flagged, allowed, _ in shown:
        sid = item["section_id"]
        if reply is None:
            repaired.append({"section_id": sid, "changed": [], "failed": True})
            continue
        by_number = {n: c for n, c, _ in flagged}
        fixes = {}
        for fix in reply.value.fixes:
            if fix.claim in by_number:
                fixed, problems = validate_citations(merge_adjacent(fix.text), allowed)
                for p in problems:
                    step.calls.fail(REPAIR.name, sid, "citation", p)
                fixes[by_number[fix.claim].index] = fixed.strip()
        new = replace_claims(text, claims, fixes)
        added = []
        for addition in reply.value.additions:
            if addition.section_id == sid:
                fixed, _ = validate_citations(merge_adjacent(addition.text), allowed)
                if find_citations(fixed):  # an addition exists to cite an uncited paper
                    added.append(fixed.strip())
        if added:
            new = new.rstrip() + "\n\n" + " ".join(added)
        before = {c.text for c in claims}
        repaired.append({"section_id": sid, "changed": [c.text for c in split_claims(new) if c.text not in before],
                         "failed": False})
        run_store.put_section(step.store, step.run_id, key, sid, new)
    step.progress("repair", done=len(shown), unit=unit)
    return step.update(repaired=repaired)


def plan_rechecks(state: WriterState, step: Step) -> dict[str, Any]:
    """Round 3: the claims a repair changed or added, checked once more."""
    pairs = []
    for r in state.get("repaired") or []:
        changed = set(r["changed"])
        for claim in split_claims(section_text(step, state["final_key"], r["section_id"])):
            if claim.text in changed:
                pairs += [[r["section_id"], claim.index, pid] for pid in claim.cited]
    allowed = calls_allowed(step, len(written(state)), (), check_call_tokens(step.settings, len(pairs)))
    batches = _store_batches(step, state["final_key"], 2, pairs, allowed)
    return step.update(check_batches=[state["check_batches"][0], batches], check_round=2)


# ------------------------------------------------------------------------------------------ the end


def finish_checks(state: WriterState, step: Step) -> dict[str, Any]:
    """Each claim's latest verdicts; still-unsupported claims marked or removed; per-claim records stored and
    the counts returned."""
    settings, key = step.settings, state["final_key"]
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    first: dict[tuple[str, str], str] = {}
    batches = state.get("check_batches") or [0, 0]
    verdicts = [v for r in (1, 2) for v in run_store.get_verdicts(step.store, step.run_id, key, r, batches[r - 1])]
    for v in verdicts:
        latest[(v["section_id"], v["claim"], v["paper_id"])] = v
        if v["round"] == 1:
            first[(v["section_id"], v["claim"])] = worst(first.get((v["section_id"], v["claim"])), v["verdict"])
    repaired = {r["section_id"] for r in state.get("repaired") or []}
    per_section = []
    for sid in written(state):
        text = section_text(step, key, sid)
        claims = split_claims(text)
        records, bad = [], set()
        for c in claims:
            checks = [latest[(sid, c.text, pid)] for pid in c.cited if (sid, c.text, pid) in latest]
            status = None if len(checks) == len(c.cited) else "unchecked"
            for v in checks:
                status = worst(status, v["verdict"])
            status = status or "unchecked"
            if status == "unsupported":
                bad.add(c.index)
            records.append({"claim": c.text, "cited": list(c.cited), "status": status,
                            "repaired": (sid, c.text) not in first,
                            "checks": [{k: v[k] for k in ("paper_id", "verdict", "passage", "confidence", "reason", "round")}
                                       for v in checks]})
        if bad:
            text = mark_claims(text, claims, bad, settings.unsupported_claims)
            run_store.put_section(step.store, step.run_id, key, sid, text)
        before = sum(1 for (s, _), verdict in first.items() if s == sid and verdict in SUPPORTED)
        counts = section_counts(records, supported_before=before, repaired=sid in repaired)
        per_section.append(counts)
        run_store.put_claim_checks(step.store, step.run_id, key, sid, records, counts, int(state.get("version") or 1))
    summary = article_counts(per_section)  # this version's checked sections (finalize counts the whole article)
    step.progress("verify", claims=summary["claims_checked"], unsupported=summary["unsupported"])
    return {"verification": summary, "repairs": [], "repaired": Overwrite([])}
