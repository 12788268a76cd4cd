"""`llmxmr eval`'s offline part: any system's article read into one shape (numbered or unnumbered headings,
numeric, pandoc and author-year citations, references mapped to the corpus), the metrics' arithmetic on
hand-made inputs, the bootstrap, and a comparison of one of our runs with a foreign Markdown article."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graph_helpers import our_run_on_disk, papers

from llmxmr import cli
from llmxmr.corpus import documents_from_papers
from llmxmr.eval.articles import load_article, map_reference, parse_markdown
from llmxmr.eval.compare import evaluate, load_corpus, render
from llmxmr.eval.offline import offline_metrics
from llmxmr.eval.stats import bootstrap

CORPUS_PAPERS = [
    {"title": "Attention is all you need", "txt": "The transformer relies on attention. It drops recurrence entirely.",
     "doi": "10.5555/3295222.3295349"},
    {"title": "Deep residual learning for image recognition", "txt": "Residual connections ease training of very deep networks."},
    {"title": "Adam: a method for stochastic optimization", "txt": "Adam adapts learning rates from moment estimates."},
]
DOCS, _ = documents_from_papers(CORPUS_PAPERS, "test")

FOREIGN = """# A survey of deep learning

Introduction without citations that is long enough to count as a claim here.

## Architectures

The transformer relies on attention and drops recurrence entirely (Vaswani et al., 2017). Residual
connections ease the training of very deep networks [2]. Both ideas spread quickly [1-2].

### Optimisers

Adam adapts learning rates from moment estimates (Kingma and Ba, 2015; Nobody, 2001).

## References

[1] Vaswani, A. et al. (2017). Attention is all you need. NeurIPS. doi:10.5555/3295222.3295349
[2] He, K. et al. (2016). Deep residual learning for image recognition. CVPR.
[3] Kingma, D. and Ba, J. (2015). Adam: a method for stochastic optimization. ICLR.
[4] Someone (2020). A paper that is not in this corpus at all.
"""


def test_references_map_by_identifier_or_title_and_the_rest_is_reported():
    assert map_reference("Vaswani et al. 2017. Something else. doi:10.5555/3295222.3295349.", DOCS) == DOCS[0].paper_id
    assert map_reference("He et al. Deep residual learning for image recognition. CVPR 2016", DOCS) == DOCS[1].paper_id
    assert map_reference("A paper that is not in this corpus", DOCS) is None
    article = parse_markdown(FOREIGN, DOCS, system="other", source="x.md")
    assert [r.text for r in article.unmapped] == ["Someone (2020). A paper that is not in this corpus at all."]


def test_unnumbered_headings_and_every_citation_style_are_read():
    article = parse_markdown(FOREIGN, DOCS, system="other", source="x.md")
    assert article.title == "A survey of deep learning"
    assert [(s.heading, s.level) for s in article.sections] == [("Architectures", 1), ("Optimisers", 2)]
    arch, opt = article.sections
    # (Vaswani et al., 2017) by first author and year, [2], and the range [1-2] = 1, 2.
    assert arch.cited == [DOCS[1].paper_id, DOCS[0].paper_id, DOCS[1].paper_id, DOCS[0].paper_id]
    assert arch.unresolved == 0
    assert opt.cited == [DOCS[2].paper_id] and opt.unresolved == 1, "(Nobody, 2001) names no reference"


def test_offline_metrics_on_a_hand_made_article():
    article = parse_markdown(FOREIGN, DOCS, system="other", source="x.md")
    m = offline_metrics(article, DOCS)
    assert m["citations_resolve"].mean == pytest.approx(5 / 6)
    assert m["reference_precision"].mean == pytest.approx(3 / 4)
    assert m["corpus_coverage"].mean == 1.0
    assert (m["sections"].mean, m["outline_depth"].mean, m["outline_breadth"].mean) == (2, 2, 1)
    assert m["claims_without_citation"].mean == 0.0, "every claim under a heading carries a citation"
    # Three cited claims of six words or more ("Both ideas spread quickly [1-2]." is too short to be one).
    assert 0.5 < m["lexical_support"].mean <= 1.0 and m["lexical_support"].n == 3


def test_a_corpus_with_content_instead_of_txt_loads(tmp_path: Path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"title": "T", "papers": [{"title": p["title"], "content": p["txt"]}
                                                          for p in CORPUS_PAPERS]}) + "\n")
    docs = load_corpus(path)
    assert [d.text for d in docs] == [p["txt"] for p in CORPUS_PAPERS]


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    a, b = bootstrap(values, seed=3), bootstrap(values, seed=3)
    assert a == b and a.low <= a.mean <= a.high and a.n == 8 and a.mean == 0.625
    assert 0.2 < a.low < 0.625 < a.high < 1.0
    assert bootstrap([], seed=1).mean is None
    assert bootstrap([0.4], seed=1).low == bootstrap([0.4], seed=1).high == 0.4


def test_our_run_and_a_foreign_article_in_one_table(tmp_path: Path, capsys):
    corpus = papers(6)
    ours, corpus_path = our_run_on_disk(tmp_path, corpus)
    foreign = tmp_path / "other.md"
    foreign.write_text(f"# Other\n\n## Part\n\nPaper 0 reports results worth a citation here [1].\n\n"
                       f"## References\n\n[1] {corpus[0]['title']}\n[2] Not in the corpus\n")
    assert cli.main(["eval", str(ours), str(foreign), "--corpus", str(corpus_path), "-o", str(tmp_path / "ev")]) == 0
    result = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert [s["system"] for s in result["systems"]] == ["ours", "other"]
    mine, other = result["systems"]
    assert mine["metrics"]["citations_resolve"]["mean"] == 1.0 and mine["unmapped_references"] == []
    assert mine["metrics"]["reference_precision"]["mean"] == 1.0
    assert mine["stages"] and mine["stages"][0]["block"] == 0, "our runs show the outline per block"
    assert [r["step"] for r in mine["layers"]][:2] == ["layer 0", "layer 1"], "and every layer of the loop"
    assert other["layers"] == [] and "the refinement loop" in (tmp_path / "ev" / "eval.md").read_text()
    assert other["unmapped_references"] == ["Not in the corpus"]
    table = (tmp_path / "ev" / "eval.md").read_text()
    assert "| metric | better | ours | other |" in table and "Not in the corpus" in table
    assert render(result) == table
    assert load_article(ours, documents_from_papers(corpus, "x")[0]).report is not None
    assert evaluate([foreign], documents_from_papers(corpus, "x")[0])["systems"][0]["system"] == "other"


def test_the_evaluator_is_a_graph_too(tmp_path: Path):
    from llmxmr.graph import eval_graph

    corpus_path = tmp_path / "corpus.jsonl"
    corpus_path.write_text(json.dumps({"title": "T", "papers": CORPUS_PAPERS}) + "\n")
    foreign = tmp_path / "other.md"
    foreign.write_text(FOREIGN)
    out = eval_graph.invoke({"articles": [str(foreign), str(foreign)], "corpus_path": str(corpus_path),
                             "names": ["a", "b"]})
    assert [s["system"] for s in out["result"]["systems"]] == ["a", "b"]
    assert out["table"] == render(out["result"]) and "| metric | better | a | b |" in out["table"]
    assert {"score_article", "compare"} <= set(eval_graph.get_graph().nodes)


def test_density_counts_distinct_claims_and_numbers_are_checked_in_their_sources():
    from llmxmr.eval.judge import density, distinct_claims
    from llmxmr.eval.offline import numeric_support

    claims = ["Caches cut tail latency by forty percent.", "caches cut TAIL latency by forty percent",
              "Caches cut the tail latency by forty percent.", "Locks serialise writers.", "  "]
    assert distinct_claims(claims) == ["Caches cut tail latency by forty percent.", "Locks serialise writers."]
    assert density(claims, 500) == 4.0 and density([], 0) is None
    docs, _ = documents_from_papers([{"title": "Caching at scale study", "txt": "Caching cut latency by 40% in 3 of 4 sites."}], "t")
    md = ("# T\n\n## S\n\nCaching cut latency by 40% in 3 of 4 sites [1]. Caching cut latency by 55% in all 4 sites [1].\n\n"
          "## References\n\n[1] Caching at scale study\n")
    assert numeric_support(parse_markdown(md, docs, system="x", source="x"), docs) == [1.0, 0.5]
