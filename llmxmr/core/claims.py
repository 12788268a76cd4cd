"""Claims of a written section: the sentences (or clauses) that carry citation markers, with their spans,
so that each (claim, cited paper) pair can be checked against the paper and a failed claim can be replaced,
marked or removed in place without touching the rest of the text.

Code (fenced blocks, mermaid included, and inline spans) and table rows are never claims and are never
changed. A sentence without a marker is not a claim: nothing in it is attributed to a source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from llmxmr.citations import find_citations, iter_prose

UNVERIFIED_MARK = "[unverified]"  # after a claim its cited sources do not support (setting unsupported="mark")
_MASK = "\x01"  # stands in for code and table characters while splitting, so that offsets stay those of the text
# A sentence ends at . ! ? (after any closing quote or bracket) followed by space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*[ \t]+|\n+")
_MARKER_GROUP = re.compile(r"\[[ \t]*@[^\[\]\n]*\](?!\()")
# Inside a sentence, a clause ends after a marker group followed by "," or ";": "A holds [@a], while B [@b]."
_CLAUSE_END = re.compile(r"(\[[ \t]*@[^\[\]\n]*\](?!\())[ \t]*[,;][ \t]*")


@dataclass(frozen=True)
class Claim:
    index: int  # position among the section's claims
    start: int  # span in the section's text
    end: int
    text: str
    cited: tuple[str, ...]  # paper ids in order, without repeats
    has_code: bool = False  # it contains inline code: checked and marked, never rewritten or removed


def _masked(text: str) -> str:
    """`text` with code and table rows replaced by a mask character (same length: spans stay valid)."""
    out = []
    for is_code, chunk in iter_prose(text):
        if is_code:
            out.append(re.sub(r"[^\n]", _MASK, chunk))
        else:
            out.append(re.sub(r"(?m)^[ \t]*\|.*$", lambda m: _MASK * len(m.group(0)), chunk))
    return "".join(out)


def _pieces(masked: str) -> list[tuple[int, int]]:
    """Sentence spans, then clause spans inside a sentence with more than one marker group."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _SENTENCE_END.finditer(masked):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(masked)))
    out: list[tuple[int, int]] = []
    for a, b in spans:
        sentence = masked[a:b]
        if len(_MARKER_GROUP.findall(sentence)) < 2:
            out.append((a, b))
            continue
        start = a
        for m in _CLAUSE_END.finditer(sentence):
            if _MARKER_GROUP.search(sentence, m.end()):  # another cited clause follows
                out.append((start, a + m.end(1) + 1))  # keep the clause's "," or ";"
                start = a + m.end()
        out.append((start, b))
    return out


def _only_markers(piece: str) -> bool:
    return not _MARKER_GROUP.sub("", piece).strip(" \t.,;:")


def split_claims(text: str) -> list[Claim]:
    """The claims of `text` in order: pieces that carry at least one marker outside code and tables.

    A piece that is nothing but markers ("... holds. [@a]") belongs to the piece before it."""
    masked = _masked(text)
    pieces = [(a, b) for a, b in _pieces(masked) if masked[a:b].strip(" \t")]
    merged: list[tuple[int, int]] = []
    for a, b in pieces:
        if merged and _only_markers(masked[a:b]) and _MASK not in masked[a:b]:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    claims: list[Claim] = []
    for a, b in merged:
        piece = masked[a:b]
        cited = tuple(dict.fromkeys(find_citations(piece)))
        if not cited:
            continue
        while b > a and text[b - 1] in " \t\n":
            b -= 1
        claims.append(Claim(index=len(claims), start=a, end=b, text=text[a:b], cited=cited, has_code=_MASK in piece))
    return claims


def claim_text(claim: Claim | str) -> str:
    """The claim's words without its markers: what a retriever and a verifier read."""
    raw = claim.text if isinstance(claim, Claim) else claim
    return re.sub(r" ([.,;:!?])", r"\1", " ".join(_MARKER_GROUP.sub(" ", raw).split()))


def replace_claims(text: str, claims: list[Claim], new: Mapping[int, str]) -> str:
    """`text` with the claims of `new` (claim index -> text; "" removes it) replaced in place. A claim that
    contains inline code is left as it is: code is never rewritten."""
    return _replace(text, [c for c in claims if not c.has_code], new)


def mark_claims(text: str, claims: list[Claim], indexes: set[int], how: str) -> str:
    """Still-unsupported claims made visible: `how="mark"` puts UNVERIFIED_MARK after the claim's last
    marker; `how="remove"` drops the claim (one with inline code is marked instead: code is never removed)."""
    new = {}
    for c in claims:
        if c.index not in indexes:
            continue
        if how == "remove" and not c.has_code:
            new[c.index] = ""
        else:
            last = list(_MARKER_GROUP.finditer(c.text))[-1]
            new[c.index] = c.text[:last.end()] + " " + UNVERIFIED_MARK + c.text[last.end():]
    return _replace(text, claims, new)  # a mark keeps every character of the claim, code included


def _replace(text: str, claims: list[Claim], new: Mapping[int, str]) -> str:
    out, pos = [], 0
    for claim in sorted((c for c in claims if c.index in new), key=lambda c: c.start):
        before = text[pos:claim.start]
        replacement = new[claim.index].strip()
        pos = claim.end
        if not replacement:  # a removed claim takes one side's spaces along: before it, or at a line's start after it
            head = "".join(out) + before.rstrip(" \t")
            if head and not head.endswith("\n"):
                before = before.rstrip(" \t")
                end = claim.text.rstrip()[-1:]
                if end in ".!?" and head[-1] in ",;":  # the sentence's last clause went: end the sentence
                    if before:
                        before = before[:-1] + end
                    else:
                        out[-1] = out[-1][:-1] + end
            else:
                while pos < len(text) and text[pos] in " \t":
                    pos += 1
        out += [before, replacement]
    out.append(text[pos:])
    return "".join(out)
