"""Source accounting: every input document ends up cited in the article or excluded with its reason, so
that cited + excluded = the documents of the corpus, and coverage (cited ÷ documents with evidence) says
how much of the evidence the article uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

OFF_TOPIC = "off-topic for this outline: no section's digest of it has content"
NOT_WRITTEN = "its evidence is only in sections that were not written (see failures)"
UNCITED = "cited nowhere after writing although it had evidence"


class ExcludedSource(BaseModel):
    paper_id: str | None = None  # None: the document never became a paper (unreadable, empty, duplicate)
    source: str = ""  # where it came from in the corpus, for a document that was not loaded
    title: str = ""
    reason: str
    sections: list[str] = Field(default_factory=list)  # the sections it had evidence for


class SourceAccount(BaseModel):
    documents: int  # input documents: loaded + skipped by the loader
    cited: list[str] = Field(default_factory=list)
    with_evidence: int = 0
    coverage: float | None = None  # cited ÷ documents with evidence
    excluded: list[ExcludedSource] = Field(default_factory=list)


def account_sources(
    papers: Sequence[tuple[str, str]],
    skipped: Sequence[Mapping[str, str]],
    evidence: Mapping[str, Sequence[str]],
    cited: set[str],
    unwritten: set[str],
) -> SourceAccount:
    """`papers`: (paper id, title) of every loaded document; `skipped`: the loader's skip reports
    ({"source", "reason"}); `evidence`: section id -> papers with a non-empty digest for it; `cited`: paper ids
    cited in the final article; `unwritten`: sections replaced by a gap marker."""
    sections_of: dict[str, list[str]] = {}
    for sid, pids in evidence.items():
        for pid in pids:
            sections_of.setdefault(pid, []).append(sid)
    account = SourceAccount(documents=len(papers) + len(skipped))
    account.excluded += [ExcludedSource(source=s.get("source", ""), reason=s.get("reason", "not loaded"))
                         for s in skipped]
    for pid, title in papers:
        where = sections_of.get(pid, [])
        if pid in cited:
            account.cited.append(pid)
        elif not where:
            account.excluded.append(ExcludedSource(paper_id=pid, title=title, reason=OFF_TOPIC))
        elif all(sid in unwritten for sid in where):
            account.excluded.append(ExcludedSource(paper_id=pid, title=title, reason=NOT_WRITTEN, sections=where))
        else:
            account.excluded.append(ExcludedSource(paper_id=pid, title=title, reason=UNCITED, sections=where))
    account.with_evidence = sum(1 for pid, _ in papers if sections_of.get(pid))
    if account.with_evidence:
        account.coverage = round(sum(1 for pid in account.cited if sections_of.get(pid)) / account.with_evidence, 4)
    return account
