"""The default-mode judge reads a candidate as a revision of the block's start outline (core/revision.py,
nodes/scoring.py::judge_prompt): the start outline first, then the candidate with descriptions only where
it differs. A later digest pass reads a paper again only for the sections new or changed for reading."""

from __future__ import annotations

import re

from llmxmr.core.revision import kept_digest_sections, revised_sections, revision_text, sections_to_read_again
from llmxmr.core.tree import outline_to_prompt_text
from llmxmr.nodes.scoring import judge_prompt
from llmxmr.prompts import judge
from llmxmr.state.context import resolve_settings
from llmxmr.state.records import Outline, Section


def _base() -> Outline:
    return Outline(title="Serving", next_id=7, sections=[
        Section(section_id="s1", title="Batching", construction="c1", analysis="a1", children=[
            Section(section_id="s2", title="Static", construction="c2", analysis="a2"),
            Section(section_id="s3", title="Continuous", construction="c3", analysis="a3")]),
        Section(section_id="s4", title="Caching", construction="c4", analysis="a4", children=[
            Section(section_id="s5", title="Prefix", construction="c5", analysis="a5"),
            Section(section_id="s6", title="KV", construction="c6", analysis="a6")])])


def _revised() -> Outline:
    """s3 retitled, s6 re-described, s5 moved under s1 unchanged, s2 removed, s7 added under s4."""
    return Outline(title="Serving", next_id=8, sections=[
        Section(section_id="s1", title="Batching", construction="c1", analysis="a1", children=[
            Section(section_id="s3", title="Continuous batching", construction="c3", analysis="a3"),
            Section(section_id="s5", title="Prefix", construction="c5", analysis="a5")]),
        Section(section_id="s4", title="Caching", construction="c4", analysis="a4", children=[
            Section(section_id="s6", title="KV", construction="c6", analysis="Compare paging and offloading."),
            Section(section_id="s7", title="Eviction", construction="c7", analysis="a7")])])


def test_revised_sections_are_the_new_and_the_changed_not_the_moved():
    assert revised_sections(_base(), _revised()) == {"s3", "s6", "s7"}
    assert revised_sections(_base(), _base()) == set()


def test_a_paper_is_read_again_for_new_and_retitled_sections_not_for_new_analysis():
    # s6's analysis changed (writing's guidance, not reading's): its content stands; s5 moved unchanged.
    assert sections_to_read_again(_base(), _revised()) == {"s3", "s7"}
    assert sections_to_read_again(_base(), _base()) == set()
    construction = _base().model_copy(deep=True)
    construction.sections[1].children[0].construction = "Extract hit rates by workload."
    assert sections_to_read_again(_base(), construction) == {"s5"}


def test_an_outline_with_most_sections_new_for_reading_is_read_in_full():
    many = _revised().model_copy(deep=True)
    for s in (many.sections[0], many.sections[1], many.sections[1].children[0]):
        s.title += " (revised)"
    assert len(sections_to_read_again(_base(), _revised()) | {"s1", "s4", "s6"}) == 5  # of 6
    assert sections_to_read_again(_base(), many) is None


def test_kept_content_is_for_sections_that_still_exist_and_are_not_read_again():
    before = {"s2": "removed since", "s3": "retitled since", "s5": "moved since", "s6": "new analysis since"}
    ids = {"s1", "s3", "s5", "s4", "s6", "s7"}
    assert kept_digest_sections(before, ids, {"s3", "s7"}) == {"s5": "moved since", "s6": "new analysis since"}


def test_the_revision_lists_every_section_in_its_order_and_describes_only_the_revised():
    text = revision_text(_base(), _revised())
    assert text is not None
    assert re.findall(r"\[(s\d+)\]", text) == ["s1", "s3", "s5", "s4", "s6", "s7"]
    described = re.findall(r"\[(s\d+)\][^\n]*\n\s+construction:", text)
    assert described == ["s3", "s6", "s7"]
    assert "[s5] 1.2 Prefix" in text, "a moved section stands at its new number, without its descriptions"
    assert "analysis: Compare paging and offloading." in text
    assert revision_text(_base(), _base()) == outline_to_prompt_text(_base(), "titles")


def test_an_outline_revised_in_more_than_half_its_sections_is_shown_in_full():
    many = _revised().model_copy(deep=True)
    for s in (many.sections[0], many.sections[1]):
        s.analysis += " More."
    assert len(revised_sections(_base(), many)) == 5  # of 6
    assert revision_text(_base(), many) is None


def test_the_judge_prompt_shows_the_start_outline_first_then_the_revision():
    settings = resolve_settings({"mode": "default"})
    system, user = judge_prompt(settings, _revised(), _base())
    assert user.content == (f"{judge.BASE_HEAD}\n{outline_to_prompt_text(_base())}\n\n"
                            f"{judge.RATE_REVISION_HEAD}\n{revision_text(_base(), _revised())}")
    plain_system, plain = judge_prompt(settings, _revised(), None)
    assert plain.content == f"{judge.RATE_HEAD}\n{outline_to_prompt_text(_revised())}"
    assert plain_system.content == system.content, "one system message for both presentations: a shared prefix"


def test_the_judge_falls_back_to_the_outline_in_full_when_mostly_revised():
    outline = _revised()
    for s in outline.sections:
        s.analysis += " More."
    _, user = judge_prompt(resolve_settings({"mode": "default"}), outline, _base())
    assert user.content == f"{judge.RATE_HEAD}\n{outline_to_prompt_text(outline)}"


def test_the_judge_falls_back_to_the_outline_in_full_when_both_would_not_fit():
    settings = resolve_settings({"mode": "default", "context_window": 2300, "max_output_tokens": 500})
    base, outline = _base(), _base()
    base.sections[0].construction = " ".join(["alpha"] * 900)
    outline.sections[0].construction = " ".join(["beta"] * 900)  # one section of six revised, but long
    _, user = judge_prompt(settings, outline, base)
    assert user.content == f"{judge.RATE_HEAD}\n{outline_to_prompt_text(outline)}"
    _, roomy = judge_prompt(resolve_settings({"mode": "default"}), outline, base)
    assert roomy.content.startswith(judge.BASE_HEAD), "with room for both, the start outline comes first"


def test_reference_mode_keeps_the_outline_in_full_under_its_own_heading():
    _, user = judge.judge("Title: T\n[s1] 1 A", digit=False, base_text="ignored")
    assert user.content == "Outline:\nTitle: T\n[s1] 1 A"


def test_the_scripted_judge_reads_a_revision_as_the_outline_in_full():
    """The scripted models (tests, benchmark mock) answer a candidate the same in either presentation, so a
    benchmark run keeps its course and its figures compare like with like."""
    from llmxmr.testing.responder import Responder, as_read

    settings = resolve_settings({"mode": "default"})
    revised = judge_prompt(settings, _revised(), _base())
    full = judge_prompt(settings, _revised(), None)
    assert revised[1].content != full[1].content
    assert as_read(revised[0].content, revised[1].content) == as_read(full[0].content, full[1].content)
    _, user = as_read(full[0].content, full[1].content)
    assert user.startswith(f"Outline:\n{outline_to_prompt_text(_revised())}\n")
    assert Responder().respond(revised) == Responder().respond(full)


def test_judge_revisions_off_shows_every_outline_in_full_and_plan_counts_no_shared_outline():
    from llmxmr.plan import estimate

    off = resolve_settings({"mode": "default", "judge_revisions": False})
    _, user = judge_prompt(off, _revised(), _base())
    assert user.content == f"{judge.RATE_HEAD}\n{outline_to_prompt_text(_revised())}"
    on, off = (estimate(resolve_settings({"judge_revisions": v}), [3000] * 12, sections=20) for v in (True, False))
    assert on.stages["judge"].calls == off.stages["judge"].calls
    assert off.stages["judge"].cached_tokens == 0 < on.stages["judge"].cached_tokens
