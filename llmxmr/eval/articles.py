"""Any system's article, read into one shape: sections (heading, level, text), the reference list mapped to
corpus documents, and each section's citations as corpus document ids.

Three inputs: our OUTDIR (`survey.json`), a Markdown file with a reference list (numbered `[n]` or `n.`
entries, or author-year entries), and the reference implementation's JSONL (`content` holds the Markdown;
`title` the survey's title). Headings need no numbers. In-text citations may be numeric (`[3]`, `[1, 4-6]`),
pandoc keys (`[@key]`, matched against the references' keys or our paper ids) or author-year
(`(Smith et al., 2020)`, matched against the reference list by first author's family name and year). A
reference is mapped to a corpus document by DOI, arXiv id or title; what cannot be mapped is reported.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmxmr.citations import find_citations, iter_prose
from llmxmr.state.records import Document

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_NUMBER_PREFIX = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+")
_REFERENCES_HEADING = re.compile(r"^(references|bibliography|works cited|参考文献)$", re.I)
_REF_ENTRY = re.compile(r"^\s*(?:\[(\d+)\]|(\d+)\.)\s+(.*\S)\s*$")
_NUMERIC_CITE = re.compile(r"\[(\d+(?:\s*[-–]\s*\d+)?(?:\s*[,;]\s*\d+(?:\s*[-–]\s*\d+)?)*)\](?!\()")
_AUTHOR_YEAR = re.compile(r"\(([^()]*?\b(?:1[89]|20)\d{2}[a-z]?[^()]*)\)")
_AY_ITEM = re.compile(r"([A-Z][\w'’\-]+)(?:\s+(?:et al\.?|and|&)\s*(?:[A-Z][\w'’\-]+)?)?,?\s+((?:1[89]|20)\d{2})")
_DOI = re.compile(r"\b10\.\d{4,9}/[^\s\"<>]+", re.I)
_ARXIV = re.compile(r"\b(?:arxiv[:/ ]\s*|arxiv\.org/abs/)(\d{4}\.\d{4,5}|[a-z\-]+/\d{7})", re.I)
TITLE_MATCH = 0.8  # share of a corpus title's words a reference must contain to be that document


@dataclass
class Reference:
    label: str  # "3" for [3], the key of [@key], or the entry's text for author-year lists
    text: str  # the entry as written
    paper_id: str | None = None  # the corpus document it maps to (None: not in the corpus)


@dataclass
class Section:
    heading: str  # without its number
    level: int  # 1 for the top sections
    text: str  # the prose under the heading, up to the next heading
    cited: list[str] = field(default_factory=list)  # corpus paper ids, in order, repeats kept
    unresolved: int = 0  # in-text citations that name no mapped reference


@dataclass
class Article:
    system: str  # the name shown in the comparison table
    title: str
    sections: list[Section]
    references: list[Reference]
    source: str  # where it was read from
    report: dict | None = None  # our survey.json, when the article is ours (stages, verification)
    block_outlines: list[tuple[int, str]] = field(default_factory=list)  # ours: (block, outline-b<block>.md)

    @property
    def unmapped(self) -> list[Reference]:
        return [r for r in self.references if r.paper_id is None]


def _norm_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.findall(r"[a-z0-9]+", folded)


def map_reference(text: str, corpus: Sequence[Document]) -> str | None:
    """The corpus document a reference entry names: by DOI, by arXiv id, else by title words."""
    doi = _DOI.search(text)
    arxiv = _ARXIV.search(text)
    for doc in corpus:
        if doi and doc.doi and doc.doi.lower() == doi.group(0).rstrip(".,;").lower():
            return doc.paper_id
        if arxiv and doc.arxiv_id and doc.arxiv_id.split("v")[0] == arxiv.group(1).split("v")[0]:
            return doc.paper_id
    words = set(_norm_words(text))
    best, best_share = None, 0.0
    for doc in corpus:
        title = _norm_words(doc.title)
        if len(title) < 2:
            continue
        share = sum(1 for w in title if w in words) / len(title)
        if share > best_share:
            best, best_share = doc.paper_id, share
    return best if best_share >= TITLE_MATCH else None


def _split_references(lines: list[str]) -> tuple[list[str], list[str]]:
    """(body lines, reference entry lines): the entries under the last References heading."""
    for i in range(len(lines) - 1, -1, -1):
        m = _HEADING.match(lines[i])
        if m and _REFERENCES_HEADING.match(_NUMBER_PREFIX.sub("", m.group(2)).strip()):
            return lines[:i], [line for line in lines[i + 1:] if line.strip()]
    return lines, []


def _entries(lines: list[str]) -> list[Reference]:
    refs = []
    for line in lines:
        m = _REF_ENTRY.match(line)
        if m:
            refs.append(Reference(label=m.group(1) or m.group(2), text=m.group(3)))
        else:  # an author-year list ("- Smith, J. (2020). Title.") or a continuation
            entry = line.strip().lstrip("-*• ").strip()
            if entry:
                refs.append(Reference(label=entry, text=entry))
    return refs


def _numbers(group: str) -> list[str]:
    out = []
    for part in re.split(r"[,;]", group):
        bounds = [int(x) for x in re.findall(r"\d+", part)]
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 50:
            out += [str(n) for n in range(bounds[0], bounds[1] + 1)]
        else:
            out += [str(b) for b in bounds]
    return out


def _author_year_key(text: str) -> tuple[str, str] | None:
    """(family name, year) of an in-text citation: "Vaswani et al., 2017", "Kingma and Ba, 2015", "Smith 2020"."""
    m = _AY_ITEM.search(text)
    return (m.group(1).lower(), m.group(2)) if m else None


_YEAR = re.compile(r"\b((?:1[89]|20)\d{2})[a-z]?\b")


def _entry_key(text: str) -> tuple[str, str] | None:
    """(first author's family name, year) of a reference entry: "Vaswani, A. et al. (2017). Title...";
    the family name is the entry's first word."""
    first = re.match(r"\s*([A-Z][\w'’\-]+)", text)
    year = _YEAR.search(text)
    return (first.group(1).lower(), year.group(1)) if first and year else None


def _cited_labels(text: str, refs: list[Reference]) -> tuple[list[str], int]:
    """Reference labels cited in `text` (outside code) and the count that name no reference."""
    by_label = {r.label: r for r in refs}
    by_author_year = {}
    for r in refs:
        key = _entry_key(r.text)
        if key:
            by_author_year.setdefault(key, r.label)
    labels, unresolved = [], 0
    for is_code, chunk in iter_prose(text):
        if is_code:
            continue
        for key in find_citations(chunk):
            if key in by_label:
                labels.append(key)
            else:
                unresolved += 1
        for m in _NUMERIC_CITE.finditer(chunk):
            for n in _numbers(m.group(1)):
                if n in by_label:
                    labels.append(n)
                else:
                    unresolved += 1
        for m in _AUTHOR_YEAR.finditer(chunk):
            for item in re.split(r";", m.group(1)):
                key = _author_year_key(item)
                if key is None:
                    continue
                if key in by_author_year:
                    labels.append(by_author_year[key])
                else:
                    unresolved += 1
    return labels, unresolved


def parse_markdown(markdown: str, corpus: Sequence[Document], *, system: str, source: str,
                   paper_keys: dict[str, str] | None = None) -> Article:
    """An article from Markdown; `paper_keys` maps citation keys to paper ids directly (our own articles)."""
    body, ref_lines = _split_references(markdown.splitlines())
    refs = _entries(ref_lines)
    for key, pid in (paper_keys or {}).items():
        if not any(r.label == key for r in refs):
            refs.append(Reference(label=key, text=key, paper_id=pid))
    for r in refs:
        if r.paper_id is None:
            r.paper_id = map_reference(r.text, corpus)
    title, sections, current = "", [], None
    for line in body:
        m = _HEADING.match(line)
        if m:
            level, heading = len(m.group(1)), _NUMBER_PREFIX.sub("", m.group(2)).strip()
            if level == 1 and not title:
                title = heading
                continue
            current = Section(heading=heading, level=level, text="")
            sections.append(current)
        elif current is not None:
            current.text += line + "\n"
    if not sections and body:  # no headings at all: the whole text is one section
        sections = [Section(heading=title or "Article", level=2, text="\n".join(body))]
    top = min((s.level for s in sections), default=2)
    by_label = {r.label: r.paper_id for r in refs}
    for s in sections:
        s.level = s.level - top + 1
        s.text = s.text.strip()
        labels, s.unresolved = _cited_labels(s.text, refs)
        s.cited = [by_label[label] for label in labels if by_label.get(label)]
        s.unresolved += sum(1 for label in labels if not by_label.get(label))
    return Article(system=system, title=title, sections=sections, references=refs, source=source)


def load_article(path: str | Path, corpus: Sequence[Document], *, system: str | None = None) -> Article:
    """Our OUTDIR (or its survey.json), a Markdown file, or the reference implementation's JSONL."""
    path = Path(path)
    name = system or (path.name if path.is_dir() else path.stem)
    if path.is_dir():
        path = path / "survey.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (give an OUTDIR with survey.json, a .md file or a .jsonl file)")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        report = json.loads(text)
        article = _ours(report, corpus, name, str(path))
        return article
    if path.suffix == ".jsonl":
        line = next((x for x in text.splitlines() if x.strip()), "")
        record = json.loads(line) if line else {}
        markdown = record.get("content") or record.get("survey") or ""
        if not isinstance(markdown, str) or not markdown.strip():
            raise ValueError(f"{path}: the first record has no Markdown `content` (or `survey`) field")
        article = parse_markdown(markdown, corpus, system=name, source=str(path))
        article.title = record.get("title") or article.title
        return article
    return parse_markdown(text, corpus, system=name, source=str(path))


def _ours(report: dict, corpus: Sequence[Document], name: str, source: str) -> Article:
    """Our survey.json: the numbered article, with its references mapped by paper id (then checked against the
    corpus, which may be another version)."""
    known = {d.paper_id for d in corpus}
    keys = {str(r["n"]): r["paper_id"] if r["paper_id"] in known else None for r in report.get("references") or []}
    article = parse_markdown(report["content"], corpus, system=name, source=source)
    for r in article.references:
        if r.label in keys:
            r.paper_id = keys[r.label] or map_reference(r.text, corpus)
    by_label = {r.label: r.paper_id for r in article.references}
    for s in article.sections:
        labels, s.unresolved = _cited_labels(s.text, article.references)
        s.cited = [by_label[label] for label in labels if by_label.get(label)]
        s.unresolved += sum(1 for label in labels if not by_label.get(label))
    article.report = report
    article.title = report.get("title") or article.title
    folder = Path(source).parent  # OUTDIR keeps every block's outline as outline-b<block>.md
    for f in sorted(folder.glob("outline-b*.md"), key=lambda p: p.stem):
        number = f.stem.removeprefix("outline-b")
        if number.isdigit():
            article.block_outlines.append((int(number), f.read_text(encoding="utf-8", errors="replace")))
    article.block_outlines.sort()
    return article
