"""Export: the article as markdown (survey.md), the full record of the run (survey.json), and the
references for the user's own tools: references.bib, references.json (CSL-JSON) and survey.pandoc.md.

`SurveyReport` is the public, versioned schema of survey.json (docs/survey.schema.json is generated from
it by scripts/write_schema.py). Citations arrive here already numbered (`citations.number_citations`);
this module lays out headings by outline position and checks the finished article.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmxmr.artifacts import atomic_write
from llmxmr.citations import Reference, find_citations, iter_prose
from llmxmr.core.sources import SourceAccount
from llmxmr.references import BIB_NAME, CSL_NAME, PANDOC_NAME, to_bibtex, to_csl_json
from llmxmr.state.records import (
    Failure,
    InFlightLimit,
    Outline,
    Section,
    SkippedDocument,
    StageUsage,
)

SURVEY_SCHEMA_VERSION = "1.0"
MD_NAME = "survey.md"
JSON_NAME = "survey.json"


class IncludedPaper(BaseModel):
    paper_id: str
    title: str
    url: str | None = None


class PapersReport(BaseModel):
    included: list[IncludedPaper] = Field(default_factory=list)
    skipped: list[SkippedDocument] = Field(default_factory=list)


class EntropyRecord(BaseModel):
    """One recorded score decision: a convolution layer, a block's outline, or the final choice."""

    kind: Literal["layer", "block", "refine", "final"]
    block: int
    layer: int | None = None  # None for block and final records
    best: float | None = None  # None when every unit of the layer failed
    mean: float | None = None
    parts: dict[str, Any] = Field(default_factory=dict)  # J, H, E, lambda, coverage, ...


class PassageRef(BaseModel):
    paper_id: str
    start: int  # character span in the paper's text (as loaded)
    end: int


class CitationCheck(BaseModel):
    """The verifier's verdict on one (claim, cited paper) pair."""

    paper_id: str
    verdict: Literal["supported", "partial", "unsupported", "unchecked"]
    passage: PassageRef | None = None  # the passage the verdict relied on
    confidence: float | None = None  # p(verdict) from the provider's log-probabilities, where it returns them
    reason: str = ""
    round: int = 1  # 1: as written; 2: after the section's repair


class ClaimCheck(BaseModel):
    section_id: str
    claim: str
    cited: list[str]
    status: Literal["supported", "partial", "unsupported", "unchecked"]  # its worst-supported citation
    repaired: bool = False  # written by the repair (re-cited, weakened or added)
    checks: list[CitationCheck] = Field(default_factory=list)
    version: int | None = None  # the survey version whose check gave these verdicts (an update keeps the others')


class VerificationReport(BaseModel):
    """The citation check: every cited claim against the cited papers' best passages (default mode). The
    counts cover the whole article; after an update, the sections it kept count with the verdicts of the
    version that checked them (`checked_sections`: what this version checked)."""

    claims_checked: int = 0
    pairs: int = 0  # (claim, cited paper) pairs
    supported_before: int = 0  # claims supported (or partly) as first written
    supported_after: int = 0  # after the repair
    unsupported: int = 0  # still unsupported: marked or removed in the article (settings.unsupported_claims)
    unchecked: int = 0  # the verifier's answer was unusable: reported, neither passed nor marked
    repaired_sections: int = 0
    coverage: float | None = None  # documents cited ÷ documents with evidence
    checked_sections: list[str] | None = None  # sections whose claims this version checked (None: not recorded)
    claims: list[ClaimCheck] = Field(default_factory=list)


class SurveyReport(BaseModel):
    """survey.json: the article plus everything needed to judge and reproduce it."""

    schema_version: str = SURVEY_SCHEMA_VERSION
    title: str
    outline: Outline
    content: str = Field(description="The article in markdown, citations numbered, References included.")
    references: list[Reference] = Field(default_factory=list)
    papers: PapersReport = Field(default_factory=PapersReport)
    entropy_history: list[EntropyRecord] = Field(default_factory=list)
    stop_reason: str = ""
    usage: dict[str, StageUsage] = Field(default_factory=dict, description="Per stage.")
    concurrency: dict[str, InFlightLimit] = Field(
        default_factory=dict, description="Per model: requests in flight at once, adapted to the server's speed.")
    failures: list[Failure] = Field(default_factory=list)
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Resolved settings plus model names, seed, package versions and thread id.",
    )
    pandoc_markdown: str = Field(
        default="",
        description="The article with pandoc citations [@key] (keys of references.bib) and no References "
        "section: `pandoc --citeproc` adds it. Empty in reports written before it existed.",
    )
    verification: VerificationReport | None = Field(default=None, description="None when the check was off.")
    sources: SourceAccount | None = Field(
        default=None, description="Every input document: cited, or excluded with its reason.")


# ---------------------------------------------------------------- markdown


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+")


def _norm_title(s: str) -> str:
    return " ".join(_NUMBERING.sub("", s.strip()).lower().split()).strip(" .:")


def _fix_body(body: str, level: int, title: str, has_children: bool) -> str:
    """Keep the heading tree consistent: drop a repeated section title, demote or flatten body headings.

    A leaf's own headings are shifted below `level`; a parent's become bold lines, because unnumbered
    sub-headings there would read as siblings of its numbered children.
    """
    pieces = list(iter_prose(body.strip("\n")))
    levels = [
        len(m.group(1))
        for is_code, chunk in pieces
        if not is_code
        for line in chunk.splitlines()
        if (m := _HEADING.match(line))
    ]
    shift = max(0, level + 1 - min(levels)) if levels else 0
    first = True
    out: list[str] = []
    for is_code, chunk in pieces:
        if is_code:
            out.append(chunk)
            first = False
            continue
        lines = []
        for line in chunk.splitlines(keepends=True):
            m = _HEADING.match(line.rstrip("\r\n"))
            if first and line.strip():
                first = False
                if m and _norm_title(m.group(2)) == _norm_title(title):
                    continue  # the model repeated the section's own heading
            if m:
                new_level = len(m.group(1)) + shift
                end = "\n" if line.endswith("\n") else ""
                if has_children or new_level > 6:
                    line = f"**{m.group(2)}**{end}"
                else:
                    line = f"{'#' * new_level} {m.group(2)}{end}"
            lines.append(line)
        out.append("".join(lines))
    return "".join(out).strip("\n")


def _reference_line(ref: Reference) -> str:
    title = " ".join(ref.title.split())
    if not title.endswith((".", "?", "!")):
        title += "."
    return f"[{ref.n}] {title}" + (f" {ref.url}" if ref.url else "")


def render_markdown(
    title: str, outline: Outline, section_texts: dict[str, str], references: list[Reference]
) -> str:
    """The article: `# title`, sections numbered by position (`## 1 T`, `### 1.2 T`), then References."""
    parts = [f"# {' '.join(title.split())}"]

    def walk(sections: list[Section], prefix: str, depth: int) -> None:
        for i, sec in enumerate(sections, 1):
            number = f"{prefix}.{i}" if prefix else str(i)
            level = min(depth + 1, 6)
            parts.append(f"{'#' * level} {number} {' '.join(sec.title.split())}")
            body = _fix_body(section_texts.get(sec.section_id, ""), level, sec.title, bool(sec.children))
            if body.strip():
                parts.append(body)
            walk(sec.children, number, depth + 1)

    walk(outline.sections, "", 1)
    if references:
        parts.append("## References")
        parts.extend(_reference_line(r) for r in sorted(references, key=lambda r: r.n))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- writing


def _atomic_write(path: Path, text: str) -> None:
    # A crash mid-write must not leave a truncated survey.json next to a complete survey.md.
    atomic_write(path, text)


def _ending_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def write_outputs(outdir: str | Path, report: SurveyReport) -> tuple[Path, Path]:
    """Write survey.md (the article) and survey.json (the report) into `outdir`, and beside them
    references.bib, references.json (CSL-JSON) and survey.pandoc.md (the latter only when the report has
    it); returns the paths of survey.md and survey.json."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out / MD_NAME, out / JSON_NAME
    _atomic_write(md_path, _ending_newline(report.content))
    _atomic_write(json_path, report.model_dump_json(indent=2) + "\n")
    _atomic_write(out / BIB_NAME, to_bibtex(report.references))
    csl = json.dumps(to_csl_json(report.references), indent=2, ensure_ascii=False)
    _atomic_write(out / CSL_NAME, csl + "\n")
    if report.pandoc_markdown:
        _atomic_write(out / PANDOC_NAME, _ending_newline(report.pandoc_markdown))
    return md_path, json_path


# ---------------------------------------------------------------- checking


_NUMERIC = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\](?![(:])")


def check_article(markdown: str, references: list[Reference]) -> list[str]:
    """Problems of a finished article (empty list = fine).

    Every [n] outside code resolves to a reference, every reference is cited, references are numbered
    1..N in order of first appearance, no markers are left unrendered, no "# 0." heading, one "# " title,
    and heading levels never skip (## then ####).
    """
    problems: list[str] = []
    body, listed = markdown, None
    m = re.search(r"(?m)^## References[ \t]*$", markdown)
    if m:
        body, listed = markdown[: m.start()], markdown[m.end() :]

    cited: list[int] = []
    prev_level = 0
    h1 = 0
    for is_code, chunk in iter_prose(body):
        if is_code:
            continue
        for n in _NUMERIC.findall(chunk):
            cited.extend(int(x) for x in n.split(","))
        for line in chunk.splitlines():
            h = _HEADING.match(line)
            if not h:
                continue
            level = len(h.group(1))
            if re.match(r"0(?:[.\s]|$)", h.group(2)):
                problems.append(f"stray heading {line.strip()!r}")
            if level == 1:
                h1 += 1
            elif prev_level and level > prev_level + 1:
                problems.append(f"heading level jumps from {prev_level} to {level} at {line.strip()!r}")
            prev_level = level
    if h1 != 1:
        problems.append(f"expected exactly one '# ' title heading, found {h1}")
    for pid in dict.fromkeys(find_citations(body)):
        problems.append(f"unrendered citation marker [@{pid}]")

    ref_ns = [r.n for r in references]
    if ref_ns != list(range(1, len(ref_ns) + 1)):
        problems.append(f"references are not numbered 1..{len(ref_ns)}: {ref_ns}")
    known = set(ref_ns)
    for n in dict.fromkeys(cited):
        if n not in known:
            problems.append(f"[{n}] does not resolve to a listed reference")
    for n in ref_ns:
        if n not in cited:
            problems.append(f"reference [{n}] is never cited")
    order = [n for n in dict.fromkeys(cited) if n in known]
    if order != sorted(order):
        problems.append(f"citation numbers are not in order of first appearance: {order}")

    if references and listed is None:
        problems.append("the article has no '## References' section")
    elif listed is not None:
        in_list = [int(x) for x in re.findall(r"(?m)^\[(\d+)\]", listed)]
        if in_list != ref_ns:
            problems.append(f"the References section lists {in_list}, expected {ref_ns}")
    return problems
