"""Citation markers in generated text: `[@paper-id]`, grouped `[@a; @b]` (also `[@a, @b]`).

Pure functions, no LangGraph: find markers outside code, validate them against the papers a section may
cite (repairing near-misses a small model makes: case, a missing hash suffix, a typo), merge adjacent
markers, and at export number them in order of first appearance. Fenced code (``` and ~~~, mermaid
included) and inline code spans are never parsed, so `a[@x]` in code survives untouched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping

from pydantic import BaseModel, Field

# A marker is a bracket whose content starts with "@" (so "[1]", "[see above]", "[a, b]" are not markers),
# without nested brackets or newlines, and that is not the text of a markdown link "[@x](url)".
_MARKER = re.compile(r"\[(?P<body>[ \t]*@[^\[\]\n]*)\](?!\()")
_ID_TOKEN = re.compile(r"(?<![\w.])@([^\s@;,]+)")
_TRAILING = ".:!?'\")"
_REMOVED = "\x00"  # sentinel for a marker that became empty; cleaned up with its surrounding space
MARKER = _MARKER  # public: what other modules (pandoc export) recognise as a marker


class Reference(BaseModel):
    """One entry of the References list: number, paper, title and url when known, and the document's
    bibliographic metadata (`llmxmr.references` writes BibTeX and CSL-JSON from it)."""

    n: int
    paper_id: str
    title: str
    url: str | None = None
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    doi: str | None = None
    arxiv_id: str | None = None
    bibtex_key: str | None = None  # once finalized: this reference's unique citation key


# ---------------------------------------------------------------- prose vs code


_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def _fenced(text: str) -> Iterator[tuple[bool, str]]:
    """Split on fenced code blocks (CommonMark rules; an unclosed fence runs to the end)."""
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if fence is None:
            m = _FENCE_OPEN.match(body)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                if prose:
                    yield False, "".join(prose)
                    prose = []
                fence = m.group(1)
                code.append(line)
            else:
                prose.append(line)
        else:
            code.append(line)
            stripped = body.strip()
            if (
                len(body) - len(body.lstrip(" ")) <= 3
                and stripped.startswith(fence)
                and set(stripped) == {fence[0]}
            ):
                yield True, "".join(code)
                code = []
                fence = None
    if prose:
        yield False, "".join(prose)
    if code:
        yield True, "".join(code)


def _spans(prose: str) -> Iterator[tuple[bool, str]]:
    """Split prose on inline code spans: a run of n backticks closed by the next run of exactly n."""
    pos = 0  # start of the pending prose
    i = 0
    for run in re.finditer(r"`+", prose):
        if run.start() < i:
            continue  # inside a span already emitted
        n = len(run.group())
        closer = re.compile(rf"(?<!`)`{{{n}}}(?!`)").search(prose, run.end())
        if closer is None or re.search(r"\n[ \t]*\n", prose[run.end() : closer.start()]):
            continue  # unmatched backticks are literal text; spans do not cross paragraphs
        if run.start() > pos:
            yield False, prose[pos : run.start()]
        yield True, prose[run.start() : closer.end()]
        pos = i = closer.end()
    if pos < len(prose):
        yield False, prose[pos:]


def iter_prose(text: str) -> Iterator[tuple[bool, str]]:
    """Yield (is_code, chunk) pieces of markdown whose concatenation is `text`.

    Code is fenced blocks (``` or ~~~, any info string such as mermaid) and inline code spans.
    """
    for is_code, chunk in _fenced(text):
        if is_code:
            yield True, chunk
        else:
            yield from _spans(chunk)


# ---------------------------------------------------------------- parsing and rewriting markers


def _parse_body(body: str) -> tuple[list[str], list[str]]:
    """(ids, stray text) of a marker body: ids in order, pieces without an @id reported as stray."""
    ids: list[str] = []
    stray: list[str] = []
    for piece in re.split(r"[;,]", body):
        found = [tok.rstrip(_TRAILING) for tok in _ID_TOKEN.findall(piece)]
        ids.extend(t for t in found if t)
        rest = _ID_TOKEN.sub("", piece).strip()
        if rest:
            stray.append(rest)
    return ids, stray


def _render_group(ids: list[str]) -> str:
    return "[" + "; ".join(f"@{i}" for i in ids) + "]" if ids else _REMOVED


def _cleanup(chunk: str) -> str:
    """Remove the sentinels of emptied markers together with the space they leave behind."""
    if _REMOVED not in chunk:
        return chunk
    chunk = re.sub(rf"(?m)^([ \t]*)(?:{_REMOVED}[ \t]*)+", r"\1", chunk)  # at line start: drop following space
    return re.sub(rf"[ \t]*{_REMOVED}", "", chunk)  # elsewhere: drop preceding space


def _rewrite(text: str, fn: Callable[[re.Match[str]], str]) -> str:
    """Apply `fn` to every marker outside code; an empty group (sentinel) is removed cleanly."""
    out = []
    for is_code, chunk in iter_prose(text):
        out.append(chunk if is_code else _cleanup(_MARKER.sub(fn, chunk)))
    return "".join(out)


def find_citations(text: str) -> list[str]:
    """Cited ids in order of appearance (repeats included), outside code; ids as written."""
    ids: list[str] = []
    for is_code, chunk in iter_prose(text):
        if not is_code:
            for m in _MARKER.finditer(chunk):
                ids.extend(_parse_body(m.group("body"))[0])
    return ids


def map_marker_ids(text: str, fn: Callable[[str], str | None]) -> str:
    """Rewrite every marker outside code as `[@x; @y]` with each id mapped by `fn` (None drops it).

    Repeats inside a group collapse; a marker left empty is removed with the space before it.
    """

    def render(m: re.Match[str]) -> str:
        mapped = (fn(raw) for raw in _parse_body(m.group("body"))[0])
        return _render_group(list(dict.fromkeys(x for x in mapped if x is not None)))

    return _rewrite(text, render)


# ---------------------------------------------------------------- validation


def _norm(s: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _slug_part(paper_id: str) -> str:
    """The id without its hash suffix (and collision suffix): 'foo-bar-1a2b3c' -> 'foo-bar'."""
    return re.sub(r"-[0-9a-f]{6}(?:-\d+)?$", "", paper_id)


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (returning limit + 1) once it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def _only(candidates: set[str]) -> str | None:
    return next(iter(candidates)) if len(candidates) == 1 else None


def repair_id(raw: str, allowed: set[str]) -> str | None:
    """The allowed id that `raw` unambiguously means, or None.

    Tried in order, the first unambiguous answer wins: same id after normalising case and separators;
    the same hash suffix; a prefix of exactly one allowed id (e.g. the hash left out); edit distance <= 2
    (to the full id or to its slug, and at most a quarter of its length, so short ids are not guessed).
    """
    norm = _norm(raw)
    if not norm:
        return None
    if norm in allowed:
        return norm
    m = re.search(r"-([0-9a-f]{6})$", norm)
    if m and (hit := _only({a for a in allowed if re.search(rf"-{m.group(1)}(?:-\d+)?$", a)})):
        return hit
    if len(norm) >= 3 and (hit := _only({a for a in allowed if a.startswith(norm)})):
        return hit
    best: dict[int, set[str]] = {}
    for a in allowed:
        d = min(_distance(norm, t, 2) for t in {a, _slug_part(a)} if t)
        target_len = len(_slug_part(a)) or len(a)
        if d <= 2 and d * 4 <= target_len:
            best.setdefault(d, set()).add(a)
    for d in sorted(best):
        return _only(best[d])  # the closest distance decides; a tie there is ambiguous
    return None


def validate_citations(text: str, allowed: set[str], known: set[str] | None = None) -> tuple[str, list[str]]:
    """Keep only markers of `allowed` ids; repair near-misses, remove the rest; report every change.

    `known` is every paper id of the corpus: a known id that is not allowed (another section's evidence)
    is removed, never "repaired" into a different paper. Returns (fixed text, human-readable problems).
    """
    known_ids = set(known) | set(allowed) if known is not None else set(allowed)
    problems: list[str] = []

    def fix(m: re.Match[str]) -> str:
        ids, stray = _parse_body(m.group("body"))
        kept: list[str] = []
        for raw in ids:
            if raw in allowed:
                new: str | None = raw
            elif raw in known_ids or _norm(raw) in known_ids - allowed:
                problems.append(f"removed citation @{raw} (not in this section's evidence)")
                continue
            else:
                new = repair_id(raw, allowed)
                if new is None:
                    problems.append(f"removed unknown citation @{raw}")
                    continue
                problems.append(f"repaired @{raw} -> @{new}")
            if new not in kept:
                kept.append(new)
        for s in stray:
            problems.append(f"removed stray text {s!r} from citation {m.group(0)}")
        return _render_group(kept)

    fixed = _rewrite(text, fix)

    def drop_unclosed(m: re.Match[str]) -> str:
        problems.append(f"removed unclosed citation {m.group(0).strip()!r}")
        return _REMOVED

    return _rewrite_prose(fixed, lambda chunk: _UNCLOSED.sub(drop_unclosed, chunk)), problems


# A marker the model never closed ("[@paper-id" then a line end or another "["): never a citation.
_UNCLOSED = re.compile(r"\[[ \t]*@[^\[\]\n]*(?=\n|\[|$)")


def _rewrite_prose(text: str, fn: Callable[[str], str]) -> str:
    return "".join(chunk if is_code else _cleanup(fn(chunk)) for is_code, chunk in iter_prose(text))


# ---------------------------------------------------------------- merging and numbering


_GROUP_RUN = re.compile(rf"{_MARKER.pattern}(?:[ \t]*{_MARKER.pattern.replace('?P<body>', '')})+")


def merge_adjacent(text: str) -> str:
    """`[@a][@b]` and `[@a] [@b]` -> `[@a; @b]`; repeated ids inside a group are dropped."""

    def merge(m: re.Match[str]) -> str:
        ids: list[str] = []
        for part in _MARKER.finditer(m.group(0)):
            ids.extend(_parse_body(part.group("body"))[0])
        return _render_group(list(dict.fromkeys(ids)))

    out = []
    for is_code, chunk in iter_prose(text):
        if not is_code:
            chunk = _cleanup(_MARKER.sub(merge, _GROUP_RUN.sub(merge, chunk)))
        out.append(chunk)
    return "".join(out)


def number_citations(
    texts: list[str], papers: Mapping[str, tuple[str, str | None]]
) -> tuple[list[str], list[Reference]]:
    """Render markers as numbers in order of first appearance across `texts` (in order).

    `[@a; @b]` -> `[1, 2]` (sorted, deduplicated). Ids missing from `papers` (title, url) are dropped:
    validation should have removed them already.
    """
    numbers: dict[str, int] = {}

    def render(m: re.Match[str]) -> str:
        ns = []
        for pid in _parse_body(m.group("body"))[0]:
            if pid not in papers:
                continue
            if pid not in numbers:
                numbers[pid] = len(numbers) + 1
            ns.append(numbers[pid])
        return "[" + ", ".join(str(n) for n in sorted(set(ns))) + "]" if ns else _REMOVED

    rendered = [_rewrite(t, render) for t in texts]
    refs = [Reference(n=n, paper_id=pid, title=papers[pid][0], url=papers[pid][1]) for pid, n in numbers.items()]
    return rendered, refs
