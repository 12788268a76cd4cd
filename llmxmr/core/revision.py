"""An outline as a revision of a base outline: what the default-mode judge reads, and what a paper must be
read for again after its digest against the base.

Every candidate of a refinement block is the block's start outline O_b with a few edits, and each was
shown to the judge in full: the calls shared a prefix only up to the first section an edit touched, so a
provider's prompt cache served about a third of the judge's tokens. Shown as O_b in full (the same bytes
in every judge call of the block: a cacheable prefix), then the candidate in its own order with the
descriptions of only the sections that differ from O_b, the judge still reads the whole candidate, and
the part that changes from call to call is the candidate's titles and its changed sections.
"""

from __future__ import annotations

from llmxmr.core.tree import iter_sections, outline_to_prompt_text
from llmxmr.state.records import Outline, Section

# Past this share of revised sections the revision is nearly the candidate in full: the base before it would
# double the prompt and save little, even when a prompt cache serves the base.
MAX_REVISED_SHARE = 0.5


def _content(s: Section) -> tuple[str, str, str]:
    return s.title, s.construction, s.analysis


def _reading(s: Section) -> tuple[str, str]:
    """What a digest reads a section by: its title and construction (the analysis guides writing)."""
    return s.title, s.construction


def revised_sections(base: Outline, candidate: Outline, content=_content) -> set[str]:
    """Ids of the candidate's sections that are new or whose title or descriptions (`content`) differ from
    the base's section of the same id. A moved section with the same text is not revised: the candidate's
    own order shows where it stands now."""
    before = {s.section_id: content(s) for s, _, _ in iter_sections(base)}
    return {s.section_id for s, _, _ in iter_sections(candidate) if before.get(s.section_id) != content(s)}


def revision_text(base: Outline, candidate: Outline) -> str | None:
    """The candidate in its own order, every section by id and title, with descriptions for its revised
    sections only (the others read as in the base); None when more than half of its sections are revised
    (`MAX_REVISED_SHARE`: then the judge is better shown the candidate in full, alone)."""
    revised = revised_sections(base, candidate)
    total = sum(1 for _ in iter_sections(candidate))
    if total and len(revised) > MAX_REVISED_SHARE * total:
        return None
    return outline_to_prompt_text(candidate, "full", focus=revised)


def sections_to_read_again(base: Outline, outline: Outline) -> set[str] | None:
    """The sections of `outline` a paper already digested against `base` is read for again: the new ones
    and those whose title or construction changed. A paper's content for any other section is the answer to
    the same question, so it is kept. None when more than half of the sections are to be read again: the
    outline is then new enough that the paper is read against all of it (its content may belong elsewhere)."""
    again = revised_sections(base, outline, _reading)
    total = sum(1 for _ in iter_sections(outline))
    return None if total and len(again) > MAX_REVISED_SHARE * total else again


def kept_digest_sections(before: dict[str, str], outline_ids: set[str], again: set[str]) -> dict[str, str]:
    """A paper's earlier content for the sections that still exist and are not read again."""
    return {sid: text for sid, text in before.items() if sid in outline_ids and sid not in again}
