"""Claims of a section: which pieces are claims, their spans, and replacing, marking or removing them in
place without touching anything else (code, tables, uncited sentences)."""

from __future__ import annotations

from llmxmr.core.claims import (
    UNVERIFIED_MARK,
    claim_text,
    mark_claims,
    replace_claims,
    split_claims,
)
from llmxmr.retrieval import PassageIndex, passage_spans

TEXT = (
    "Caches cut latency by 40% [@a]. Queues help [@b], while locks hurt [@c]. Nothing cited here.\n\n"
    "```mermaid\ngraph TD; A[@x] --> B\n```\n"
    "Use `f(x) [@d]` rarely [@e].\n"
    "| metric [@f] | value |\n|---|---|\n"
    "Batching raises throughput. [@g]\n"
    "Two sources agree [@h; @i]."
)


def test_claims_are_cited_sentences_and_clauses_outside_code_and_tables():
    claims = split_claims(TEXT)
    assert [c.text for c in claims] == [
        "Caches cut latency by 40% [@a].", "Queues help [@b],", "while locks hurt [@c].",
        "Use `f(x) [@d]` rarely [@e].", "Batching raises throughput. [@g]", "Two sources agree [@h; @i].",
    ]
    assert [c.cited for c in claims] == [("a",), ("b",), ("c",), ("e",), ("g",), ("h", "i")]
    assert all(TEXT[c.start:c.end] == c.text for c in claims)
    assert [c.has_code for c in claims] == [False, False, False, True, False, False]
    assert claim_text(claims[5]) == "Two sources agree."


def test_replacing_and_removing_claims_keeps_every_other_character():
    claims = split_claims(TEXT)
    out = replace_claims(TEXT, claims, {0: "Caches cut latency [@b].", 2: "", 3: "Rewritten [@e].", 5: ""})
    assert out.startswith("Caches cut latency [@b]. Queues help [@b]. Nothing cited here.\n\n```mermaid\n")
    assert "Use `f(x) [@d]` rarely [@e]." in out, "a claim with inline code is never rewritten"
    assert "| metric [@f] | value |\n|---|---|\nBatching raises throughput. [@g]\n" in out
    assert not out.endswith("agree [@h; @i].")
    assert split_claims(out)[0].text == "Caches cut latency [@b]."


def test_marking_and_removing_unsupported_claims():
    claims = split_claims(TEXT)
    marked = mark_claims(TEXT, claims, {1, 3}, "mark")
    assert f"Queues help [@b] {UNVERIFIED_MARK}, while locks hurt [@c]." in marked
    assert f"Use `f(x) [@d]` rarely [@e] {UNVERIFIED_MARK}." in marked
    removed = mark_claims(TEXT, claims, {0, 3}, "remove")
    assert removed.startswith("Queues help [@b], while")
    assert f"rarely [@e] {UNVERIFIED_MARK}." in removed, "code is never removed: the claim is marked instead"
    assert TEXT.count("```") == removed.count("```") == marked.count("```")


def test_passages_overlap_and_bm25_ranks_the_one_that_matches():
    text = " ".join(f"filler{i}" for i in range(200)) + " caches cut tail latency by forty percent " + \
        " ".join(f"more{i}" for i in range(200))
    spans = passage_spans(text)
    assert spans == passage_spans(text), "deterministic"
    assert all(spans[i][0] < spans[i - 1][1] for i in range(1, len(spans))), "consecutive passages overlap"
    ranked = PassageIndex(text, spans).best("Caches cut the tail latency", len(spans))
    assert "caches cut tail latency" in ranked[0].text and ranked[0].score > 0
    assert all(p.score == 0 for p in ranked if "caches" not in p.text), "no word in common, no score"
    assert text[ranked[0].start:ranked[0].end] == ranked[0].text
