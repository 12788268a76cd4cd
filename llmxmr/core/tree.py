"""Outline tree operations: walking, numbering, height scheduling, drafts to outlines, rendering.

Section ids ("s1", "s2", ...) are made here by code, never by a model; `Outline.next_id` is the next free
number so that ids are never reused within one outline's lineage. Everything here is pure: inputs are
never mutated.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from llmxmr.core.headings import clean_headings, normalize_title, not_heading_keys
from llmxmr.state.records import Outline, Section
from llmxmr.state.responses import OutlineDraft

MAX_DEPTH = 3  # levels of sections under the title
ID_RE = re.compile(r"^s(\d+)$")
PROMPT_ID_RE = re.compile(r"\[(s\d+)\]")  # what parsers of `outline_to_prompt_text` use


# --- walking -----------------------------------------------------------------------------------------


def iter_sections(outline: Outline) -> Iterator[tuple[Section, int, str | None]]:
    """Pre-order (section, depth, parent_id); top-level sections have depth 1 and parent None."""

    def walk(sections: Sequence[Section], depth: int, parent: str | None) -> Iterator[tuple[Section, int, str | None]]:
        for s in sections:
            yield s, depth, parent
            yield from walk(s.children, depth + 1, s.section_id)

    return walk(outline.sections, 1, None)


def find_section(outline: Outline, section_id: str) -> Section | None:
    for s, _, _ in iter_sections(outline):
        if s.section_id == section_id:
            return s
    return None


def parent_of(outline: Outline, section_id: str) -> str | None:
    """The parent's id (None for a top-level or unknown section)."""
    for s, _, parent in iter_sections(outline):
        if s.section_id == section_id:
            return parent
    return None


def section_ids(outline: Outline) -> list[str]:
    return [s.section_id for s, _, _ in iter_sections(outline)]


def leaf_ids(outline: Outline) -> list[str]:
    return [s.section_id for s, _, _ in iter_sections(outline) if not s.children]


def depth(outline: Outline) -> int:
    """Levels of sections under the title (0 for an outline without sections)."""
    return max((d for _, d, _ in iter_sections(outline)), default=0)


def subtree_depth(section: Section) -> int:
    """Levels in the subtree rooted at `section` (1 for a leaf)."""
    return 1 + max((subtree_depth(c) for c in section.children), default=0)


def section_numbers(outline: Outline) -> dict[str, str]:
    """Positional numbers: {"s1": "1", "s4": "1.2", "s5": "1.2.1", ...}."""
    numbers: dict[str, str] = {}

    def walk(sections: Sequence[Section], prefix: str) -> None:
        for i, s in enumerate(sections, start=1):
            num = f"{prefix}{i}"
            numbers[s.section_id] = num
            walk(s.children, num + ".")

    walk(outline.sections, "")
    return numbers


def cap_sections(outline: Outline, limit: int) -> Outline:
    """The outline with at most `limit` sections (at least one): the deepest sections go first, the last of
    them first, then the last top-level sections; the ids of the sections kept do not change. A budget that
    can pay for writing `limit` sections gets an article of that many rather than an unfinished one."""
    limit = max(1, limit)
    out = outline.model_copy(deep=True)
    count = len(section_ids(out))
    while count > limit:
        deepest = depth(out)
        if deepest <= 1:
            del out.sections[limit:]
            break
        last = None
        for s, d, parent in iter_sections(out):
            if d == deepest:
                last = (s.section_id, parent)
        sid, parent = last  # type: ignore[misc]
        holder = find_section(out, parent) if parent else None
        siblings = holder.children if holder is not None else out.sections
        siblings[:] = [c for c in siblings if c.section_id != sid]
        count -= 1
    return out


# --- height scheduling (the writer: leaves first, a parent after its last child) --------------------


def heights(outline: Outline) -> dict[str, int]:
    """Leaf 0; a parent 1 + the highest of its children."""
    out: dict[str, int] = {}

    def walk(s: Section) -> int:
        h = 1 + max((walk(c) for c in s.children), default=-1)
        out[s.section_id] = h
        return h

    for s in outline.sections:
        walk(s)
    # Re-key in pre-order so callers iterating the dict see the outline's order.
    return {sid: out[sid] for sid in section_ids(outline)}


def height_schedule(outline: Outline) -> list[list[str]]:
    """Writing steps: step h holds every section of height h (pre-order within a step)."""
    hs = heights(outline)
    steps: list[list[str]] = [[] for _ in range(max(hs.values(), default=-1) + 1)]
    for sid, h in hs.items():
        steps[h].append(sid)
    return steps


# --- drafts (model output without ids) to outlines ----------------------------------------------------


def _clean(text: str | None) -> str:
    return (text or "").strip()


def _sections_from_drafts(drafts: Sequence[Any], level: int, new_id: Callable[[str], str]) -> list[Section]:
    """Build sections depth-first in pre-order, calling `new_id(draft_title)` for each kept section.

    A draft with an empty title is dropped with its subtree (its children have no place to hang);
    anything deeper than MAX_DEPTH is cut off.
    """
    out: list[Section] = []
    for d in drafts:
        title = _clean(getattr(d, "title", ""))
        if not title:
            continue
        sid = new_id(title)
        children = getattr(d, "subsections", None) or []
        out.append(
            Section(
                section_id=sid,
                title=title,
                construction=_clean(getattr(d, "construction", "")),
                analysis=_clean(getattr(d, "analysis", "")),
                children=_sections_from_drafts(children, level + 1, new_id) if level < MAX_DEPTH else [],
            )
        )
    return out


def outline_from_draft(draft: OutlineDraft, title: str | None = None) -> Outline:
    """Fresh ids s1, s2, ... in pre-order; `title` (e.g. the survey's) overrides the draft's."""
    counter = [0]

    def new_id(_title: str) -> str:
        counter[0] += 1
        return f"s{counter[0]}"

    sections = _sections_from_drafts(draft.sections, 1, new_id)
    return Outline(title=_clean(title) or _clean(draft.title), sections=sections, next_id=counter[0] + 1)


def with_usable_headings(outline: Outline, not_headings: Iterable[str] = (), *,
                         renumber: bool = False) -> tuple[Outline, list[str]]:
    """(the outline with no heading repeated among siblings or from its parent, none that only repeats the
    survey's title or one of `not_headings`, what was changed); `llmxmr.core.headings`. `renumber`: fresh
    ids s1, s2, ... in pre-order (a new draft's), else ids are kept (a rewrite that kept ids by title)."""
    sections, notes = clean_headings(outline.sections, not_heading_keys([outline.title, *not_headings]))
    cleaned = outline.model_copy(update={"sections": sections})
    if renumber:
        counter = 0
        for s, _, _ in iter_sections(cleaned):
            counter += 1
            s.section_id = f"s{counter}"
        cleaned.next_id = counter + 1
    return cleaned, notes


def outline_from_draft_keeping_ids(draft: OutlineDraft, old: Outline) -> Outline:
    """Reference-mode full rewrite: a section whose normalised title matches an old one keeps its id.

    Each old id is given at most once (to the first matching section in pre-order); other sections get
    new ids from `old.next_id`, so ids of removed sections are never reused.
    """
    by_title: dict[str, str] = {}
    for s, _, _ in iter_sections(old):
        by_title.setdefault(normalize_title(s.title), s.section_id)
    used: set[str] = set()
    taken = set(section_ids(old))
    next_num = [max([old.next_id, *(_id_number(i) + 1 for i in taken if ID_RE.match(i))])]

    def new_id(title: str) -> str:
        sid = by_title.get(normalize_title(title))
        if sid is not None and sid not in used:
            used.add(sid)
            return sid
        sid = f"s{next_num[0]}"
        next_num[0] += 1
        return sid

    sections = _sections_from_drafts(draft.sections, 1, new_id)
    return Outline(title=_clean(draft.title) or old.title, sections=sections, next_id=next_num[0])


def _id_number(section_id: str) -> int:
    m = ID_RE.match(section_id)
    return int(m.group(1)) if m else -1


# --- identity and rendering ---------------------------------------------------------------------------


def outline_key(outline: Outline) -> str:
    """Short stable content hash: sha256 of canonical JSON (next_id included), 16 hex chars."""
    blob = json.dumps(outline.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _flat(text: str) -> str:
    return " ".join(text.split())


@functools.lru_cache(maxsize=1 << 13)  # the same titles and descriptions are rendered in many prompts
def _one_line(text: str) -> str:
    # The prompt format is one line per field; a newline in a title or description would break it,
    # and a literal "[s7]" inside a title would be mistaken for a section id by the parsers.
    return PROMPT_ID_RE.sub(r"(\1)", " ".join(text.split()))


PROMPT_DETAIL = {"full": ("construction", "analysis"), "construction": ("construction",), "titles": ()}


_RENDERED: OrderedDict[tuple[int, str, frozenset[str] | None], tuple[Outline, str]] = OrderedDict()
_RENDERED_LOCK = threading.Lock()


def outline_to_prompt_text(outline: Outline, detail: str = "full", focus: set[str] | None = None) -> str:
    """`render_outline`, memoised per outline object: a pass renders the same base outline for every task.
    The cache keeps the object alive, so its id is not reused while cached; outlines are never mutated."""
    key = (id(outline), detail, None if focus is None else frozenset(focus))
    with _RENDERED_LOCK:
        hit = _RENDERED.get(key)
        if hit is not None and hit[0] is outline:
            _RENDERED.move_to_end(key)
            return hit[1]
    text = render_outline(outline, detail, focus)
    with _RENDERED_LOCK:
        _RENDERED[key] = (outline, text)
        while len(_RENDERED) > 512:
            _RENDERED.popitem(last=False)
    return text


def render_outline(outline: Outline, detail: str = "full", focus: set[str] | None = None) -> str:
    """The outline as models see it (a contract: parsed with r"\\[(s\\d+)\\]").

    Title: <title>
    [s1] 1 Intro
      construction: ...
      analysis: ...
      [s2] 1.1 Background

    `detail` trims what a stage does not need ("construction": digests extract by it; "titles": feedback
    and merges refer to sections by id): the outline is in almost every prompt, so this is most of the cost.
    `focus`: only these sections show the `detail` fields, the others their titles (a default-mode modify
    sees in full only the sections its suggestion names: `focus_sections`).
    """
    fields = PROMPT_DETAIL[detail]
    numbers = section_numbers(outline)
    lines = [f"Title: {_one_line(outline.title)}"]
    for s, d, _ in iter_sections(outline):
        pad = "  " * (d - 1)
        lines.append(f"{pad}[{s.section_id}] {numbers[s.section_id]} {_one_line(s.title)}")
        if focus is not None and s.section_id not in focus:
            continue
        for label, value in (("construction", s.construction), ("analysis", s.analysis)):
            if label in fields and value.strip():
                lines.append(f"{pad}  {label}: {_one_line(value)}")
    return "\n".join(lines)


def describe_sections(outline: Outline, ids: set[str]) -> str:
    """The sections `ids` with their descriptions, in outline order (a default-mode modify shows them after
    the titles-only outline, which every modify of a layer shares: a prompt-cache prefix)."""
    numbers = section_numbers(outline)
    lines = []
    for s, _, _ in iter_sections(outline):
        if s.section_id in ids:
            lines.append(f"[{s.section_id}] {numbers[s.section_id]} {_one_line(s.title)}")
            for label, value in (("construction", s.construction), ("analysis", s.analysis)):
                if value.strip():
                    lines.append(f"  {label}: {_one_line(value)}")
    return "\n".join(lines)


_MENTION_RE = re.compile(r"\b(s\d+)\b")


def focus_sections(outline: Outline, text: str) -> set[str]:
    """The sections a suggestion names: by id ("[s3]", "s3") or by its whole title (case and numbering
    ignored); titles shorter than two words must match exactly as an id would, so "Methods" alone does not."""
    ids = set(section_ids(outline))
    named = {m for m in _MENTION_RE.findall(text) if m in ids}
    flat = f" {normalize_title(text)} "
    for s, _, _ in iter_sections(outline):
        title = normalize_title(s.title)
        if len(title.split()) >= 2 and f" {title} " in flat:
            named.add(s.section_id)
    return named


def outline_to_markdown(outline: Outline) -> str:
    """Human-readable: # title, ## / ### / #### numbered headings, descriptions as italic bullets."""
    numbers = section_numbers(outline)
    parts = [f"# {outline.title.strip()}"]
    for s, d, _ in iter_sections(outline):
        block = [f"{'#' * (d + 1)} {numbers[s.section_id]} {_flat(s.title)}"]
        if s.construction.strip():
            block.append(f"- *Construction:* {_flat(s.construction)}")
        if s.analysis.strip():
            block.append(f"- *Analysis:* {_flat(s.analysis)}")
        parts.append("\n".join(block))
    return "\n\n".join(parts) + "\n"


# --- validation of human-edited outlines --------------------------------------------------------------


def validate_outline(outline: Outline) -> list[str]:
    """Problems that make an (e.g. hand-edited) outline unusable; empty when it is fine."""
    problems: list[str] = []
    if not outline.title.strip():
        problems.append("the outline has an empty title")
    if not outline.sections:
        problems.append("the outline has no sections")
    seen: set[str] = set()
    numbers = section_numbers(outline)
    for s, d, _ in iter_sections(outline):
        where = f"section {s.section_id!r} ({numbers.get(s.section_id, '?')})"
        if s.section_id in seen:
            problems.append(f"duplicate section id {s.section_id!r}")
        seen.add(s.section_id)
        if not ID_RE.match(s.section_id):
            problems.append(f"{where}: id does not match s<number>")
        if d > MAX_DEPTH:
            problems.append(f"{where}: depth {d} exceeds the maximum of {MAX_DEPTH}")
        if not s.title.strip():
            problems.append(f"{where}: empty title")
    highest = max((_id_number(i) for i in seen), default=0)
    if outline.next_id <= highest:
        problems.append(f"next_id {outline.next_id} is not above the highest id s{highest}")
    return problems
