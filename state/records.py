"""The domain records: papers, outlines, digests, suggestions, scores, failures.

These are plain pydantic models. Small ones (paper refs, suggestions, scores, failures) travel in graph
state; large ones (documents, notes, digests, candidate outlines) live in the store and state holds keys.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Document(BaseModel):
    """One source document as loaded from the corpus (stored in the store, never in state)."""

    paper_id: str
    title: str
    text: str
    abstract: str = ""
    url: str | None = None
    # Bibliographic metadata (optional; from the corpus record, a .bib file, or detected in the text):
    # what references.bib and references.json are written from.
    authors: list[str] = Field(default_factory=list)  # as written: "Ada Lovelace" or "Lovelace, Ada"
    year: int | None = None
    venue: str | None = None  # journal or proceedings
    doi: str | None = None  # "10.1234/abc", without a resolver prefix
    arxiv_id: str | None = None  # "2301.01234" or "cs/0112017"
    bibtex_key: str | None = None  # the user's own citation key, kept in references.bib


# The metadata fields above, in that order (Document and citations.Reference share them).
METADATA_FIELDS = ("authors", "year", "venue", "doi", "arxiv_id", "bibtex_key")


class PaperRef(BaseModel):
    """What state keeps of a document: its id, title, size and where its text is."""

    paper_id: str
    title: str
    url: str | None = None
    tokens: int = 0
    chunks: int = 1


class SkippedDocument(BaseModel):
    source: str
    reason: str


class Section(BaseModel):
    """A node of the outline; `section_id` is assigned by code, never by the model."""

    section_id: str
    title: str
    construction: str = ""
    analysis: str = ""
    children: list[Section] = Field(default_factory=list)


class Outline(BaseModel):
    """The skeleton: at most 3 levels of sections under the title."""

    title: str
    sections: list[Section] = Field(default_factory=list)
    next_id: int = 1  # the next free numeric section id ("s<next_id>")


class Edit(BaseModel):
    """One edit of the outline returned by edit-based modify.

    op: add (new section under `parent_id`, None = top level, at `position`), remove, move (to `parent_id`
    at `position`), retitle (new `title`), describe (new `construction` and/or `analysis`).
    """

    op: Literal["add", "remove", "move", "retitle", "describe"]
    section_id: str | None = None
    parent_id: str | None = None
    position: int | None = None
    title: str | None = None
    construction: str | None = None
    analysis: str | None = None


class RejectedEdit(BaseModel):
    edit: Edit
    reason: str


class Digest(BaseModel):
    """One paper read against one outline version: per section_id the cited, analysed content."""

    paper_id: str
    outline_key: str
    sections: dict[str, str] = Field(default_factory=dict)
    suggestion: str = ""


class Score(BaseModel):
    """An entropy score with its parts. J is on 0-10; H on 0-1; E = λ·J + (1-λ)·10·H."""

    J: float
    method: Literal["logprobs", "parsed", "failed"] = "parsed"
    uncertainty: float | None = None  # the judge's: entropy of its digit distribution (nats)
    distribution: list[float] | None = None  # p(0) .. p(9) of the judge's score digit, from logprobs
    H: float | None = None
    E: float | None = None
    rationale: str = ""
    reason: str = ""  # why logprobs were not used, or why scoring failed


class Suggestion(BaseModel):
    """A proposed outline change; once applied and scored it carries the result."""

    suggestion_id: str
    text: str
    source: str = ""  # "feedback:g3", "layer2:u5", "refine1:c2"
    outline_key: str | None = None  # the outline it produced when applied to O_b
    score: float | None = None  # J of that outline; None = failed unit
    rationale: str = ""
    order: int = 0  # seeded tie-break


class Failure(BaseModel):
    stage: str
    unit: str
    kind: str  # output_fault, provider_error, context_overflow, ...
    message: str


class StageUsage(BaseModel):
    calls: int = 0
    cached: int = 0  # responses replayed from the durable record (already paid)
    batched: int = 0  # of the calls, answers of a Batch API job (billed at the batch price; replayed by the tasks)
    retries: int = 0
    repairs: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    # Of the prompt tokens, those the provider says it served from its prompt cache (OpenAI's
    # `prompt_tokens_details.cached_tokens`, Gemini's cached content): billed at the cached price.
    cache_read_tokens: int = 0
    completion_tokens: int = 0
    # Of the tokens above, those of Batch API answers (billed at the batch price: half, at OpenAI and Gemini).
    batched_prompt_tokens: int = 0
    batched_completion_tokens: int = 0


class InFlightLimit(BaseModel):
    """A model's adaptive in-flight limit over a run (llmxmr.models.adaptive): where it started (the server's
    parallel slots where reported, else max_concurrency), its ceiling, where it settled, its lowest point,
    and how often time-outs, 429s or 503s lowered it and sustained successes raised it."""

    start: int
    max: int
    settled: int
    lowest: int
    decreases: int = 0
    increases: int = 0
