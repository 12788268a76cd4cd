"""apply_edits: the five operations, every rejection reason, purity."""

from __future__ import annotations

from llmxmr.core.edits import apply_edits, edits_from_drafts
from llmxmr.core.tree import (
    depth,
    find_section,
    iter_sections,
    parent_of,
    section_ids,
    validate_outline,
)
from llmxmr.state.records import Edit, Outline, Section
from llmxmr.state.responses import EditDraft


def S(sid: str, *children: Section) -> Section:
    return Section(section_id=sid, title=f"T{sid}", construction=f"c{sid}", analysis=f"a{sid}", children=list(children))


def base() -> Outline:
    # s1 > s2 > s3 ; s4 > s5 ; s6
    return Outline(title="t", sections=[S("s1", S("s2", S("s3"))), S("s4", S("s5")), S("s6")], next_id=7)


def tree(o: Outline) -> list[tuple[str, int, str | None]]:
    return [(s.section_id, d, p) for s, d, p in iter_sections(o)]


def one(edit: Edit, o: Outline | None = None):
    return apply_edits(o or base(), [edit])


def test_input_is_never_mutated():
    o = base()
    before = o.model_dump()
    apply_edits(o, [Edit(op="remove", section_id="s4"), Edit(op="retitle", section_id="s1", title="X"),
                    Edit(op="add", parent_id="s6", title="new"), Edit(op="move", section_id="s6", parent_id="s4")])
    assert o.model_dump() == before


def test_add_top_level_at_end_and_clamped_positions():
    o, rej = one(Edit(op="add", title=" New ", construction="cc"))
    assert rej == [] and section_ids(o)[-1] == "s7" and o.next_id == 8
    assert find_section(o, "s7").title == "New" and find_section(o, "s7").construction == "cc"
    o, _ = one(Edit(op="add", title="first", position=-5))
    assert o.sections[0].section_id == "s7"
    o, _ = one(Edit(op="add", parent_id="s4", title="x", position=99))
    assert [c.section_id for c in find_section(o, "s4").children] == ["s5", "s7"]
    o, _ = one(Edit(op="add", parent_id="s4", title="x", position=0))
    assert [c.section_id for c in find_section(o, "s4").children] == ["s7", "s5"]


def test_add_ids_are_sequential_and_skip_clashes():
    o, _ = apply_edits(base(), [Edit(op="add", title="a"), Edit(op="add", title="b")])
    assert section_ids(o)[-2:] == ["s7", "s8"] and o.next_id == 9
    clash = base().model_copy(update={"next_id": 6})  # hand-edited: s6 already taken
    o, _ = one(Edit(op="add", title="a"), clash)
    assert section_ids(o)[-1] == "s7" and validate_outline(o) == []


def test_add_rejections():
    o, rej = one(Edit(op="add", title="  "))
    assert rej[0].reason == "add needs a non-empty title" and o == base()
    _, rej = one(Edit(op="add", parent_id="s99", title="x"))
    assert rej[0].reason == "unknown parent_id 's99'"
    _, rej = one(Edit(op="add", parent_id="s3", title="x"))  # s3 is at depth 3
    assert "exceed depth 3" in rej[0].reason


def test_remove_subtree_and_last_top_level():
    o, rej = one(Edit(op="remove", section_id="s1"))
    assert rej == [] and section_ids(o) == ["s4", "s5", "s6"]
    _, rej = one(Edit(op="remove", section_id="s9"))
    assert rej[0].reason == "unknown section_id 's9'"
    _, rej = one(Edit(op="remove"))
    assert rej[0].reason == "remove needs a section_id"
    single = Outline(title="t", sections=[S("s1", S("s2"))], next_id=3)
    o, rej = apply_edits(single, [Edit(op="remove", section_id="s1"), Edit(op="remove", section_id="s2")])
    assert [r.reason for r in rej] == ["cannot remove the last top-level section"]
    assert section_ids(o) == ["s1"]


def test_move_within_and_across_parents():
    o, rej = one(Edit(op="move", section_id="s6", parent_id="s4", position=0))
    assert rej == [] and [c.section_id for c in find_section(o, "s4").children] == ["s6", "s5"]
    o, _ = one(Edit(op="move", section_id="s2"))  # to top level, at the end; subtree comes along
    assert tree(o)[-2:] == [("s2", 1, None), ("s3", 2, "s2")]
    o, _ = one(Edit(op="move", section_id="s1", parent_id=None, position=2))  # position after removal
    assert [s.section_id for s in o.sections] == ["s4", "s6", "s1"]
    o, _ = one(Edit(op="move", section_id="s3", parent_id="s4", position=1))
    assert parent_of(o, "s3") == "s4" and find_section(o, "s2").children == []


def test_move_rejections():
    _, rej = one(Edit(op="move", section_id="s1", parent_id="s3"))
    assert rej[0].reason == "cannot move 's1' into its own subtree"
    _, rej = one(Edit(op="move", section_id="s1", parent_id="s1"))
    assert rej[0].reason == "cannot move 's1' into its own subtree"
    _, rej = one(Edit(op="move", section_id="s2", parent_id="s5"))  # s2 at 3, s3 at depth 4
    assert rej[0].reason == "moving 's2' under 's5' would exceed depth 3"
    o, rej = one(Edit(op="move", section_id="s2", parent_id="s4"))  # s2 at 2, s3 at 3: fine
    assert rej == [] and depth(o) == 3
    _, rej = one(Edit(op="move", section_id="s2", parent_id="s77"))
    assert rej[0].reason == "unknown parent_id 's77'"
    _, rej = one(Edit(op="move", section_id="s77"))
    assert rej[0].reason == "unknown section_id 's77'"
    _, rej = one(Edit(op="move", parent_id="s4"))
    assert rej[0].reason == "move needs a section_id"


def test_retitle_and_describe():
    o, rej = apply_edits(base(), [
        Edit(op="retitle", section_id="s5", title=" New title "),
        Edit(op="describe", section_id="s5", analysis="new analysis"),
        Edit(op="describe", section_id="s6", construction="new c", analysis="  "),
    ])
    assert rej == []
    s5, s6 = find_section(o, "s5"), find_section(o, "s6")
    assert (s5.title, s5.construction, s5.analysis) == ("New title", "cs5", "new analysis")
    assert (s6.construction, s6.analysis) == ("new c", "as6")  # blank analysis did not erase


def test_retitle_describe_rejections():
    reasons = [r.reason for r in apply_edits(base(), [
        Edit(op="retitle", section_id="s1"),
        Edit(op="retitle", section_id="s1", title=" "),
        Edit(op="retitle", section_id="s42", title="x"),
        Edit(op="retitle", title="x"),
        Edit(op="describe", section_id="s1"),
        Edit(op="describe", section_id="s1", construction="", analysis=" "),
        Edit(op="describe", section_id="s42", analysis="x"),
    ])[1]]
    assert reasons == [
        "retitle needs a non-empty title", "retitle needs a non-empty title", "unknown section_id 's42'",
        "retitle needs a section_id", "describe needs a non-empty construction or analysis",
        "describe needs a non-empty construction or analysis", "unknown section_id 's42'",
    ]


def test_rejected_edits_do_not_stop_the_others_and_apply_in_order():
    edits = [
        Edit(op="add", parent_id="s6", title="child of s6"),  # becomes s7
        Edit(op="remove", section_id="s99"),
        Edit(op="retitle", section_id="s7", title="renamed s7"),  # refers to the id just assigned
        Edit(op="remove", section_id="s4"),
        Edit(op="move", section_id="s5", parent_id="s1"),  # s5 was removed with s4
    ]
    o, rej = apply_edits(base(), edits)
    assert [r.edit for r in rej] == [edits[1], edits[4]]
    assert find_section(o, "s7").title == "renamed s7" and parent_of(o, "s7") == "s6"
    assert find_section(o, "s4") is None and depth(o) == 3
    assert validate_outline(o) == []


def test_edits_from_drafts_cleans_ids():
    drafts = [
        EditDraft(op="move", section_id=" [S3] ", parent_id="", position=1),
        EditDraft(op="add", parent_id="null", title="x"),
        EditDraft(op="retitle", section_id="intro", title="y"),
    ]
    edits = edits_from_drafts(drafts)
    assert edits[0] == Edit(op="move", section_id="s3", parent_id=None, position=1)
    assert edits[1].parent_id is None and edits[1].title == "x"
    assert edits[2].section_id == "intro"  # left as is: apply_edits rejects it as unknown
    _, rej = apply_edits(base(), edits[2:])
    assert rej[0].reason == "unknown section_id 'intro'"
