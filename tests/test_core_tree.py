"""Outline tree operations (pure)."""

from __future__ import annotations

import re

from llmxmr.core.tree import (
    cap_sections,
    depth,
    find_section,
    height_schedule,
    heights,
    iter_sections,
    leaf_ids,
    normalize_title,
    outline_from_draft,
    outline_from_draft_keeping_ids,
    outline_key,
    outline_to_markdown,
    outline_to_prompt_text,
    parent_of,
    section_ids,
    section_numbers,
    subtree_depth,
    validate_outline,
)
from llmxmr.state.records import Outline, Section
from llmxmr.state.responses import (
    LeafDraft,
    OutlineDraft,
    SectionDraft,
    SubsectionDraft,
)


def S(sid: str, title: str = "", *children: Section, c: str = "", a: str = "") -> Section:
    return Section(section_id=sid, title=title or f"T{sid}", construction=c, analysis=a, children=list(children))


def three_level() -> Outline:
    # s1
    #   s2
    #     s3
    #     s4
    #   s5
    # s6
    #   s7
    # s8
    return Outline(
        title="Survey",
        sections=[S("s1", "", S("s2", "", S("s3"), S("s4")), S("s5")), S("s6", "", S("s7")), S("s8")],
        next_id=9,
    )


def test_iter_sections_preorder_depth_parent():
    got = [(s.section_id, d, p) for s, d, p in iter_sections(three_level())]
    assert got == [
        ("s1", 1, None), ("s2", 2, "s1"), ("s3", 3, "s2"), ("s4", 3, "s2"),
        ("s5", 2, "s1"), ("s6", 1, None), ("s7", 2, "s6"), ("s8", 1, None),
    ]


def test_find_ids_leaves_depth():
    o = three_level()
    assert find_section(o, "s4").title == "Ts4"
    assert find_section(o, "s99") is None
    assert parent_of(o, "s4") == "s2" and parent_of(o, "s1") is None
    assert section_ids(o) == [f"s{i}" for i in range(1, 9)]
    assert leaf_ids(o) == ["s3", "s4", "s5", "s7", "s8"]
    assert depth(o) == 3
    assert depth(Outline(title="x")) == 0
    assert subtree_depth(o.sections[0]) == 3 and subtree_depth(o.sections[2]) == 1


def test_section_numbers_by_position():
    assert section_numbers(three_level()) == {
        "s1": "1", "s2": "1.1", "s3": "1.1.1", "s4": "1.1.2", "s5": "1.2", "s6": "2", "s7": "2.1", "s8": "3",
    }


def test_heights_and_schedule_three_levels():
    o = three_level()
    assert heights(o) == {"s1": 2, "s2": 1, "s3": 0, "s4": 0, "s5": 0, "s6": 1, "s7": 0, "s8": 0}
    sched = height_schedule(o)
    assert sched == [["s3", "s4", "s5", "s7", "s8"], ["s2", "s6"], ["s1"]]
    # every parent is scheduled strictly after all of its children
    step = {sid: i for i, ids in enumerate(sched) for sid in ids}
    for s, _, parent in iter_sections(o):
        if parent:
            assert step[parent] > step[s.section_id]
    assert height_schedule(Outline(title="x")) == []


def draft() -> OutlineDraft:
    return OutlineDraft(
        title="Draft title",
        sections=[
            SectionDraft(
                title=" Intro ",
                construction="c1",
                subsections=[
                    SubsectionDraft(title="Background", subsections=[LeafDraft(title="History", analysis="a")]),
                    SubsectionDraft(title="   ", subsections=[LeafDraft(title="lost with its empty parent")]),
                ],
            ),
            SectionDraft(title=""),
            SectionDraft(title="Methods", subsections=[SubsectionDraft(title="1.2 Transformers")]),
        ],
    )


def test_outline_from_draft_assigns_preorder_ids_and_drops_empty_titles():
    o = outline_from_draft(draft())
    assert o.title == "Draft title"
    got = [(s.section_id, s.title, d) for s, d, _ in iter_sections(o)]
    assert got == [
        ("s1", "Intro", 1), ("s2", "Background", 2), ("s3", "History", 3),
        ("s4", "Methods", 1), ("s5", "1.2 Transformers", 2),
    ]
    assert o.next_id == 6
    assert o.sections[0].construction == "c1" and find_section(o, "s3").analysis == "a"
    assert validate_outline(o) == []
    assert outline_from_draft(draft(), title="Given").title == "Given"


def test_outline_from_draft_truncates_below_three_levels():
    class Deep:  # a draft-like object deeper than the schema allows
        def __init__(self, title, subs=()):
            self.title, self.subsections, self.construction, self.analysis = title, list(subs), "", ""

    d = OutlineDraft.model_construct(title="t", sections=[Deep("a", [Deep("b", [Deep("c", [Deep("d")])])])])
    o = outline_from_draft(d)
    assert depth(o) == 3
    assert section_ids(o) == ["s1", "s2", "s3"] and o.next_id == 4


def test_normalize_title():
    assert normalize_title("1.2 Large-Language Models!") == "large language models"
    assert normalize_title("  3. Large language   models ") == "large language models"
    assert normalize_title("Section 4: LARGE language models") == "large language models"
    assert normalize_title("IV. Methods") == "methods"
    assert normalize_title("2023 Advances") == "2023 advances"  # a year is not numbering


def test_outline_from_draft_keeping_ids_maps_titles():
    old = Outline(
        title="Old",
        sections=[S("s1", "Introduction", S("s2", "Background")), S("s3", "Methods"), S("s4", "Removed")],
        next_id=7,  # s5, s6 were used earlier and removed: never reused
    )
    new = OutlineDraft(
        title="New title",
        sections=[
            SectionDraft(title="1 Methods", subsections=[SubsectionDraft(title="Brand new")]),
            SectionDraft(title="2. introduction", subsections=[SubsectionDraft(title="2.1 Back-ground")]),
            SectionDraft(title="Methods"),  # duplicate: the old id goes only to the first match
        ],
    )
    o = outline_from_draft_keeping_ids(new, old)
    got = [(s.section_id, s.title) for s, _, _ in iter_sections(o)]
    assert got == [
        ("s3", "1 Methods"), ("s7", "Brand new"), ("s1", "2. introduction"),
        ("s8", "2.1 Back-ground"), ("s9", "Methods"),
    ]
    assert o.next_id == 10 and o.title == "New title"
    assert validate_outline(o) == []


def test_outline_key_stable_and_content_sensitive():
    a, b = three_level(), three_level()
    assert outline_key(a) == outline_key(b)
    assert re.fullmatch(r"[0-9a-f]{16}", outline_key(a))
    b.sections[0].title = "changed"
    assert outline_key(a) != outline_key(b)
    c = three_level()
    c.sections[0].construction = "x"
    assert outline_key(a) != outline_key(c)


def test_outline_to_prompt_text_format():
    o = Outline(
        title="My survey",
        sections=[
            S("s1", "Intro", S("s3", "Sub\nline", c="what to\nextract", a=""), c="", a="how to compare"),
            S("s2", "Mentions [s9] inline"),
        ],
        next_id=10,
    )
    text = outline_to_prompt_text(o)
    assert text.splitlines() == [
        "Title: My survey",
        "[s1] 1 Intro",
        "  analysis: how to compare",
        "  [s3] 1.1 Sub line",
        "    construction: what to extract",
        "[s2] 2 Mentions (s9) inline",
    ]
    assert re.findall(r"\[(s\d+)\]", text) == ["s1", "s3", "s2"]


def test_outline_to_markdown():
    md = outline_to_markdown(Outline(title="Survey", sections=[S("s1", "A", S("s2", "B", c="cc"), a="aa")], next_id=3))
    assert md.startswith("# Survey\n")
    assert "## 1 A\n- *Analysis:* aa" in md
    assert "### 1.1 B\n- *Construction:* cc" in md


def test_validate_outline_reports_each_problem():
    assert validate_outline(three_level()) == []
    assert any("no sections" in p for p in validate_outline(Outline(title="t")))
    bad = Outline(
        title="t",
        sections=[
            S("s1", "a", S("s2", "b", S("s3", "c", S("s4", "d")))),
            S("s1", "dup"), S("x7", "bad id"), S("s5", " "),
        ],
        next_id=3,
    )
    problems = "\n".join(validate_outline(bad))
    assert "duplicate section id 's1'" in problems
    assert "'x7'" in problems and "s<number>" in problems
    assert "depth 4" in problems
    assert "empty title" in problems
    assert "next_id 3" in problems


def test_prompt_text_detail_trims_descriptions_but_keeps_ids_and_numbers() -> None:
    from llmxmr.core.tree import outline_to_prompt_text
    from llmxmr.state.records import Outline, Section

    outline = Outline(title="T", next_id=3, sections=[Section(section_id="s1", title="Intro", construction="C1",
                      analysis="A1", children=[Section(section_id="s2", title="Sub", construction="C2", analysis="A2")])])
    full = outline_to_prompt_text(outline)
    assert "construction: C1" in full and "analysis: A2" in full
    constr = outline_to_prompt_text(outline, "construction")
    assert "construction: C2" in constr and "analysis" not in constr
    titles = outline_to_prompt_text(outline, "titles")
    assert titles.splitlines() == ["Title: T", "[s1] 1 Intro", "  [s2] 1.1 Sub"]


def test_focus_shows_descriptions_of_the_named_sections_only() -> None:
    from llmxmr.core.tree import focus_sections

    o = Outline(title="T", next_id=5, sections=[
        S("s1", "Graph neural networks", S("s2", "Message passing", c="C2", a="A2"), c="C1", a="A1"),
        S("s3", "Methods", c="C3", a="A3"), S("s4", "Open problems", c="C4", a="A4")])
    assert focus_sections(o, "Merge [s2] into s4; drop s9 (no such section).") == {"s2", "s4"}
    assert focus_sections(o, "Split '2. Graph Neural Networks' by task [@p1].") == {"s1"}, "a title, numbering ignored"
    assert focus_sections(o, "Better methods for evaluation") == set(), "a one-word title is not a mention"
    assert focus_sections(o, "Cover s10 and s12") == set(), "s1 inside s10 is not s1"
    text = outline_to_prompt_text(o, focus={"s2"})
    assert text.splitlines() == ["Title: T", "[s1] 1 Graph neural networks", "  [s2] 1.1 Message passing",
                                 "    construction: C2", "    analysis: A2", "[s3] 2 Methods", "[s4] 3 Open problems"]
    assert outline_to_prompt_text(o, focus=set()) == outline_to_prompt_text(o, "titles")


def test_cap_sections_drops_the_deepest_last_sections_first_and_keeps_ids():
    # Issue 16 §4: an outline larger than the budget can write is cut, not left half written.
    o = three_level()
    assert section_ids(cap_sections(o, 8)) == section_ids(o)
    assert section_ids(cap_sections(o, 7)) == ["s1", "s2", "s3", "s5", "s6", "s7", "s8"]  # s4: deepest, last
    assert section_ids(cap_sections(o, 6)) == ["s1", "s2", "s5", "s6", "s7", "s8"]  # level 3 gone
    assert section_ids(cap_sections(o, 4)) == ["s1", "s2", "s6", "s8"]
    assert section_ids(cap_sections(o, 2)) == ["s1", "s6"]
    assert section_ids(cap_sections(o, 0)) == ["s1"]  # an article needs a section
    assert section_ids(o) == ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]  # the input is not changed
