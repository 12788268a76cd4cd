"""Loading the corpus: the reference JSONL format, or a directory of .md/.txt/.html/.pdf files (with
optional .bib files at its root for the documents' bibliographic metadata).

Every rule about what becomes a document lives here, so the CLI, the public API and the graph input
(inline papers) apply the same ones: empty documents are skipped with a reason, exact duplicates (same
title and same text) collapse into one, everything else gets its own stable id. Problems with the input
file itself raise `CorpusError` with a message meant for the user (file, line, field). Metadata (authors,
year, venue, DOI, arXiv id, citation key) is optional and never costs a document: bad values are warnings
(`llmxmr.metadata`).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from llmxmr.ids import make_paper_id
from llmxmr.metadata import (
    BibIndex,
    complete_identifiers,
    json_type,
    read_bib,
    record_metadata,
)
from llmxmr.state.records import Document, SkippedDocument

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
DOC_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES
BIB_SUFFIX = ".bib"  # metadata beside the documents, never a document itself
PDF_FIX = "pip install 'llmxmr[pdf]'"

_ABSTRACT_WORDS = 60
_TITLE_WORDS = 15
_SNIFF_BYTES = 8192


class CorpusError(ValueError):
    """The corpus cannot be loaded; the message says where and what, for the user."""


class Survey(BaseModel):
    """One survey to write: its title, its usable documents and what was skipped (with reasons)."""

    title: str
    documents: list[Document]
    skipped: list[SkippedDocument] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # kept documents with a caveat (e.g. bad bytes replaced)


# ---------------------------------------------------------------- documents from paper records


@dataclass
class _Entry:
    """One candidate document before the shared rules are applied."""

    source: str  # where it came from, for skip reports: "file.jsonl:3: papers[2]", "dir/a.md"
    title: str
    text: str
    abstract: str = ""
    url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # checked metadata fields (llmxmr.metadata)


# Lone surrogates cannot be encoded; C0/C1 control characters (ESC sequences, NUL) other than tab and line
# ends would reach a terminal or a store raw.
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")  # form feed stays: PDF page breaks


def clean_text(s: str) -> str:
    """Text that entered from outside, made safe to encode, store and print: lone surrogates (from JSON
    "\\ud800") become U+FFFD; control characters other than tab, line ends and form feed are dropped.
    Applied once, where text enters (corpus fields, titles, model answers)."""
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", s))


_clean = clean_text


_HEAD_CHARS = 65_536  # where a title or an abstract is looked for: never split a 200 MB text into all its words


def _head_lines(text: str) -> list[str]:
    """The lines of the text's head (all of them when the head is blank)."""
    lines = text[:_HEAD_CHARS].splitlines()
    return lines if len(text) <= _HEAD_CHARS or any(line.strip() for line in lines) else text.splitlines()


def derive_abstract(text: str, words: int = _ABSTRACT_WORDS) -> str:
    parts = [m.group() for m in itertools.islice(re.finditer(r"\S+", text), words + 1)]
    head = " ".join(parts[:words])
    return head + " …" if len(parts) > words else head


def derive_title(text: str) -> str:
    """The first non-blank line of the text, without markdown heading marks, capped to a few words."""
    for line in _head_lines(text):
        line = line.strip().lstrip("#").strip()
        if line:
            parts = line.split()
            return " ".join(parts[:_TITLE_WORDS]) + (" …" if len(parts) > _TITLE_WORDS else "")
    return ""


def _build(entries: Iterable[_Entry | SkippedDocument]) -> tuple[list[Document], list[SkippedDocument]]:
    """Apply the shared rules; skips already decided upstream pass through in input order."""
    documents: list[Document] = []
    skipped: list[SkippedDocument] = []
    seen: dict[tuple[str, str], str] = {}  # (title, text) -> paper id of the first copy
    used_ids: set[str] = set()
    for e in entries:
        if isinstance(e, SkippedDocument):
            skipped.append(e)
            continue
        text = _clean(e.text).strip()
        if not text:
            skipped.append(SkippedDocument(source=e.source, reason="empty document (no text)"))
            continue
        title = " ".join(_clean(e.title).split()) or derive_title(text)
        key = (title, text)
        if key in seen:
            skipped.append(
                SkippedDocument(source=e.source, reason=f"duplicate of {seen[key]} (same title and text)")
            )
            continue
        paper_id = make_paper_id(title, text)
        if paper_id in used_ids:  # a hash collision of different content: keep both, suffix the later one
            n = 2
            while f"{paper_id}-{n}" in used_ids:
                n += 1
            paper_id = f"{paper_id}-{n}"
        used_ids.add(paper_id)
        seen[key] = paper_id
        abstract = " ".join(_clean(e.abstract).split()) or derive_abstract(text)
        url = e.url.strip() if e.url and e.url.strip() else None
        meta = complete_identifiers(e.meta, text, url)
        documents.append(Document(paper_id=paper_id, title=title, text=text, abstract=abstract, url=url, **meta))
    return documents, skipped


def _entry_from_paper(paper: Any, source: str, warnings: list[str]) -> _Entry | SkippedDocument:
    """Check the fields of one paper record; a bad record is a reported skip, bad metadata a warning."""
    if not isinstance(paper, dict):
        return SkippedDocument(source=source, reason=f"expected a JSON object, got {json_type(paper)}")
    values: dict[str, str | None] = {}
    for name in ("title", "txt", "abstract"):
        value = paper.get(name)
        if value is not None and not isinstance(value, str):
            return SkippedDocument(
                source=source, reason=f'field "{name}" must be a string, not {json_type(value)}'
            )
        values[name] = value
    if values["txt"] is None:
        return SkippedDocument(source=source, reason='missing field "txt" (the document text)')
    meta = record_metadata(paper, source, warnings)
    return _Entry(
        source=source,
        title=values["title"] or "",
        text=values["txt"] or "",
        abstract=values["abstract"] or "",
        url=meta.pop("url", None),
        meta=meta,
    )


def documents_from_papers(
    papers: Sequence[Any], source: str, warnings: list[str] | None = None
) -> tuple[list[Document], list[SkippedDocument]]:
    """Papers in the reference format ({title, abstract?, txt, url?} plus optional metadata: authors, year,
    venue, doi, arxiv_id, bibtex_key) -> documents and reported skips.

    `source` names where the list came from ("file.jsonl:3", "input"); skips and warnings name
    `source: papers[i]`. Warnings about unusable metadata are appended to `warnings` when given.
    """
    if not isinstance(papers, list | tuple):
        raise CorpusError(f'{source}: field "papers" must be a list, not {json_type(papers)}')
    sink = warnings if warnings is not None else []
    return _build(_entry_from_paper(paper, f"{source}: papers[{i}]", sink) for i, paper in enumerate(papers))


def corpus_hash(documents: Iterable[Document]) -> str:
    """Identity of a corpus: ids already hash title and text, so hashing the ids is enough."""
    digest = hashlib.sha256("\n".join(d.paper_id for d in documents).encode("utf-8"))
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- file sniffing


def _binary_kind(head: bytes) -> str | None:
    """What a file really is when it is not text (magic numbers), else None."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if head.startswith(b"%PDF-"):
        return "a PDF file"
    if head.startswith((b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
        return "compressed data"
    if b"\x00" in head[:_SNIFF_BYTES]:
        return "binary data"
    return None


def _decode_text(data: bytes) -> tuple[str, bool]:
    """UTF-8 (BOM tolerated); undecodable bytes become U+FFFD and the caller is told."""
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", errors="replace"), False


# ---------------------------------------------------------------- JSONL


def _no_documents(where: str, skipped: list[SkippedDocument]) -> CorpusError:
    msg = f"no usable documents in {where}"
    if skipped:
        reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        msg += f" (skipped: {reasons}{more})"
    return CorpusError(msg)


def _load_jsonl(path: Path, title: str | None) -> list[Survey]:
    import json

    data = path.read_bytes()
    kind = _binary_kind(data[:_SNIFF_BYTES])
    if kind:
        raise CorpusError(f"{path}: not a JSONL text file (it looks like {kind})")
    surveys: list[Survey] = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"{where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            ) from None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise CorpusError(f'{where}: expected a JSON object {{"title", "papers"}}, got {json_type(record)}')
        survey_title = record.get("title")
        if survey_title is not None and not isinstance(survey_title, str):
            raise CorpusError(f'{where}: field "title" must be a string, not {json_type(survey_title)}')
        survey_title = " ".join(_clean(survey_title or title or "").split())
        if not survey_title:
            raise CorpusError(f'{where}: missing field "title" (the survey title)')
        if "papers" not in record:
            raise CorpusError(f'{where}: missing field "papers"')
        papers = record["papers"]
        if not isinstance(papers, list):
            raise CorpusError(f'{where}: field "papers" must be a list, not {json_type(papers)}')
        warnings: list[str] = []
        documents, skipped = documents_from_papers(papers, where, warnings)
        if not documents:
            raise _no_documents(where, skipped)
        surveys.append(Survey(title=survey_title, documents=documents, skipped=skipped, warnings=warnings))
    if not surveys:
        raise CorpusError(f"{path}: no surveys (the file has no non-blank lines)")
    return surveys


# ---------------------------------------------------------------- documents in files


class _HTMLText(HTMLParser):
    """HTML -> plain text with the standard library: drops script/style, keeps block breaks."""

    _SKIP = {"script", "style", "noscript", "template", "svg"}
    _BLOCK = {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "dt", "dd", "figcaption", "main",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self.h1 = ""
        self._skip = 0
        self._in: str | None = None  # "title" or "h1" while inside one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in ("title", "h1") and not getattr(self, tag):
            self._in = tag
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        if tag == self._in:
            self._in = None
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in == "title":
            self.title += data
            return  # the <title> is metadata, not body text
        if self._in == "h1":
            self.h1 += data
        self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML page; title from <title>, else the first <h1>, else ""."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    title = " ".join(parser.title.split()) or " ".join(parser.h1.split())
    return title, parser.text()


def _stem_title(path: Path) -> str:
    return " ".join(re.sub(r"[_]+", " ", path.stem).split())


def _markdown_title(text: str) -> str:
    """The first top-level '# ' heading of a markdown file, if it comes before any prose."""
    for line in _head_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        m = re.match(r"#\s+(.+?)\s*#*$", stripped)
        return m.group(1) if m else ""
    return ""


def _read_pdf(path: Path) -> tuple[str, str]:
    try:
        import pypdf
    except ImportError:
        raise _Skip(f"PDF support is not installed ({PDF_FIX})") from None
    import logging

    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR)  # its repair warnings ("EOF marker not found") would clutter the CLI
    try:
        reader = pypdf.PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except Exception as exc:  # pypdf raises many types for damaged files
        raise _Skip(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    finally:
        log.setLevel(level)
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise _Skip("PDF has no extractable text (a scan without a text layer?)")
    return str(meta_title).strip(), text


class _Skip(Exception):
    """A document file that is reported and skipped, with the reason as message."""


def _entry_from_file(path: Path, label: str, warnings: list[str]) -> _Entry:
    suffix = path.suffix.lower()
    data = path.read_bytes()
    if suffix in PDF_SUFFIXES:
        if not data.startswith(b"%PDF-"):
            kind = _binary_kind(data[:_SNIFF_BYTES]) or "text"
            raise _Skip(f"not a PDF file (no %PDF header; it looks like {kind})")
        title, text = _read_pdf(path)
        return _Entry(source=label, title=title or _stem_title(path), text=text)
    kind = _binary_kind(data[:_SNIFF_BYTES])
    if kind:
        raise _Skip(f"not a text file (it looks like {kind})")
    raw, clean = _decode_text(data)
    if not clean:
        warnings.append(f"{label}: not valid UTF-8; undecodable bytes were replaced by U+FFFD")
    if suffix in HTML_SUFFIXES:
        title, text = html_to_text(raw)
    else:
        title = _markdown_title(raw) if suffix != ".txt" else ""
        text = raw
    return _Entry(source=label, title=title or _stem_title(path), text=text)


def _link_problem(path: Path, root_real: Path, follow_links: bool) -> str | None:
    """Why a symbolic link is not read, or None when it is (its target stays inside the corpus folder)."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return f"dangling symbolic link (to {os.readlink(path)}, which does not exist)"
    except (RuntimeError, OSError):  # RuntimeError: Python 3.11's "symlink loop"; OSError ELOOP elsewhere
        return f"symbolic link loop (to {os.readlink(path)})"
    if not follow_links and not target.is_relative_to(root_real):
        return (f"symbolic link to {target}, outside the corpus folder: not read "
                "(pass --follow-links to read links that leave the folder)")
    return None


def _walk(folder: Path, root: Path, follow_links: bool, seen: set[Path], files: list[Path],
          skipped: list[SkippedDocument]) -> None:
    root_real = root.resolve()
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):  # .git, .DS_Store, editor files
            continue
        label = str(p.relative_to(root))
        if p.is_symlink():
            problem = _link_problem(p, root_real, follow_links)
            if problem:
                skipped.append(SkippedDocument(source=label, reason=problem))
                continue
        if p.is_dir():
            real = p.resolve()
            if real in seen:  # a link back to a folder already read: its files are read once
                skipped.append(SkippedDocument(source=label, reason=f"link to a folder already read ({real})"))
                continue
            seen.add(real)
            _walk(p, root, follow_links, seen, files, skipped)
        elif p.is_file():
            files.append(p)
        else:  # a FIFO would block the read forever; devices and sockets are not documents
            skipped.append(SkippedDocument(source=label, reason="not a regular file (a pipe, socket or device)"))


def folder_files(root: Path, follow_links: bool = False) -> tuple[list[Path], list[SkippedDocument]]:
    """The files of a folder corpus, and the entries not read with their reasons (links out, loops, dangling)."""
    files: list[Path] = []
    skipped: list[SkippedDocument] = []
    _walk(root, root, follow_links, {root.resolve()}, files, skipped)
    return sorted(files), sorted(skipped, key=lambda s: s.source)


def loaded_files(root: Path, follow_links: bool = False) -> list[Path]:
    """The files a folder corpus reads (documents and .bib): what a thread's fingerprint covers."""
    return [f for f in folder_files(root, follow_links)[0] if f.suffix.lower() in DOC_SUFFIXES + (BIB_SUFFIX,)]


def _bib_index(files: list[Path], root: Path, warnings: list[str]) -> BibIndex:
    """The entries of the .bib files at the corpus root; one deeper down is a warning, not read."""
    entries = []
    for path in files:
        if path.suffix.lower() != BIB_SUFFIX:
            continue
        label = str(path.relative_to(root)) if path != root else path.name
        if path.parent == root:
            entries += read_bib(path, label, warnings)
        else:
            warnings.append(f"{label}: .bib files are read only at the corpus root; ignored")
    return BibIndex(entries)


def _add_bib_metadata(entry: _Entry, path: Path, bib: BibIndex) -> None:
    """Metadata of the bib entry whose key is the file's stem, else whose title is the document's."""
    match = bib.match(path.stem, entry.title)
    if match is None:
        return
    meta = dict(match.meta)
    bib_url = meta.pop("url", None)
    entry.url = entry.url or bib_url
    entry.meta = {**meta, **entry.meta}
    if match.title and entry.title == _stem_title(path):  # a title made from the file name: the bib knows better
        entry.title = match.title


def _load_files(files: list[Path], root: Path, survey_title: str, where: str,
                skipped_links: Sequence[SkippedDocument] = ()) -> Survey:
    entries: list[_Entry | SkippedDocument] = list(skipped_links)
    warnings: list[str] = []
    bib = _bib_index(files, root, warnings)
    for path in files:
        label = str(path.relative_to(root)) if path != root else path.name
        if path.suffix.lower() == BIB_SUFFIX:
            continue  # metadata, read above
        if path.suffix.lower() not in DOC_SUFFIXES:
            reason = f"unsupported file type {path.suffix or '(none)'} (supported: {', '.join(DOC_SUFFIXES)})"
            entries.append(SkippedDocument(source=label, reason=reason))
            continue
        try:
            entry = _entry_from_file(path, label, warnings)
            if bib:
                _add_bib_metadata(entry, path, bib)
            entries.append(entry)
        except _Skip as exc:
            entries.append(SkippedDocument(source=label, reason=str(exc)))
        except OSError as exc:
            entries.append(SkippedDocument(source=label, reason=f"cannot read ({exc.strerror or exc})"))
    documents, skipped = _build(entries)
    if not documents:
        raise _no_documents(where, skipped)
    return Survey(title=survey_title, documents=documents, skipped=skipped, warnings=warnings)


# ---------------------------------------------------------------- entry point


def load_surveys(path: str | Path, *, title: str | None = None, follow_links: bool = False) -> list[Survey]:
    """Load a corpus: a reference-format .jsonl file (one survey per line) or a directory of documents.

    `title` names the survey of a directory (default: the directory's name); for JSONL it only fills in
    a survey line without a title. A single .md/.txt/.html/.pdf file is a one-document survey. In a folder,
    symbolic links that leave it are skipped and reported unless `follow_links`.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise CorpusError(f"corpus not found: {p}")
    if p.is_dir():
        files, skipped = folder_files(p, follow_links)
        if not files:
            if skipped:
                raise _no_documents(str(p), skipped)
            raise CorpusError(f"no usable documents in {p} (the directory has no files)")
        name = _clean(title or p.resolve().name)
        return [_load_files(files, p, name.strip() or "Survey", str(p), skipped)]
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        return _load_jsonl(p, title)
    if suffix in DOC_SUFFIXES:
        return [_load_files([p], p, " ".join(_clean(title or _stem_title(p)).split()), str(p))]
    raise CorpusError(
        f"unsupported corpus file {p}: expected a .jsonl file, a directory or a {'/'.join(DOC_SUFFIXES)} file"
    )
