"""Which titles can be section headings: not a sibling's title again, not the parent's, and not a title that
only repeats the survey's, a paper's or the prompt example's (a small model copies what it is shown: the
135M demo model made one paper's title three chapters, and the example's "Foundations of <topic>" another).

Titles are compared as `normalize_title` leaves them (case, numbering and punctuation ignored). Outlines a
model drafts are cleaned deterministically (`clean_headings`); an edit that would make such a heading is
rejected with a reason (`heading_clash`, used by `llmxmr.core.edits`). Pure: inputs are never mutated.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence

from llmxmr.state.records import Section

# "1.2", "3.", "Section 2", "IV." -- short numbers only, so a leading year ("2023 ...") is kept.
_NUMBERING_RE = re.compile(
    r"^\s*(?:(?:section|chapter)\s+)?(?:\d{1,2}(?:\.\d{1,2})*\.?|[ivxl]{1,5}\.)(?=\s|$|[^\w])", re.IGNORECASE
)


def normalize_title(title: str) -> str:
    """Casefold, drop leading numbering ("1.2", "3.", "Section 2"), punctuation and extra whitespace."""
    t = _NUMBERING_RE.sub("", title.casefold())
    t = re.sub(r"[\W_]+", " ", t)
    return " ".join(t.split())


def not_heading_keys(titles: Iterable[str]) -> frozenset[str]:
    """The normalised forms of titles that are never headings (survey, papers, examples)."""
    return frozenset(k for k in map(normalize_title, titles) if k)


def heading_clash(title: str, siblings: Sequence[Section], parent_title: str, banned: frozenset[str],
                  *, itself: str | None = None) -> str | None:
    """Why `title` cannot head a section among `siblings` under `parent_title`; None when it can.
    `itself`: the id of the section being retitled or moved (its own title is no clash)."""
    key = normalize_title(title)
    if not key:
        return f"title {title!r} has no words"
    if key in banned:
        return f"title {title!r} repeats the survey's, a paper's or the prompt example's title"
    if parent_title and key == normalize_title(parent_title):
        return f"title {title!r} repeats its parent's title"
    if any(s.section_id != itself and normalize_title(s.title) == key for s in siblings):
        return f"title {title!r} is already a sibling's title"
    return None


def clean_headings(sections: Sequence[Section], banned: frozenset[str] = frozenset(),
                   parent_title: str = "") -> tuple[list[Section], list[str]]:
    """(`sections` with every heading usable, what was changed): a section whose title is banned, empty or
    its parent's is dropped and its subsections take its place; a section titled as an earlier sibling is
    merged into it (its subsections appended, its blank descriptions filled). Ids are kept as they are."""
    notes: list[str] = []
    return _clean([s.model_copy(deep=True) for s in sections], banned, parent_title, notes), notes


def _clean(sections: list[Section], banned: frozenset[str], parent_title: str, notes: list[str]) -> list[Section]:
    parent_key = normalize_title(parent_title)
    kept: list[Section] = []
    by_key: dict[str, Section] = {}
    queue = deque(sections)
    while queue:
        s = queue.popleft()
        key = normalize_title(s.title)
        if not key or key in banned or key == parent_key:
            why = "repeats its parent's title" if key and key == parent_key else (
                "repeats the survey's, a paper's or the prompt example's title" if key else "has no words")
            moved = f"; its {len(s.children)} subsection(s) moved up" if s.children else ""
            notes.append(f"section {s.title!r} dropped: its title {why}{moved}")
            queue.extendleft(reversed(s.children))
            continue
        first = by_key.get(key)
        if first is not None:
            first.children.extend(s.children)
            first.construction = first.construction or s.construction
            first.analysis = first.analysis or s.analysis
            notes.append(f"section {s.title!r} merged into the earlier section of the same title")
            continue
        by_key[key] = s
        kept.append(s)
    for s in kept:
        s.children = _clean(s.children, banned, s.title, notes)
    return kept


def group_heading(group_titles: Sequence[str], all_titles: Sequence[str], *, words: int = 6) -> str:
    """A heading for a group of papers when no drafted outline survived (the fallback outline): what tells
    the group's titles apart, joined ("threading, queue and asyncio" for "Python module threading", ...),
    never one paper's title verbatim. Words every title of the run starts with ("Python module") are left
    out; each part is cut to `words` words."""
    split = [t.split() for t in all_titles if t.split()]
    shared = 0
    while split and all(len(s) > shared + 1 and s[shared].casefold() == split[0][shared].casefold() for s in split):
        shared += 1
    parts = list(dict.fromkeys(" ".join(t.split()[shared:][:words]) for t in group_titles if t.split()[shared:]))
    if not parts:
        return "Other work"
    joined = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    # One paper whose title shares nothing with the others' would be its own title again.
    return f"Work on {joined}" if normalize_title(joined) in not_heading_keys(all_titles) else joined
