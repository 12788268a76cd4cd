"""Headings a model drafts: no sibling or parent title twice, no survey / paper / example title (issue 15)."""

from __future__ import annotations

from llmxmr.core.headings import clean_headings, heading_clash, not_heading_keys
from llmxmr.core.tree import iter_sections
from llmxmr.state.records import Outline, Section


def sec(sid: str, title: str, children: list[Section] | None = None, construction: str = "") -> Section:
    return Section(section_id=sid, title=title, construction=construction, children=children or [])


def titles(sections: list[Section]) -> list[tuple[int, str]]:
    return [(d, s.title) for s, d, _ in iter_sections(Outline(title="t", sections=sections))]


BANNED = not_heading_keys(["Python concurrency", "threading: Thread-based parallelism", "Foundations of Python concurrency"])


def test_a_paper_title_repeated_as_chapters_is_dropped_and_its_subsections_move_up() -> None:
    drafted = [
        sec("s1", "Threading: thread-based parallelism", [sec("s2", "Locks")]),
        sec("s3", "1. threading - Thread-based Parallelism."),  # the same paper title, numbered and punctuated
        sec("s4", "Foundations of Python concurrency"),  # the prompt example's heading
        sec("s5", "Event loops", [sec("s6", "Selectors")]),
    ]
    cleaned, notes = clean_headings(drafted, BANNED)
    assert titles(cleaned) == [(1, "Locks"), (1, "Event loops"), (2, "Selectors")]
    assert len(notes) == 3 and "1 subsection(s) moved up" in notes[0]
    assert titles(drafted)[0] == (1, "Threading: thread-based parallelism")  # the input is not mutated


def test_siblings_of_the_same_title_merge_and_a_child_titled_as_its_parent_goes() -> None:
    drafted = [
        sec("s1", "Queues", [sec("s2", "Queues", [sec("s3", "Bounded queues")]), sec("s4", "Priority queues")]),
        sec("s5", "queues", [sec("s6", "Bounded queues", construction="how full queues block")], construction="x"),
        sec("s7", "Locks"),
    ]
    cleaned, notes = clean_headings(drafted)
    assert titles(cleaned) == [(1, "Queues"), (2, "Bounded queues"), (2, "Priority queues"), (1, "Locks")]
    assert cleaned[0].construction == "x"  # a blank description is filled from the merged sibling
    assert cleaned[0].children[0].construction == "how full queues block"
    assert [s.section_id for s, _, _ in iter_sections(Outline(title="t", sections=cleaned))] == ["s1", "s3", "s4", "s7"]
    assert len(notes) == 3


def test_a_title_without_words_is_no_heading() -> None:
    cleaned, notes = clean_headings([sec("s1", "1.2"), sec("s2", "Locks")])
    assert titles(cleaned) == [(1, "Locks")] and "has no words" in notes[0]


def test_heading_clash_names_the_reason() -> None:
    siblings = [sec("s1", "Locks"), sec("s2", "Queues")]
    assert heading_clash("Semaphores", siblings, "Synchronisation", BANNED) is None
    assert "sibling" in heading_clash("2. locks", siblings, "Synchronisation", BANNED)
    assert heading_clash("Locks", siblings, "Synchronisation", BANNED, itself="s1") is None  # its own title
    assert "parent" in heading_clash("Synchronisation", siblings, "Synchronisation", BANNED)
    assert "paper" in heading_clash("Python Concurrency", siblings, "", BANNED)
    assert "no words" in heading_clash(" - ", siblings, "", BANNED)


def test_edits_that_would_repeat_a_heading_are_rejected_with_the_reason() -> None:
    from llmxmr.core.edits import apply_edits
    from llmxmr.state.records import Edit

    base = Outline(title="Python concurrency", next_id=5, sections=[
        sec("s1", "Locks", [sec("s2", "Reentrant locks")]), sec("s3", "Queues", [sec("s4", "Reentrant locks")])])
    outline, rejected = apply_edits(base, [
        Edit(op="retitle", section_id="s3", title="locks"),  # a sibling's title
        Edit(op="add", parent_id="s1", title="Locks"),  # its parent's title
        Edit(op="add", title="Python Concurrency"),  # the survey's title
        Edit(op="add", title="Concurrent and incremental marking"),  # the prompt's example
        Edit(op="move", section_id="s4", parent_id="s1"),  # lands beside a section of the same title
        Edit(op="retitle", section_id="s1", title="Locks and mutexes"),  # fine
        Edit(op="add", parent_id="s3", title="Bounded queues"),  # fine
    ], not_headings=["Concurrent and incremental marking"])
    reasons = [r.reason for r in rejected]
    assert [r.edit.op for r in rejected] == ["retitle", "add", "add", "add", "move"]
    assert "sibling" in reasons[0] and "parent" in reasons[1] and "survey" in reasons[2] and "example" in reasons[3]
    assert titles(outline.sections) == [(1, "Locks and mutexes"), (2, "Reentrant locks"), (1, "Queues"),
                                        (2, "Reentrant locks"), (2, "Bounded queues")]


def test_the_prompts_example_headings_are_known_so_a_copy_is_dropped() -> None:
    import json

    from llmxmr.core.tree import with_usable_headings
    from llmxmr.prompts.skeleton import (
        OUTLINE_SHAPE,
        SHAPE_TITLES,
        draft_outline,
        example_titles,
    )

    shape = json.loads(OUTLINE_SHAPE.split(" (an example", 1)[0])
    assert set(SHAPE_TITLES) == {shape["title"], *(t for _, t in titles([Section(section_id="s0", **_sections(s)) for s in shape["sections"]]))}
    system = draft_outline("Python concurrency", [("p1", "threading", "a")])[0].content
    shown = [t for t in example_titles("Python concurrency") if f'"title": "{t}"' in system]
    assert len(shown) == 3  # every heading the outline example shows is a known example heading
    copied = Outline(title="Python concurrency", next_id=9, sections=[
        sec(f"s{i}", t) for i, t in enumerate([*shown, "Thread pools"], 1)])
    cleaned, notes = with_usable_headings(copied, example_titles("Python concurrency"), renumber=True)
    assert titles(cleaned.sections) == [(1, "Thread pools")] and cleaned.sections[0].section_id == "s1"
    assert cleaned.next_id == 2 and len(notes) == 3


def _sections(draft: dict) -> dict:
    return {"title": draft["title"], "children": [Section(section_id="s0", **_sections(c)) for c in draft["subsections"]]}


def test_a_fallback_group_is_headed_by_what_tells_its_papers_apart() -> None:
    from llmxmr.core.headings import group_heading
    from llmxmr.nodes.skeleton import fallback_outline

    stdlib = ["Python module threading", "Python module queue", "Python module asyncio", "Python module sched"]
    assert group_heading(stdlib[:3], stdlib) == "threading, queue and asyncio"
    assert group_heading(stdlib[3:], stdlib) == "sched"
    papers = ["Weight Quantization for Cheaper Inference", "Continuous Batching for Model Serving"]
    assert group_heading(papers[:1], papers) == "Work on Weight Quantization for Cheaper Inference"  # not the title
    assert group_heading(papers, papers, words=2) == "Weight Quantization and Continuous Batching"
    outline = fallback_outline("Python concurrency", [["a", "b"], ["c", "d"]], dict(zip("abcd", stdlib)))
    assert [s.title for s in outline.sections] == ["threading and queue", "asyncio and sched"]
    banned = not_heading_keys(["Python concurrency", *stdlib])
    assert all(heading_clash(s.title, [], "", banned) is None for s in outline.sections)
