"""The payload of every `Send`: one `TypedDict` per fanned-out node, so that the routes that make them
(`graph/routes.py`) and the steps that read them (`nodes/`) agree on one written shape.

A payload is persisted with its task, so it carries ids and small records only (docs/DESIGN.md).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict


class MapTask(TypedDict):
    run_id: str
    topic: str
    paper_id: str
    chunk: int


class ReduceTask(TypedDict):
    run_id: str
    topic: str
    paper_id: str
    chunks: int


class SkeletonTask(TypedDict):
    run_id: str
    topic: str
    batch: int
    paper_ids: list[str]


class MergeTask(TypedDict):
    run_id: str
    topic: str
    level: int
    batch: int
    outline_keys: list[str]


DigestPurpose = Literal["skeleton_entropy", "block_entropy", "review_digested", "update_digested"]


class DigestTask(TypedDict):
    run_id: str
    paper_id: str
    outline_key: str
    then: DigestPurpose  # the join of this pass: what the digests are for
    # An outline every paper was digested against (the block's start outline, the outline before a person's
    # edit): the paper is read again only for what changed since (`incremental_digest`). Absent: in full.
    prior_key: NotRequired[str | None]


class BatchMapTask(TypedDict):
    """One Batch API job for the map pass: the (paper id, chunk) of every map task that follows it."""

    run_id: str
    topic: str
    chunks: list[list[Any]]  # [paper_id, chunk]


class BatchDigestTask(TypedDict):
    """One Batch API job for a digest pass: the papers of its digest tasks, against one outline."""

    run_id: str
    outline_key: str
    paper_ids: list[str]
    then: DigestPurpose
    prior_key: NotRequired[str | None]  # as DigestTask's


class FeedbackTask(TypedDict):
    run_id: str
    block: int
    outline_key: str
    group: int
    paper_ids: list[str]


class ConvUnitTask(TypedDict):
    run_id: str
    block: int
    layer: int
    base_key: str
    unit: int
    suggestions: list[dict[str, Any]]  # the unit's scored suggestions (records.Suggestion)


class RefineTask(TypedDict):
    run_id: str
    block: int
    round: int
    candidate: int
    best: dict[str, Any]  # {"outline_key", "J", "rationale"}: the outline this round refines
    base_key: NotRequired[str | None]  # O_b: its candidates' judge prompts show it first (absent in older checkpoints)


ScoreJoin = Literal["feedback_done", "layer_done", "refine_done", "block_end"]


class ScoreTask(TypedDict):
    """One outline for the entropy-scoring node: a block's O_b, a convolution unit's or a self-refine
    candidate's outline, or a fresh re-score at the block's end."""

    run_id: str
    block: int
    unit: str  # the suggestion id (b0l2u3, b0r1c2) or "base", "rescore_C", "rescore_Ob"
    outline_key: str | None  # None: the unit produced no outline (nothing to score, recorded as such)
    candidate: int  # 0, or a distinct index for a deliberately fresh judge call
    H: float | None  # structural entropy when the outline has digests (O_b), else None
    then: ScoreJoin  # the join that consumes the score
    base_key: NotRequired[str | None]  # default mode: the block's O_b, shown to the judge before the outline


CheckJoin = Literal["plan_repairs", "finish_checks"]


class CheckTask(TypedDict):
    """A batch of (claim, cited paper) pairs of written sections for one verifier call."""

    run_id: str
    final_key: str
    round: int  # 1: the written text; 2: the claims a repair changed
    batch: int  # its pairs are in the store: [section id, claim index in its current text, paper id]
    then: CheckJoin


class SectionRepair(TypedDict):
    section_id: str
    papers: list[dict[str, Any]]  # the section's evidence papers: {"paper_id", "title"}
    uncited: list[str]  # evidence papers the article cites nowhere, to be placed in this section


class RepairTask(TypedDict):
    """A batch of sections for one repair call (their first-round verdicts are in the store)."""

    run_id: str
    final_key: str
    batch: int
    round1_batches: int
    sections: list[SectionRepair]


class SectionTask(TypedDict):
    run_id: str
    final_key: str
    topic: str
    section_id: str
    written: dict[str, str]  # section id -> store key of the sections written so far (its children)
    papers: list[dict[str, Any]]  # this section's evidence papers only: {"paper_id", "title"}
