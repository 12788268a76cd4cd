"""A section's evidence stays within its token room however many papers have evidence for it (issue 12:
at ten million tokens no call's input may grow with N)."""

from __future__ import annotations

from llmxmr.models.tokens import count_tokens
from llmxmr.nodes.write import MIN_EVIDENCE, evidence_text
from llmxmr.state.records import Digest


def digests(n: int) -> tuple[list[Digest], dict[str, str]]:
    ds = [Digest(paper_id=f"p{i}", outline_key="k", sections={"s1": f"Paper {i} finds " + "much " * 200})
          for i in range(n)]
    return ds, {f"p{i}": f"A study of topic {i}" for i in range(n)}


def test_evidence_of_many_papers_is_bounded_by_the_room() -> None:
    sizes = {}
    for n in (10, 100, 1000):
        ds, titles = digests(n)
        text, cited = evidence_text(ds, "s1", titles, 8000)
        sizes[n] = count_tokens(text)
        assert cited == {f"p{i}" for i in range(len(cited))}  # the first papers, in order: stable on resume
        assert all(f"[@{pid}]" in text for pid in cited)
    assert sizes[1000] <= 8000 * 1.05  # the room, give or take the joins between papers
    assert sizes[1000] <= sizes[100] * 1.1  # no growth from 100 to 1,000 papers


def test_few_papers_are_all_shown_and_cut_evenly() -> None:
    ds, titles = digests(4)
    text, cited = evidence_text(ds, "s1", titles, 400)
    assert cited == {"p0", "p1", "p2", "p3"}
    assert 4 * MIN_EVIDENCE <= count_tokens(text) <= 400 + 4 * 12
