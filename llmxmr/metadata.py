"""Bibliographic metadata of documents: the optional fields of a paper record, the DOI or arXiv id found in
a document's text, and the entries of a folder corpus's .bib files (read with bibtexparser 2).

Bad metadata never costs a document: a field of the wrong type or shape, or a .bib that does not parse,
becomes a warning for the user (naming the file or record and the field) and the field stays empty.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A citation key that BibTeX, biblatex and pandoc all read as one key: starts and ends with a word
# character, with only the punctuation pandoc allows inside a key in between.
KEY_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_:.+/-]*[A-Za-z0-9_])?$")

DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_IN_TEXT = re.compile(r"\b10\.\d{4,9}/[^\s\"'<>{}\[\]|\\^`]+")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)

# arXiv identifiers: new style "2301.01234" (since 2007) and old style "cs/0112017", "math.GT/0309136".
_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARCHIVES = (
    "acc-phys|adap-org|alg-geom|ao-sci|astro-ph|atom-ph|bayes-an|chao-dyn|chem-ph|cmp-lg|comp-gas|cond-mat|cs|"
    "dg-ga|funct-an|gr-qc|hep-ex|hep-lat|hep-ph|hep-th|math-ph|math|mtrl-th|nlin|nucl-ex|nucl-th|patt-sol|"
    "physics|plasm-ph|q-alg|q-bio|q-fin|quant-ph|solv-int|stat|supr-con"
)
_ARXIV_OLD = rf"(?:{_ARCHIVES})(?:\.[A-Z]{{2}})?/\d{{7}}"
ARXIV_RE = re.compile(rf"^(?:{_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?$")
_ARXIV_PREFIX = re.compile(r"^(?:arxiv:\s*|https?://(?:www\.)?arxiv\.org/(?:abs|pdf)/)", re.IGNORECASE)
# In text a new-style id needs its "arXiv:" or URL prefix (a bare "2301.01234" is any number); an
# old-style one is distinctive enough on its own.
_ARXIV_IN_TEXT = re.compile(
    rf"(?:arxiv\s*:\s*|arxiv\.org/(?:abs|pdf)/)(?P<tagged>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?(?![\d/])"
    rf"|(?<![\w/.-])(?P<bare>{_ARXIV_OLD})(?:v\d+)?(?![\w/])",
    re.IGNORECASE,
)
# A paper's own identifiers are on its first page; later ones are mostly those of the works it cites.
_HEAD_CHARS = 5000
_REFERENCES_HEADING = re.compile(r"(?im)^[#\s]*(?:\d+\.?\s*)?(?:references|bibliography)\s*$")


class BadField(ValueError):
    """A metadata value that cannot be used; the message completes 'field "x" ...'."""


def json_type(value: Any) -> str:
    """How a JSON value is named in messages for the user ("a number", "a list", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# ---------------------------------------------------------------- one field at a time


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        raise BadField(f"must be a string, not {json_type(value)}")
    return " ".join(value.split()) or None


def check_authors(value: Any) -> list[str]:
    """A list of names, or one string "A and B" (BibTeX style) or "A; B"."""
    if isinstance(value, str):
        parts = value.split(";") if ";" in value else re.split(r"\s+and\s+", value, flags=re.IGNORECASE)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        kind = "a list with a non-string item" if isinstance(value, list) else json_type(value)
        raise BadField(f"must be a list of strings or a string, not {kind}")
    return [name for name in (" ".join(p.split()) for p in parts) if name]


def check_year(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadField(f"must be a year (a number), not {json_type(value)}")
    if not 1 <= value <= 9999:
        raise BadField(f"must be a year, not {value}")
    return value


def normalise_doi(value: Any) -> str | None:
    doi = _text(value)
    if doi is None:
        return None
    doi = _DOI_PREFIX.sub("", doi)
    if not DOI_RE.match(doi):
        raise BadField(f"is not a DOI (10.NNNN/...): {value!r}")
    return doi


def normalise_arxiv_id(value: Any) -> str | None:
    arxiv_id = _text(value)
    if arxiv_id is None:
        return None
    arxiv_id = _ARXIV_PREFIX.sub("", arxiv_id).removesuffix(".pdf")
    if not ARXIV_RE.match(arxiv_id):
        raise BadField(f"is not an arXiv id (2301.01234 or cs/0112017): {value!r}")
    return arxiv_id


def check_key(value: Any) -> str | None:
    key = _text(value)
    if key is not None and not KEY_RE.match(key):
        raise BadField(f"is not a usable citation key (letters, digits and _:.+/- inside): {value!r}")
    return key


CHECKS: dict[str, Callable[[Any], Any]] = {
    "url": _text,
    "authors": check_authors,
    "year": check_year,
    "venue": _text,
    "doi": normalise_doi,
    "arxiv_id": normalise_arxiv_id,
    "bibtex_key": check_key,
}


def record_metadata(record: Mapping[str, Any], source: str, warnings: list[str]) -> dict[str, Any]:
    """The metadata fields (and url) of one paper record that are usable; each bad one is a warning."""
    meta: dict[str, Any] = {}
    for name, check in CHECKS.items():
        if record.get(name) is None:
            continue
        try:
            value = check(record[name])
        except BadField as exc:
            warnings.append(f'{source}: field "{name}" {exc}; ignored')
            continue
        if value:
            meta[name] = value
    return meta


# ---------------------------------------------------------------- identifiers in the text


def _strip_trailing(doi: str) -> str:
    """A DOI found in prose loses the punctuation after it; a closing bracket stays only when paired."""
    while doi:
        last = doi[-1]
        unpaired = last in ")]" and doi.count(last) > doi.count("(" if last == ")" else "[")
        if last not in ".,;:'\"" and not unpaired:
            break
        doi = doi[:-1]
    return doi


def _head(text: str) -> str:
    head = text[:_HEAD_CHARS]
    m = _REFERENCES_HEADING.search(head)
    return head[: m.start()] if m else head


def find_doi(text: str) -> str | None:
    """The first DOI on a document's first page (before any References heading), else None."""
    m = _DOI_IN_TEXT.search(_head(text))
    return _strip_trailing(m.group()) if m else None


def find_arxiv_id(text: str) -> str | None:
    """The first arXiv id on a document's first page, without its version ("v2"), else None."""
    m = _ARXIV_IN_TEXT.search(_head(text))
    return (m.group("tagged") or m.group("bare")) if m else None


def complete_identifiers(meta: Mapping[str, Any], text: str, url: str | None) -> dict[str, Any]:
    """`meta` with a missing DOI or arXiv id taken from the url, else from the text."""
    out = dict(meta)
    for name, find in (("doi", find_doi), ("arxiv_id", find_arxiv_id)):
        if not out.get(name):
            found = (find(url) if url else None) or find(text)
            if found:
                out[name] = found
    return out


# ---------------------------------------------------------------- .bib files


@dataclass
class BibEntry:
    """One usable entry of a .bib file: its key, its title (LaTeX decoded) and the document metadata."""

    key: str
    title: str
    meta: dict[str, Any] = field(default_factory=dict)


def normalise_title(title: str) -> str:
    """Title for matching: case, accents, punctuation and spacing ignored."""
    folded = unicodedata.normalize("NFKD", title.casefold())
    return " ".join(re.findall(r"\w+", "".join(c for c in folded if not unicodedata.combining(c))))


def _entry_metadata(fields: Mapping[str, str], where: str, warnings: list[str]) -> dict[str, Any]:
    """BibTeX fields -> document metadata; `where` names the file and entry in warnings."""
    record: dict[str, Any] = {
        "authors": fields.get("author"),
        "year": fields.get("year"),
        "venue": fields.get("journal") or fields.get("booktitle"),
        "doi": fields.get("doi"),
        "url": fields.get("url"),
    }
    archive = (fields.get("archiveprefix") or fields.get("eprinttype") or "").strip().lower()
    if fields.get("eprint") and archive in ("arxiv", ""):
        record["arxiv_id"] = fields["eprint"]
    meta = record_metadata(record, where, warnings)
    if "authors" in meta:  # BibTeX separates names with "and" only; "; " is a valid part of a name there
        names = re.split(r"\s+and\s+", fields["author"], flags=re.IGNORECASE)
        meta["authors"] = [n for n in (" ".join(p.split()) for p in names) if n]
    return meta


# Fields BibTeX tools read verbatim: LaTeX decoding would cut a url at its first "%".
VERBATIM_FIELDS = frozenset({"url", "doi", "eprint"})


def prose_latex_decoding() -> Any:
    """A bibtexparser middleware decoding LaTeX ({\\"u} -> ü, {BERT} -> BERT) in all but the verbatim fields."""
    from bibtexparser.middlewares import LatexDecodingMiddleware

    class ProseLatexDecoding(LatexDecodingMiddleware):
        def transform_entry(self, entry: Any, library: Any) -> Any:
            verbatim = [f for f in entry.fields if f.key.lower() in VERBATIM_FIELDS]
            entry.fields = [f for f in entry.fields if f.key.lower() not in VERBATIM_FIELDS]
            try:
                return super().transform_entry(entry, library)
            finally:
                entry.fields = entry.fields + verbatim

    return ProseLatexDecoding()


def read_bib(path: Path, label: str, warnings: list[str]) -> list[BibEntry]:
    """The entries of one .bib file; what does not parse is a warning naming the file and line."""
    import bibtexparser

    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        warnings.append(f"{label}: cannot read ({exc.strerror or exc}); its metadata is ignored")
        return []
    except UnicodeDecodeError:
        warnings.append(f"{label}: not a UTF-8 text file; its metadata is ignored")
        return []
    log = logging.getLogger("bibtexparser")
    level = log.level
    log.setLevel(logging.CRITICAL)  # it logs each bad block; the warnings below say the same, once
    try:
        library = bibtexparser.parse_string(text, append_middleware=[prose_latex_decoding()])
    except Exception as exc:  # the parser is fault tolerant; anything it still raises is the file's fault
        warnings.append(f"{label}: not a readable .bib file ({type(exc).__name__}: {exc}); its metadata is ignored")
        return []
    finally:
        log.setLevel(level)
    for block in library.failed_blocks:
        where = f"the entry at line {block.start_line + 1}" if block.start_line is not None else "an entry"
        error = block.error
        reason = getattr(error, "abort_reason", None) or str(error) or type(error).__name__
        warnings.append(f"{label}: {where} does not parse ({' '.join(reason.split())}); it is ignored")
    entries = []
    for entry in library.entries:
        where = f"{label}: entry {entry.key}"
        fields = {f.key.lower(): str(f.value) for f in entry.fields}
        meta = _entry_metadata(fields, where, warnings)
        try:
            key = check_key(entry.key)
        except BadField as exc:
            warnings.append(f"{where}: the key {exc}; a key is generated instead")
            key = None
        if key:
            meta["bibtex_key"] = key
        entries.append(BibEntry(key=entry.key, title=" ".join(fields.get("title", "").split()), meta=meta))
    return entries


class BibIndex:
    """The entries of a corpus's .bib files, found by key (= a document file's stem) or by title."""

    def __init__(self, entries: Iterable[BibEntry]) -> None:
        self.by_key: dict[str, BibEntry] = {}
        self.by_title: dict[str, BibEntry] = {}
        for e in entries:
            self.by_key.setdefault(e.key, e)
            if title := normalise_title(e.title):
                self.by_title.setdefault(title, e)

    def __bool__(self) -> bool:
        return bool(self.by_key)

    def match(self, stem: str, title: str) -> BibEntry | None:
        return self.by_key.get(stem) or self.by_title.get(normalise_title(title))
