"""What each model call must return: bounded pydantic schemas, one per kind of answer.

Bounds (maxItems / maxLength) keep small models that pretty-print JSON inside `max_tokens`, and give the
JSON-schema-constrained decoders of llama.cpp / vLLM / OpenAI a finite grammar. Outline drafts use three
explicit levels instead of a recursive model because grammar compilers handle `$ref` recursion poorly.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema, create_model

SHORT = 200
MEDIUM = 500
LONG = 1200



def _cut(limit: int):
    # Schemas advertise the bound (constrained decoders obey it); a model that overshoots is cut, not rejected.
    def cut(value: Any) -> Any:
        return value[:limit] if isinstance(value, (str, list)) else value

    return BeforeValidator(cut)


Note = Annotated[str, _cut(300), Field(max_length=300)]


class Notes(BaseModel):
    """map / reduce: the document's key claims, methods, results and numbers relevant to the topic."""

    notes: Annotated[list[Note], _cut(8)] = Field(default_factory=list, max_length=8, description="One finding per item.")


class Topic(BaseModel):
    name: Annotated[str, _cut(SHORT)] = Field(max_length=SHORT)
    papers: Annotated[list[int], _cut(400)] = Field(max_length=400, description="Numbers of the papers in this topic.")


class Topics(BaseModel):
    """group: papers by topic (numbers as listed in the prompt)."""

    topics: Annotated[list[Topic], _cut(60)] = Field(max_length=60)


# Titles must not be empty: on the wire only (a grammar-constrained decoder cannot answer ""); a model that
# does anyway is handled where the outline is built, as before.
_NON_EMPTY = {"minLength": 1}


class LeafDraft(BaseModel):
    title: Annotated[str, _cut(SHORT)] = Field(max_length=SHORT, json_schema_extra=_NON_EMPTY)
    construction: Annotated[str, _cut(MEDIUM)] = Field(default="", max_length=MEDIUM)
    analysis: Annotated[str, _cut(MEDIUM)] = Field(default="", max_length=MEDIUM)


class SubsectionDraft(LeafDraft):
    subsections: Annotated[list[LeafDraft], _cut(8)] = Field(default_factory=list, max_length=8)


class SectionDraft(LeafDraft):
    subsections: Annotated[list[SubsectionDraft], _cut(8)] = Field(default_factory=list, max_length=8)


class OutlineDraft(BaseModel):
    """skeleton / merge_skeleton / reference modify: a whole outline without ids."""

    title: Annotated[str, _cut(SHORT)] = Field(max_length=SHORT, json_schema_extra=_NON_EMPTY)
    sections: Annotated[list[SectionDraft], _cut(10)] = Field(max_length=10)


class SectionContent(BaseModel):
    section_id: Annotated[str, _cut(16)] = Field(max_length=16)
    content: Annotated[str, _cut(MEDIUM * 2)] = Field(max_length=MEDIUM * 2)


class DigestReply(BaseModel):
    """digest: the paper's content for each relevant section, plus one suggestion for the outline."""

    sections: Annotated[list[SectionContent], _cut(12)] = Field(default_factory=list, max_length=12)
    suggestion: Annotated[str, _cut(LONG)] = Field(default="", max_length=LONG)


@functools.lru_cache(maxsize=256)
def digest_reply_for(section_ids: tuple[str, ...]) -> type[DigestReply]:
    """DigestReply for one outline: the wire schema lists the outline's real section ids as an `enum`, so a
    grammar-constrained decoder (llama.cpp, vLLM) cannot name a section that does not exist. Parsing stays
    as lenient as DigestReply's: an unknown id that still arrives is dropped and recorded by the digest step."""
    item = create_model("SectionContent", __base__=SectionContent, section_id=(
        Annotated[str, _cut(16)], Field(max_length=16, json_schema_extra={"enum": list(section_ids)})))
    return create_model("DigestReply", __base__=DigestReply, sections=(
        Annotated[list[item], _cut(12)], Field(default_factory=list, max_length=12)))  # type: ignore[valid-type]


class SuggestionReply(BaseModel):
    """feedback / merge / critique: one integrated suggestion."""

    suggestion: Annotated[str, _cut(LONG)] = Field(max_length=LONG)


class EditDraft(BaseModel):
    op: Literal["add", "remove", "move", "retitle", "describe"]
    section_id: Annotated[str | None, _cut(16)] = Field(default=None, max_length=16)
    parent_id: Annotated[str | None, _cut(16)] = Field(default=None, max_length=16)
    position: int | None = None
    title: Annotated[str | None, _cut(SHORT)] = Field(default=None, max_length=SHORT)
    construction: Annotated[str | None, _cut(MEDIUM)] = Field(default=None, max_length=MEDIUM)
    analysis: Annotated[str | None, _cut(MEDIUM)] = Field(default=None, max_length=MEDIUM)


class EditsReply(BaseModel):
    """modify (default mode): edits to the outline by section_id."""

    edits: Annotated[list[EditDraft], _cut(12)] = Field(default_factory=list, max_length=12)


class JudgeDigit(BaseModel):
    """judge (default mode): the rationale first, then a single digit 0-9 at a fixed position."""

    rationale: Annotated[str, _cut(MEDIUM * 2)] = Field(max_length=MEDIUM * 2)
    score: int = Field(ge=0, le=9)


class JudgeNumber(BaseModel):
    """judge (reference mode): a 0-10 rating."""

    rationale: Annotated[str, _cut(MEDIUM * 2)] = Field(max_length=MEDIUM * 2)
    score: float = Field(ge=0, le=10)


class Verdict(BaseModel):
    """One claim's verdict, the digit last (its logprobs give the confidence, as the judge's score digit does)."""

    claim: int = Field(ge=1, le=200, description="Number of the claim.")
    passage: int = Field(default=0, ge=0, le=20, description="Number of the passage relied on; 0 for none.")
    reason: Annotated[str, _cut(SHORT)] = Field(default="", max_length=SHORT)
    verdict: int = Field(ge=0, le=2, description="2 supported, 1 partially supported, 0 not supported.")


class VerdictsReply(BaseModel):
    """verify: a verdict per numbered claim."""

    verdicts: Annotated[list[Verdict], _cut(60)] = Field(default_factory=list, max_length=60)


class ClaimFix(BaseModel):
    claim: int = Field(ge=1, le=400, description="Number of the claim fixed.")
    text: Annotated[str, _cut(MEDIUM)] = Field(default="", max_length=MEDIUM, description="The new claim; empty drops it.")


class Addition(BaseModel):
    section_id: Annotated[str, _cut(16)] = Field(max_length=16)
    text: Annotated[str, _cut(MEDIUM)] = Field(max_length=MEDIUM)


class RepairReply(BaseModel):
    """repair: replacements of flagged claims, and sentences that place uncited evidence papers."""

    fixes: Annotated[list[ClaimFix], _cut(40)] = Field(default_factory=list, max_length=40)
    additions: Annotated[list[Addition], _cut(12)] = Field(default_factory=list, max_length=12)


class AtomicClaims(BaseModel):
    """eval_claims: the distinct factual claims of one section."""

    claims: Annotated[list[Annotated[str, _cut(SHORT)]], _cut(40)] = Field(default_factory=list, max_length=40)


class Chart(BaseModel):
    section_id: Annotated[str, _cut(16)] = Field(max_length=16)
    caption: Annotated[str, _cut(SHORT)] = Field(max_length=SHORT)
    mermaid: Annotated[str, _cut(LONG)] = Field(max_length=LONG)


class ChartsReply(BaseModel):
    """charts: mermaid charts or tables proposed for sections."""

    charts: Annotated[list[Chart], _cut(6)] = Field(default_factory=list, max_length=6)


# --- schemas built for one call -----------------------------------------------------------------------
# Each lists what the call may name (the outline's section ids, the numbers of the claims it was shown) so a
# grammar-constrained decoder (llama.cpp, vLLM) cannot name anything else. The wire schema only: parsing stays
# as lenient as the base class's, and the node still drops (and records) what does not exist. llama.cpp reads
# `anyOf` before `enum`, so a nullable id carries its enum inside the string branch.


def _id_wire(ids: tuple[str, ...], *, nullable: bool = False) -> dict[str, Any]:
    one = {"type": "string", "enum": list(ids)}
    return {"anyOf": [one, {"type": "null"}]} if nullable else one


def _at_most(items: int) -> dict[str, Any]:
    # On the wire only: a longer list that still arrives is cut or checked by the node, never rejected whole.
    return {"maxItems": max(0, items)}


def _number_wire(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


@functools.lru_cache(maxsize=256)
def edits_reply_for(section_ids: tuple[str, ...]) -> type[EditsReply]:
    """EditsReply for one outline: section_id and parent_id are its real ids (or null: top level / an add),
    a title given is not empty, a position is within a sibling list's bounds."""
    if not section_ids:
        return EditsReply  # an empty enum is no grammar
    text = {"type": "string", "minLength": 1, "maxLength": SHORT}
    item = create_model(
        "EditDraft", __base__=EditDraft,
        section_id=(Annotated[str | None, _cut(16), WithJsonSchema(_id_wire(section_ids, nullable=True))], None),
        parent_id=(Annotated[str | None, _cut(16), WithJsonSchema(_id_wire(section_ids, nullable=True))], None),
        title=(Annotated[str | None, _cut(SHORT), WithJsonSchema({"anyOf": [text, {"type": "null"}]})], None),
        position=(Annotated[int | None, WithJsonSchema({"anyOf": [_number_wire(0, 10), {"type": "null"}]})], None))
    wire = {"type": "array", "items": _split_by_op(item.model_json_schema()), **_at_most(12)}
    return create_model("EditsReply", __base__=EditsReply, edits=(
        Annotated[list[item], _cut(12), WithJsonSchema(wire)], Field(default_factory=list, max_length=12)))  # type: ignore[valid-type]


def _split_by_op(edit: dict[str, Any]) -> dict[str, Any]:
    """An edit's wire schema as two shapes: an add gives a title and names no section; the other edits name
    the section they change (one of the outline's ids). A grammar-enforcing server (llama.cpp) then cannot
    send a remove, move, retitle or describe without its target, which would only be rejected."""
    props = edit["properties"]
    section = next(b for b in props["section_id"]["anyOf"] if b.get("type") == "string")
    title = next(b for b in props["title"]["anyOf"] if b.get("type") == "string")
    changes = [op for op in props["op"]["enum"] if op != "add"]
    add = {**edit, "properties": {**props, "op": {"type": "string", "enum": ["add"]}, "section_id": {"type": "null"},
                                  "title": title}, "required": ["op", "title"]}
    change = {**edit, "properties": {**props, "op": {"type": "string", "enum": changes}, "section_id": section},
              "required": ["op", "section_id"]}
    return {"anyOf": [add, change]}


@functools.lru_cache(maxsize=256)
def repair_reply_for(section_ids: tuple[str, ...], claims: int) -> type[RepairReply]:
    """RepairReply for one batch of sections: fixes name one of the `claims` numbered flagged claims (none
    when nothing was flagged), additions one of these sections."""
    fix = create_model("ClaimFix", __base__=ClaimFix, claim=(
        Annotated[int, WithJsonSchema(_number_wire(1, max(1, claims)))], ...))
    addition = create_model("Addition", __base__=Addition, section_id=(
        Annotated[str, _cut(16), WithJsonSchema(_id_wire(section_ids))], ...))
    return create_model(
        "RepairReply", __base__=RepairReply,
        fixes=(Annotated[list[fix], _cut(40)], Field(default_factory=list, max_length=40, json_schema_extra=_at_most(claims))),  # type: ignore[valid-type]
        additions=(Annotated[list[addition], _cut(12)], Field(default_factory=list, max_length=12)))  # type: ignore[valid-type]


@functools.lru_cache(maxsize=256)
def verdicts_reply_for(claims: int, passages: int) -> type[VerdictsReply]:
    """VerdictsReply for one batch: a verdict per shown claim (1..claims), relying on a shown passage."""
    verdict = create_model(
        "Verdict", __base__=Verdict,
        claim=(Annotated[int, WithJsonSchema(_number_wire(1, max(1, claims)))], ...),
        passage=(Annotated[int, WithJsonSchema(_number_wire(0, passages))], 0))
    return create_model("VerdictsReply", __base__=VerdictsReply, verdicts=(
        Annotated[list[verdict], _cut(60)], Field(default_factory=list, max_length=60, json_schema_extra=_at_most(claims))))  # type: ignore[valid-type]


@functools.lru_cache(maxsize=256)
def charts_reply_for(section_ids: tuple[str, ...]) -> type[ChartsReply]:
    """ChartsReply for one outline: a chart names one of its real (written) sections."""
    if not section_ids:
        return ChartsReply
    chart = create_model("Chart", __base__=Chart, section_id=(
        Annotated[str, _cut(16), WithJsonSchema(_id_wire(section_ids))], ...))
    return create_model("ChartsReply", __base__=ChartsReply, charts=(
        Annotated[list[chart], _cut(6)], Field(default_factory=list, max_length=6)))  # type: ignore[valid-type]


@functools.lru_cache(maxsize=256)
def topics_for(papers: int) -> type[Topics]:
    """Topics for one batch of `papers` titles: a topic lists their numbers (1..papers) and has a name."""
    topic = create_model(
        "Topic", __base__=Topic,
        name=(Annotated[str, _cut(SHORT)], Field(max_length=SHORT, json_schema_extra=_NON_EMPTY)),
        papers=(Annotated[list[Annotated[int, WithJsonSchema(_number_wire(1, max(1, papers)))]], _cut(400)],
                Field(max_length=400, json_schema_extra=_at_most(papers))))
    return create_model("Topics", __base__=Topics, topics=(
        Annotated[list[topic], _cut(60)], Field(max_length=60)))  # type: ignore[valid-type]
