"""What each model call must return: bounded pydantic schemas, one per kind of answer.

Bounds (maxItems / maxLength) keep small models that pretty-print JSON inside `max_tokens`, and give the
JSON-schema-constrained decoders of llama.cpp / vLLM / OpenAI a finite grammar. Outline drafts use three
explicit levels instead of a recursive model because grammar compilers handle `$ref` recursion poorly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SHORT = 200
MEDIUM = 600
LONG = 2000


class Notes(BaseModel):
    """map / reduce: the document's key claims, methods, results and numbers relevant to the topic."""

    notes: list[str] = Field(default_factory=list, max_length=12, description="One finding per item.")


class Topic(BaseModel):
    name: str = Field(max_length=SHORT)
    papers: list[int] = Field(max_length=400, description="Numbers of the papers in this topic.")


class Topics(BaseModel):
    """group: papers by topic (numbers as listed in the prompt)."""

    topics: list[Topic] = Field(max_length=60)


class LeafDraft(BaseModel):
    title: str = Field(max_length=SHORT)
    construction: str = Field(default="", max_length=MEDIUM)
    analysis: str = Field(default="", max_length=MEDIUM)


class SubsectionDraft(LeafDraft):
    subsections: list[LeafDraft] = Field(default_factory=list, max_length=8)


class SectionDraft(LeafDraft):
    subsections: list[SubsectionDraft] = Field(default_factory=list, max_length=8)


class OutlineDraft(BaseModel):
    """skeleton / merge_skeleton / reference modify: a whole outline without ids."""

    title: str = Field(max_length=SHORT)
    sections: list[SectionDraft] = Field(max_length=10)


class SectionContent(BaseModel):
    section_id: str = Field(max_length=16)
    content: str = Field(max_length=LONG)


class DigestReply(BaseModel):
    """digest: the paper's content for each relevant section, plus one suggestion for the outline."""

    sections: list[SectionContent] = Field(default_factory=list, max_length=40)
    suggestion: str = Field(default="", max_length=LONG)


class SuggestionReply(BaseModel):
    """feedback / merge / critique: one integrated suggestion."""

    suggestion: str = Field(max_length=LONG)


class EditDraft(BaseModel):
    op: Literal["add", "remove", "move", "retitle", "describe"]
    section_id: str | None = Field(default=None, max_length=16)
    parent_id: str | None = Field(default=None, max_length=16)
    position: int | None = None
    title: str | None = Field(default=None, max_length=SHORT)
    construction: str | None = Field(default=None, max_length=MEDIUM)
    analysis: str | None = Field(default=None, max_length=MEDIUM)


class EditsReply(BaseModel):
    """modify (default mode): edits to the outline by section_id."""

    edits: list[EditDraft] = Field(default_factory=list, max_length=12)


class JudgeDigit(BaseModel):
    """judge (default mode): the rationale first, then a single digit 0-9 at a fixed position."""

    rationale: str = Field(max_length=LONG)
    score: int = Field(ge=0, le=9)


class JudgeNumber(BaseModel):
    """judge (reference mode): a 0-10 rating."""

    rationale: str = Field(max_length=LONG)
    score: float = Field(ge=0, le=10)


class Chart(BaseModel):
    section_id: str = Field(max_length=16)
    caption: str = Field(max_length=SHORT)
    mermaid: str = Field(max_length=LONG)


class ChartsReply(BaseModel):
    """charts: mermaid charts or tables proposed for sections."""

    charts: list[Chart] = Field(default_factory=list, max_length=6)
