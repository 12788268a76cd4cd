"""The pure decisions of an update (llmxmr.core.changes and llmxmr.updates): which sections are written
again and why, the refine=auto rule, reference changes, the CHANGELOG text, and the request checks."""

from __future__ import annotations

import pytest

from llmxmr.core.changes import (
    evidence_by_section,
    reference_changes,
    refine_decision,
    removed_sections,
    render_changelog,
    sections_to_rewrite,
)
from llmxmr.corpus import CorpusError
from llmxmr.state.records import Digest, Outline, Section
from llmxmr.updates import UpdateError, check_finished, check_overrides, plan_update


def outline(*, retitle: str | None = None, drop_s6: bool = False) -> Outline:
    """s1 (s2 (s3, s4), s5), s6 (s7)."""
    s3 = Section(section_id="s3", title=retitle or "Leaf A")
    inner = Section(section_id="s2", title="Inner", children=[s3, Section(section_id="s4", title="Leaf B")])
    s1 = Section(section_id="s1", title="Top", children=[inner, Section(section_id="s5", title="Leaf C")])
    s6 = Section(section_id="s6", title="Other", children=[Section(section_id="s7", title="Leaf D")])
    return Outline(title="T", sections=[s1] if drop_s6 else [s1, s6], next_id=8)


def test_new_evidence_rewrites_the_section_and_every_ancestor_only() -> None:
    old_ev = {"s3": {"p1": "a"}, "s7": {"p2": "b"}}
    new_ev = {"s3": {"p1": "a", "p9": "new"}, "s7": {"p2": "b"}}
    reasons = sections_to_rewrite(outline(), outline(), old_ev, new_ev, {})
    assert reasons == {"s1": "parent of rewritten s2", "s2": "parent of rewritten s3", "s3": "evidence added from p9"}


def test_removed_documents_rewrite_where_they_were_evidence_or_cited() -> None:
    old_ev = {"s4": {"p1": "a", "p2": "b"}, "s7": {"p2": "c"}}
    new_ev = {"s4": {"p1": "a"}}
    reasons = sections_to_rewrite(outline(), outline(), old_ev, new_ev, {"s5": ["p2"]})
    assert reasons["s4"] == "evidence dropped from p2"
    assert reasons["s7"] == "evidence dropped from p2" and reasons["s6"] == "parent of rewritten s7"
    assert reasons["s5"] == "cited removed p2"
    assert set(reasons) == {"s1", "s2", "s4", "s5", "s6", "s7"}  # s3 keeps its text
    assert list(reasons) == ["s1", "s2", "s4", "s5", "s6", "s7"]  # outline order


def test_a_refined_outline_rewrites_changed_entries_and_reports_removed_sections() -> None:
    new = outline(retitle="Leaf A, refined", drop_s6=True)
    old_ev = {"s3": {"p1": "a"}, "s4": {"p2": "b"}}
    reasons = sections_to_rewrite(outline(), new, old_ev, {"s3": {"p1": "a"}, "s4": {"p2": "b, reworded"}}, {})
    assert reasons["s3"] == "its outline entry changed"  # s4: the same paper, a reworded digest: kept
    assert set(reasons) == {"s1", "s2", "s3"}
    assert removed_sections(outline(), new) == ["s6", "s7"]
    grown = Outline(title="T", sections=[*outline().sections, Section(section_id="s8", title="New")], next_id=9)
    assert sections_to_rewrite(outline(), grown, {}, {}, {}) == {"s8": "new section"}


def test_evidence_by_section_skips_blank_digest_entries() -> None:
    digests = [Digest(paper_id="p1", outline_key="k", sections={"s3": "text", "s4": "  "}),
               Digest(paper_id="p2", outline_key="k", sections={"s3": "more"})]
    assert evidence_by_section(digests) == {"s3": {"p1": "text", "p2": "more"}}


@pytest.mark.parametrize(("outline_E", "suggested_E", "refine"),
                         [(6.0, 6.05, False), (6.0, 6.1, False), (6.0, 6.2, True), (6.0, 5.0, False)])
def test_refine_auto_goes_on_when_the_suggestions_raise_E_by_more_than_epsilon(outline_E, suggested_E, refine) -> None:
    decided, reason = refine_decision(outline_E, suggested_E, 0.1)
    assert decided is refine
    assert reason.startswith("refined: " if refine else "not refined: ")
    assert f"E {outline_E:.3f} -> {suggested_E:.3f}" in reason and "epsilon 0.1" in reason


def test_reference_changes_and_the_changelog_text() -> None:
    before = [{"paper_id": "a", "title": "A"}, {"paper_id": "b", "title": "B"}, {"paper_id": "c", "title": "C"}]
    after = [{"paper_id": "a", "title": "A"}, {"paper_id": "d", "title": "D"}, {"paper_id": "e", "title": "E"}]
    refs = reference_changes(before, after, removed=["b"], added_docs=["d"])
    assert refs["added"] == [{"paper_id": "d", "title": "D", "reason": "new document"},
                             {"paper_id": "e", "title": "E", "reason": "now cited by a rewritten section"}]
    assert refs["removed"] == [{"paper_id": "b", "title": "B", "reason": "document removed"},
                               {"paper_id": "c", "title": "C", "reason": "no longer cited after the rewrite"}]
    entry = {"version": 2, "documents": {"added": [{"paper_id": "d", "title": "D"}], "removed": [], "ignored": []},
             "refine": "not refined (refine=never)", "references": refs,
             "sections": {"rewritten": [{"section_id": "s3", "title": "Leaf A", "reason": "evidence added from d"}],
                          "added": [], "removed": [], "kept": 5},
             "usage": {"calls": 7, "prompt_tokens": 900, "completion_tokens": 80}}
    text = render_changelog([entry, {**entry, "version": 3}])
    assert text.index("## Version 3") < text.index("## Version 2")
    assert "- Section rewritten: s3 Leaf A (evidence added from d)\n" in text
    assert "- Reference removed: `c` C (no longer cited after the rewrite)\n" in text
    assert "- Sections kept verbatim: 5\n" in text and "7 model answers, 900 prompt tokens" in text


REFS = [{"paper_id": "p1", "title": "One"}, {"paper_id": "p2", "title": "Two"}]


def test_plan_update_checks_the_request() -> None:
    with pytest.raises(UpdateError, match="cannot remove x: no document of this run has that id. Known ids: p1, p2"):
        plan_update({"remove": ["x"]}, REFS)
    with pytest.raises(UpdateError, match="refine must be one of auto, always, never"):
        plan_update({"remove": ["p1"], "refine": "sometimes"}, REFS)
    with pytest.raises(UpdateError, match="unknown update field"):
        plan_update({"delete": ["p1"]}, REFS)
    with pytest.raises(UpdateError, match="removing every document"):
        plan_update({"remove": ["p1", "p2"]}, REFS)
    with pytest.raises(UpdateError, match="nothing to update: no documents to add or remove"):
        plan_update({}, REFS)
    plan = plan_update({"remove": ["p2", "p2"], "add_papers": [{"title": "Three", "txt": "Body three."}] * 2}, REFS)
    assert [d.title for d in plan.added] == ["Three"]  # the repeat is one document
    assert plan.removed == [{"paper_id": "p2", "title": "Two"}] and plan.refine == "auto"


def test_thread_and_settings_checks() -> None:
    with pytest.raises(UpdateError, match="no run with thread id t"):
        check_finished({}, "t")
    with pytest.raises(UpdateError, match="has not finished its first version.*llmxmr resume t"):
        check_finished({"paper_refs": []}, "t", "llmxmr resume t")
    with pytest.raises(UpdateError, match="has an update that did not finish"):
        check_finished({"report": {}, "update": {"remove": ["p1"]}}, "t")
    check_finished({"report": {"title": "T"}}, "t")
    check_overrides({"mode": "default", "language": "en"}, {"model": "openai:x", "mode": "default"})
    with pytest.raises(UpdateError, match="made with language='en'.*cannot use language='de'"):
        check_overrides({"mode": "default", "language": "en"}, {"language": "de"})


def test_a_served_update_reads_added_documents_only_inside_the_corpus_root(tmp_path, monkeypatch) -> None:
    inside, outside = tmp_path / "root", tmp_path / "elsewhere"
    for folder in (inside, outside):
        folder.mkdir()
        (folder / "new.md").write_text("# A new study\n\nIt measures cache hit rates on three workloads.\n")
    monkeypatch.setenv("LLMXMR_CORPUS_ROOT", str(inside))
    with pytest.raises(CorpusError, match="outside this server's corpus root"):
        plan_update({"add_path": str(outside)}, REFS)
    assert [d.title for d in plan_update({"add_path": str(inside)}, REFS).added] == ["A new study"]
