"""The citation check in the run (default mode), with a scripted model whose answers we control: a writer
that plants wrong citations in a known share of sentences, a verifier that recognises them from the cited
paper's passages, a repair that fixes most of them; survey.json counts exactly what happened, survey.md
marks what is left, and every source is accounted for."""

from __future__ import annotations

import json
import math
import re
import threading

from graph_helpers import ALL_STAGES, papers, run, stage_totals, user_text

from llmxmr.core.claims import UNVERIFIED_MARK
from llmxmr.testing.fake_model import ScriptedChatModel

FAST = dict(mode="default", units=2, max_layers=1, refine_rounds=0, best_of=1, max_blocks=1)
EVIDENCE_RE = re.compile(r"^\[@([^\]]+)\] Paper (\d+):", re.M)  # an evidence block: "[@id] Paper 3: ..."
TOKEN_RE = re.compile(r"w\d+x\d+")  # the words that only paper i's text has: w<i>x<j>


class PlantedWriter:
    """One true sentence per evidence paper; for every third paper, an extra sentence with that paper's words
    that cites the next evidence paper instead (a wrong citation). It records what it planted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.planted: list[str] = []  # the wrong sentences, as written

    def write(self, messages, n):
        evidence = EVIDENCE_RE.findall(user_text(messages))
        if not evidence:  # a parent section without evidence of its own
            return "This section introduces its subsections."
        sentences = []
        for k, (pid, i) in enumerate(evidence):
            sentences.append(f"Paper {i} reports w{i}x3 and w{i}x4 [@{pid}].")
            if int(i) % 3 == 0 and len(evidence) > 1:
                wrong = evidence[(k + 1) % len(evidence)][0]
                planted = f"It also finds w{i}x7 [@{wrong}]."
                sentences.append(planted)
                with self.lock:
                    self.planted.append(planted)
        return " ".join(sentences)


PAPER_RE = re.compile(r"(<document.*?</document>)\n((?:Claim \d+: [^\n]*\n?)+)", re.DOTALL)  # a paper, then its claims
CLAIM_RE = re.compile(r"^Claim (\d+): ([^\n]*)", re.MULTILINE)


def claims_shown(messages) -> list[tuple[int, str, str]]:
    """(number, claim, the cited paper's passages) of a verify prompt: each paper's passages, then its claims."""
    return sorted((int(n), claim, doc) for doc, claims in PAPER_RE.findall(user_text(messages))
                  for n, claim in CLAIM_RE.findall(claims))


def verifier(messages, n):
    """Supported when a claim's paper-specific words are in the passages shown (the cited paper's)."""
    verdicts = []
    for number, claim, passages in claims_shown(messages):
        words = TOKEN_RE.findall(claim)
        ok = bool(words) and all(w in passages for w in words)
        verdicts.append({"claim": number, "passage": 1 if ok else 0, "reason": "scripted", "verdict": 2 if ok else 0})
    return json.dumps({"verdicts": verdicts})


def repairer(messages, n):
    """Re-cites a flagged claim to the paper whose words it carries (paper i is [@id] of "Paper i"), except
    for papers whose number is a multiple of 9: those it returns unchanged."""
    fixes = []
    for part in user_text(messages).split("\n---\n"):
        ids = {i: pid for pid, i in EVIDENCE_RE.findall(part)}
        for number, claim in re.findall(r"^(\d+)\. (.*)\n   check:", part, re.M):
            i = TOKEN_RE.findall(claim)[0][1:].split("x")[0]
            if int(i) % 9 != 0 and i in ids:
                fixes.append({"claim": int(number), "text": f"Paper {i} also finds w{i}x7 [@{ids[i]}]."})
    return json.dumps({"fixes": fixes, "additions": []})


def test_planted_wrong_citations_are_caught_repaired_and_the_rest_marked():
    writer = PlantedWriter()
    model = ScriptedChatModel(overrides={"write_section": writer.write, "verify": verifier,
                                         "repair": repairer})
    out = run(model, papers(12), **FAST)
    report = out["report"]
    v = report["verification"]
    planted = writer.planted
    unfixable = [p for p in planted if int(TOKEN_RE.findall(p)[0][1:].split("x")[0]) % 9 == 0]
    assert planted and unfixable and len(unfixable) < len(planted), "the scenario plants both kinds"
    claims = v["claims"]
    assert v["claims_checked"] == len(claims)
    assert v["supported_before"] == len(claims) - len(planted)
    assert v["supported_after"] == len(claims) - len(unfixable)
    assert v["unsupported"] == len(unfixable)
    assert out["article"].count(UNVERIFIED_MARK) == len(unfixable)
    still = [c for c in claims if c["status"] == "unsupported"]
    assert sorted(c["claim"] for c in still) == sorted(unfixable)
    for c in claims:  # every claim records its cited ids, verdicts, passages and confidence field
        assert c["cited"] and c["checks"] and {"paper_id", "verdict", "passage", "confidence"} <= set(c["checks"][0])
        supported = [k for k in c["checks"] if k["verdict"] == "supported"]
        for k in supported:
            assert k["passage"]["paper_id"] == k["paper_id"] and k["passage"]["end"] > k["passage"]["start"]
    repaired = [c for c in claims if c["repaired"]]
    assert len(repaired) == len(planted) - len(unfixable), "the fixed claims are the repaired ones"
    totals = stage_totals(out)
    assert all(len(c["cited"]) == 1 for c in claims)
    flagged_sections = {c["section_id"] for c in claims if c["repaired"] or c["status"] == "unsupported"}
    assert v["repaired_sections"] == len(flagged_sections)
    # Round 1 checks every written claim (a fix replaces one claim by one) and round 3 the fixed ones again,
    # each as one round of at most max_concurrency (8) calls; the repairs likewise.
    def calls(n: int) -> int:
        return math.ceil(n / math.ceil(n / 8))

    assert v["pairs"] == len(claims) and totals["verify"] == calls(len(claims)) + calls(len(repaired))
    assert totals["repair"] == calls(len(flagged_sections))
    assert all(k["round"] == 2 for c in repaired for k in c["checks"]), "a fixed claim carries its re-check"
    assert all(k["round"] == 1 for c in claims if not c["repaired"] for k in c["checks"])


def test_a_failing_verifier_is_recorded_and_never_blocks_the_article():
    # Garbage, asked again or not, for the claims whose first prompt has an odd length: about half.
    model = ScriptedChatModel(overrides={"verify": lambda m, n: "not json at all" if len(m[1].content) % 2 else None})
    out = run(model, papers(6), **FAST)
    v = out["report"]["verification"]
    assert out["article"] and v["unchecked"] > 0 and v["claims_checked"] > v["unchecked"]
    assert any(f["stage"] == "verify" and f["kind"] == "output_fault" for f in out["report"]["failures"])
    assert UNVERIFIED_MARK not in out["article"], "an unchecked claim is reported, not marked as unsupported"


def test_code_tables_mermaid_and_uncited_sentences_are_untouched():
    block = "```mermaid\ngraph TD; A[@x] --> B\n```"

    def writer(messages, n):
        evidence = EVIDENCE_RE.findall(user_text(messages))
        if not evidence:
            return "This section introduces its subsections."
        pid = evidence[0][0]
        return (f"An uncited remark about caches. Paper one holds [@{pid}].\n\n{block}\n\n"
                f"Code `call([@{pid}])` stays.\n\n| a [@{pid}] | b |\n|---|---|")

    checked = []

    def verify(messages, n):
        shown = claims_shown(messages)
        checked.extend(claim for _, claim, _ in shown)
        return json.dumps({"verdicts": [{"claim": k, "passage": 0, "reason": "no", "verdict": 0} for k, _, _ in shown]})

    model = ScriptedChatModel(overrides={"write_section": writer, "verify": verify,
                                         "repair": lambda m, n: json.dumps({"fixes": [], "additions": []})})
    out = run(model, papers(4), **FAST)
    assert checked and all(c.startswith("Paper one holds") for c in checked), "only the cited prose sentence"
    assert out["article"].count("An uncited remark about caches.") == out["article"].count("Paper one holds")
    assert "graph TD; A[@x] --> B" in out["article"] and "`call([@" in out["article"]
    assert out["article"].count(UNVERIFIED_MARK) == out["article"].count("Paper one holds")


def test_every_source_is_cited_or_excluded_with_a_reason():
    corpus = papers(8) + [{"title": "Empty", "txt": "   "}, dict(papers(1)[0])]  # an empty doc and a duplicate
    model = ScriptedChatModel()
    out = run(model, corpus, **FAST)
    sources = out["report"]["sources"]
    assert sources["documents"] == len(corpus)
    assert len(sources["cited"]) + len(sources["excluded"]) == len(corpus)
    assert all(e["reason"] for e in sources["excluded"])
    reasons = " ".join(e["reason"] for e in sources["excluded"])
    assert "empty" in reasons and "duplicate" in reasons
    cited_in_article = {r["paper_id"] for r in out["references"]}
    assert set(sources["cited"]) == cited_in_article
    assert sources["coverage"] == 1.0, "the writer is told to cite every evidence paper, and the fix-up places the rest"


def test_reference_mode_makes_no_check():
    model = ScriptedChatModel()
    out = run(model, papers(4), mode="reference", units=1, max_layers=0, refine_rounds=0, best_of=1)
    assert "verify" not in stage_totals(out) and "repair" not in stage_totals(out)
    assert out["report"]["verification"] is None and out["report"]["sources"]["documents"] == 4
    assert set(ALL_STAGES) >= {"verify", "repair"}


def test_under_a_call_budget_each_round_of_the_check_keeps_to_what_is_left():
    # Issue 16 §4: a small context makes the verifier take 1 pair a call, many more calls than the plan's one
    # round of max_concurrency: the check holds its rounds to the budget and leaves the rest unchecked.
    settings = dict(FAST, context_window=2048, max_concurrency=4)
    free = run(ScriptedChatModel(), papers(6), **settings)
    spent = sum(u["calls"] for u in free["report"]["usage"].values())
    verify = free["report"]["usage"]["verify"]["calls"]
    assert verify > 8  # far beyond the plan's 4 + 4
    for budget in range(spent - 1, spent - 20, -1):  # the first budget that cannot pay for the whole check
        held = run(ScriptedChatModel(), papers(6), max_calls=budget, **settings)
        if any(f["stage"] == "verify" and f["kind"] == "budget" for f in held["report"]["failures"]):
            break
    else:
        raise AssertionError("no budget held the check back")
    usage = held["report"]["usage"]
    assert sum(u["calls"] for u in usage.values()) <= budget
    assert usage["verify"]["calls"] < verify
    v = held["report"]["verification"]
    assert held["article"] and v["unchecked"] > 0 and v["claims_checked"] > v["unchecked"]
    assert "Section not written" not in held["article"]


PASSAGE_RE = re.compile(r"Passage (\d+):\n(.*?)(?=\n\nPassage \d+:|\n</|\Z)", re.DOTALL)


def test_a_verdicts_passage_number_names_the_passage_shown_under_its_paper():
    """The verifier numbers passages within each paper's block: the recorded span must be the passage the
    verifier named there. Three claims per paper, each on a word from another part of it, so a paper's block
    holds passages that only some of its claims retrieved."""

    def writer(messages, n):
        evidence = EVIDENCE_RE.findall(user_text(messages))
        return " ".join(f"Paper {i} reports w{i}x{j} [@{pid}]." for pid, i in evidence for j in (30, 190, 350)) or "Intro."

    def named_passage(messages, n):
        verdicts = []
        for doc, claims in PAPER_RE.findall(user_text(messages)):
            passages = PASSAGE_RE.findall(doc)
            for number, claim in CLAIM_RE.findall(claims):
                word = TOKEN_RE.findall(claim)[0]
                holding = [int(k) for k, text in passages if word in text.split()]
                verdicts.append({"claim": int(number), "passage": holding[-1] if holding else 0,
                                 "reason": "scripted", "verdict": 2 if holding else 0})
        return json.dumps({"verdicts": verdicts})

    corpus = papers(6, words=400)
    model = ScriptedChatModel(overrides={"write_section": writer, "verify": named_passage})
    out = run(model, corpus, **FAST)
    checks = [(c["claim"], k) for c in out["report"]["verification"]["claims"] for k in c["checks"]]
    supported = [(text, k) for text, k in checks if k["verdict"] == "supported"]
    assert supported and len(supported) == len(checks)  # every claim's word was in a passage shown
    later = 0
    for text, k in supported:
        word = TOKEN_RE.findall(text)[0]
        paper = corpus[int(word[1:].split("x")[0])]["txt"]
        assert k.get("passage"), f"no passage recorded for {text!r}"  # a number read against the wrong list
        span = paper[k["passage"]["start"]:k["passage"]["end"]]
        assert word in span.split(), (word, k["passage"])
        later += k["passage"]["start"] > 0
    assert later, "some named passages lie past the paper's first"
