"""Edit-based modify: apply a model's edits to the outline tree by section_id.

Rewriting a whole outline costs thousands of output tokens per modify call (METHOD §2.5d); a list of
edits costs a few hundred. Each edit is checked on its own: an invalid one is recorded with a reason and
skipped, the others still apply in order. The input outline is never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from llmxmr.core.headings import heading_clash, not_heading_keys
from llmxmr.core.tree import (
    ID_RE,
    MAX_DEPTH,
    find_section,
    iter_sections,
    parent_of,
    section_ids,
    subtree_depth,
)
from llmxmr.state.records import Edit, Outline, RejectedEdit, Section
from llmxmr.state.responses import EditDraft


class _Rejected(Exception):
    """Raised inside one edit's application; its message is the recorded reason."""


def apply_edits(outline: Outline, edits: Iterable[Edit], not_headings: Iterable[str] = ()) -> tuple[Outline, list[RejectedEdit]]:
    """Apply `edits` in order to a copy of `outline`; return it and the rejected edits with reasons. An
    edit that would title a section as a sibling, its parent, the survey or one of `not_headings` (paper or
    example titles) is rejected (llmxmr.core.headings)."""
    work = outline.model_copy(deep=True)
    banned = not_heading_keys([outline.title, *not_headings])
    rejected: list[RejectedEdit] = []
    for edit in edits:
        try:
            _APPLY[edit.op](work, edit, banned)
        except _Rejected as exc:
            rejected.append(RejectedEdit(edit=edit, reason=str(exc)))
    return work, rejected


# --- locating -----------------------------------------------------------------------------------------


def _locate(outline: Outline, section_id: str) -> tuple[list[Section], int, int]:
    """(the list holding the section, its index there, its depth); rejects unknown ids."""

    def walk(siblings: list[Section], d: int) -> tuple[list[Section], int, int] | None:
        for i, s in enumerate(siblings):
            if s.section_id == section_id:
                return siblings, i, d
            found = walk(s.children, d + 1)
            if found:
                return found
        return None

    found = walk(outline.sections, 1)
    if found is None:
        raise _Rejected(f"unknown section_id {section_id!r}")
    return found


def _require_id(edit: Edit) -> str:
    if not edit.section_id:
        raise _Rejected(f"{edit.op} needs a section_id")
    return edit.section_id


def _target_children(outline: Outline, parent_id: str | None) -> tuple[list[Section], int]:
    """The child list a section goes into and the depth it would have there."""
    if parent_id is None:
        return outline.sections, 1
    try:
        siblings, i, d = _locate(outline, parent_id)
    except _Rejected:
        raise _Rejected(f"unknown parent_id {parent_id!r}") from None
    return siblings[i].children, d + 1


def _parent_title(outline: Outline, parent_id: str | None) -> str:
    parent = find_section(outline, parent_id) if parent_id else None
    return parent.title if parent else ""


def _check_heading(title: str, outline: Outline, siblings: list[Section], parent_id: str | None,
                   banned: frozenset[str], itself: str | None = None) -> None:
    why = heading_clash(title, siblings, _parent_title(outline, parent_id), banned, itself=itself)
    if why:
        raise _Rejected(why)


def _clamp(position: int | None, length: int) -> int:
    return length if position is None else max(0, min(position, length))


def _fresh_id(outline: Outline) -> str:
    # next_id should already be free; skip past any clash from a hand-edited outline.
    taken = set(section_ids(outline))
    while f"s{outline.next_id}" in taken:
        outline.next_id += 1
    sid = f"s{outline.next_id}"
    outline.next_id += 1
    return sid


# --- the five operations (each validates fully before it mutates) -------------------------------------


def _add(outline: Outline, edit: Edit, banned: frozenset[str]) -> None:
    title = (edit.title or "").strip()
    if not title:
        raise _Rejected("add needs a non-empty title")
    children, d = _target_children(outline, edit.parent_id)
    if d > MAX_DEPTH:
        raise _Rejected(f"add under {edit.parent_id!r} would exceed depth {MAX_DEPTH}")
    _check_heading(title, outline, children, edit.parent_id, banned)
    section = Section(
        section_id=_fresh_id(outline),
        title=title,
        construction=(edit.construction or "").strip(),
        analysis=(edit.analysis or "").strip(),
    )
    children.insert(_clamp(edit.position, len(children)), section)


def _remove(outline: Outline, edit: Edit, banned: frozenset[str]) -> None:
    siblings, i, d = _locate(outline, _require_id(edit))
    if d == 1 and len(outline.sections) == 1:
        raise _Rejected("cannot remove the last top-level section")
    del siblings[i]


def _move(outline: Outline, edit: Edit, banned: frozenset[str]) -> None:
    sid = _require_id(edit)
    siblings, i, _ = _locate(outline, sid)
    section = siblings[i]
    if edit.parent_id is not None:
        if edit.parent_id == sid or edit.parent_id in {s.section_id for s, _, _ in _iter_subtree(section)}:
            raise _Rejected(f"cannot move {sid!r} into its own subtree")
    _, parent_depth = _target_children(outline, edit.parent_id)  # validates parent_id
    if parent_depth - 1 + subtree_depth(section) > MAX_DEPTH:
        raise _Rejected(f"moving {sid!r} under {edit.parent_id!r} would exceed depth {MAX_DEPTH}")
    target, _ = _target_children(outline, edit.parent_id)
    # only where it lands: its title was already a heading, so the banned titles do not apply to a move
    _check_heading(section.title, outline, target, edit.parent_id, frozenset(), itself=sid)
    del siblings[i]
    # Position is read against the target list without the moved section.
    children, _ = _target_children(outline, edit.parent_id)
    children.insert(_clamp(edit.position, len(children)), section)


def _retitle(outline: Outline, edit: Edit, banned: frozenset[str]) -> None:
    sid = _require_id(edit)
    siblings, i, _ = _locate(outline, sid)
    title = (edit.title or "").strip()
    if not title:
        raise _Rejected("retitle needs a non-empty title")
    _check_heading(title, outline, siblings, parent_of(outline, sid), banned, itself=sid)
    siblings[i].title = title


def _describe(outline: Outline, edit: Edit, banned: frozenset[str]) -> None:
    siblings, i, _ = _locate(outline, _require_id(edit))
    construction = (edit.construction or "").strip()
    analysis = (edit.analysis or "").strip()
    # Blank counts as "not given": a model leaving a field empty must not erase a description.
    if not construction and not analysis:
        raise _Rejected("describe needs a non-empty construction or analysis")
    if construction:
        siblings[i].construction = construction
    if analysis:
        siblings[i].analysis = analysis


def _iter_subtree(section: Section) -> Iterator[tuple[Section, int, str | None]]:
    return iter_sections(Outline(title="", sections=[section]))


_APPLY = {"add": _add, "remove": _remove, "move": _move, "retitle": _retitle, "describe": _describe}


# --- from the model's reply ---------------------------------------------------------------------------

def _clean_id(raw: str | None) -> str | None:
    """Tolerate "[s3]", " S3 ", "" and "null" from models; anything else is kept (and later rejected)."""
    if raw is None:
        return None
    text = raw.strip().strip("[]()").strip().lower()
    if text in ("", "null", "none", "root"):
        return None
    return text if ID_RE.match(text) else raw.strip()


def edits_from_drafts(drafts: Iterable[EditDraft]) -> list[Edit]:
    """Model drafts to Edits (ids cleaned; an empty parent_id means top level)."""
    out: list[Edit] = []
    for d in drafts:
        data = d.model_dump()
        data["section_id"] = _clean_id(d.section_id)
        data["parent_id"] = _clean_id(d.parent_id)
        out.append(Edit(**data))
    return out
