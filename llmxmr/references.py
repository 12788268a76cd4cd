"""References a user can take to their own tools: BibTeX, CSL-JSON and pandoc-style citations.

Pure functions over `citations.Reference` (which carries the documents' metadata). Each reference gets one
citation key, unique in the run: the user's own key from the corpus when it has one, else family name of
the first author + year + first title word (`vaswani2017attention`), else the paper id. The same keys are
used in references.bib, references.json and survey.pandoc.md, so `pandoc --citeproc --bibliography
references.bib survey.pandoc.md` renders the article in any CSL style.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from itertools import count, product
from string import ascii_lowercase
from typing import Any

from llmxmr.citations import MARKER, Reference, iter_prose, map_marker_ids
from llmxmr.metadata import KEY_RE
from llmxmr.state.records import METADATA_FIELDS, Document

BIB_NAME = "references.bib"
CSL_NAME = "references.json"
PANDOC_NAME = "survey.pandoc.md"

# Words a generated key skips to reach the first word that says something ("A survey of" -> "survey").
_SKIP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "at", "by", "from", "towards"}


# ---------------------------------------------------------------- metadata and keys


def with_metadata(references: Sequence[Reference], documents: Mapping[str, Document]) -> list[Reference]:
    """The references with their documents' metadata and each one's unique citation key (`bibtex_key`)."""
    enriched = [
        ref.model_copy(update=documents[ref.paper_id].model_dump(include=set(METADATA_FIELDS)))
        if ref.paper_id in documents else ref
        for ref in references
    ]
    keys = bibtex_keys(enriched)
    return [ref.model_copy(update={"bibtex_key": keys[ref.paper_id]}) for ref in enriched]


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def split_name(name: str) -> tuple[str, str]:
    """(family, given) of one author name, "Given Family" or "Family, Given" (BibTeX rules, so "Ludwig
    van Beethoven" -> ("van Beethoven", "Ludwig")); a one-word name is all family."""
    from bibtexparser.middlewares.names import parse_single_name_into_parts

    try:
        parts = parse_single_name_into_parts(name, strict=False)
    except ValueError:  # the parser's InvalidNameError (a stray brace or comma): the last word is the family
        *given, family = name.split() or [""]
        return family, " ".join(given)
    family = " ".join(parts.von + parts.last)
    if parts.jr:
        family += ", " + " ".join(parts.jr)
    return family, " ".join(parts.first)


def _generated_key(ref: Reference) -> str | None:
    if not ref.authors:
        return None
    family, _ = split_name(ref.authors[0])
    name = _ascii_word((family.split(",")[0].split() or [""])[-1])  # "van Beethoven, Jr." -> "beethoven"
    if not name:
        return None
    words = [w for w in (_ascii_word(w) for w in ref.title.split()) if w]
    word = next((w for w in words if w not in _SKIP_WORDS), words[0] if words else "")
    return f"{name}{ref.year or ''}{word}"


def _suffixes() -> Iterator[str]:
    """a, b, ..., z, aa, ab, ...: what a key gets when another reference already has it."""
    for width in count(1):
        for letters in product(ascii_lowercase, repeat=width):
            yield "".join(letters)


def bibtex_keys(references: Sequence[Reference]) -> dict[str, str]:
    """paper id -> citation key, unique ignoring case (BibTeX warns on keys differing only in case).

    Keys the user gave are reserved first, so a generated key never takes one; a clash gets a, b, ...
    """
    taken: set[str] = set()
    keys: dict[str, str] = {}

    def claim(pid: str, base: str) -> None:
        key = base
        if key.casefold() in taken:
            key = next(base + s for s in _suffixes() if (base + s).casefold() not in taken)
        taken.add(key.casefold())
        keys[pid] = key

    for ref in references:
        if ref.bibtex_key and KEY_RE.match(ref.bibtex_key):
            claim(ref.paper_id, ref.bibtex_key)
    for ref in references:
        if ref.paper_id not in keys:
            claim(ref.paper_id, _generated_key(ref) or ref.paper_id)
    return keys


# ---------------------------------------------------------------- BibTeX


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "%": r"\%", "&": r"\&", "$": r"\$", "#": r"\#",
    "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_SPECIAL_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Prose for a BibTeX field: LaTeX's special characters escaped (UTF-8 letters stay as they are)."""
    return _LATEX_SPECIAL_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], " ".join(text.split()))


def protect_case(text: str) -> str:
    """Braces around words with a capital after their first letter (BERT, GPT-3, O'Neil), so that styles
    which change a title's case keep them as written."""
    return " ".join(f"{{{w}}}" if any(c.isupper() for c in w[1:]) else w for w in text.split(" "))


def _bibtex_author(name: str) -> str:
    family, given = split_name(name)
    return latex_escape(f"{family}, {given}" if given else family)


def bibtex_fields(ref: Reference) -> tuple[str, list[tuple[str, str]]]:
    """(entry type, [(field, value)]) of one reference; text fields escaped, identifiers verbatim."""
    fields = [("title", protect_case(latex_escape(ref.title)))]
    if ref.authors:
        fields.append(("author", " and ".join(_bibtex_author(a) for a in ref.authors)))
    if ref.year:
        fields.append(("year", str(ref.year)))
    if ref.venue:
        fields.append(("journal", latex_escape(ref.venue)))
    elif ref.arxiv_id:  # what a BibTeX style without eprint support still prints
        fields.append(("howpublished", f"arXiv preprint arXiv:{ref.arxiv_id}"))
    if ref.doi:
        fields.append(("doi", ref.doi))
    if ref.arxiv_id:
        fields += [("eprint", ref.arxiv_id), ("archiveprefix", "arXiv")]
    if ref.url:
        fields.append(("url", ref.url))
    return ("article" if ref.venue else "misc"), fields


def to_bibtex(references: Sequence[Reference]) -> str:
    """references.bib: one entry per reference, keyed by `bibtex_keys`, written by bibtexparser."""
    import bibtexparser
    from bibtexparser.model import Entry, Field

    keys = bibtex_keys(references)
    library = bibtexparser.Library()
    for ref in references:
        entry_type, fields = bibtex_fields(ref)
        library.add(Entry(entry_type, keys[ref.paper_id], [Field(k, v) for k, v in fields]))
    return bibtexparser.write_string(library)


# ---------------------------------------------------------------- CSL-JSON


def _csl_name(name: str) -> dict[str, str]:
    family, given = split_name(name)
    return {"family": family, "given": given} if given else {"family": family}


def to_csl_json(references: Sequence[Reference]) -> list[dict[str, Any]]:
    """references.json: CSL-JSON items (the input format of citeproc, pandoc and Zotero)."""
    keys = bibtex_keys(references)
    items = []
    for ref in references:
        item: dict[str, Any] = {
            "id": keys[ref.paper_id],
            "type": "article-journal" if ref.venue else "article" if ref.arxiv_id else "document",
            "title": ref.title,
        }
        if ref.authors:
            item["author"] = [_csl_name(a) for a in ref.authors]
        if ref.year:
            item["issued"] = {"date-parts": [[ref.year]]}
        if ref.venue:
            item["container-title"] = ref.venue
        if ref.doi:
            item["DOI"] = ref.doi
        if ref.url:
            item["URL"] = ref.url
        if ref.arxiv_id:  # how Zotero records an arXiv preprint
            item["number"] = f"arXiv:{ref.arxiv_id}"
            if not ref.venue:
                item["publisher"] = "arXiv"
        items.append(item)
    return items


# ---------------------------------------------------------------- pandoc


# "@" at the start of a word is a citation to pandoc; outside our markers it is text. Markers and
# autolinks (<https://x.org/@user>, where a backslash would be literal) are left as they are.
_BARE_AT = re.compile(r"(?<![\w\\])@(?=[\w{])")
_KEEP = re.compile(rf"{MARKER.pattern}|<[A-Za-z][A-Za-z0-9+.-]*:[^\s<>]*>")


def _escape_bare_at(prose: str) -> str:
    out, pos = [], 0
    for m in _KEEP.finditer(prose):
        out += [_BARE_AT.sub(r"\\@", prose[pos : m.start()]), m.group()]
        pos = m.end()
    out.append(_BARE_AT.sub(r"\\@", prose[pos:]))
    return "".join(out)


def pandoc_markdown(markdown: str, keys: Mapping[str, str], *, bibliography: str | None = None) -> str:
    """Our `[@paper-id]` / `[@a; @b]` markers (outside code) as pandoc citations `[@key]` / `[@k1; @k2]`.

    An id without a key is dropped, as numbering drops it. Other "@words" in prose are escaped so pandoc
    does not take them for citations. With `bibliography`, a YAML header names the .bib and the References
    heading, so `pandoc --citeproc` needs no other option.
    """
    escaped = "".join(chunk if is_code else _escape_bare_at(chunk) for is_code, chunk in iter_prose(markdown))
    body = map_marker_ids(escaped, keys.get)
    if bibliography is None:
        return body
    header = f"---\nbibliography: {bibliography}\nreference-section-title: References\nlink-citations: true\n---\n\n"
    return header + body
