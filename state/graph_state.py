"""Graph state channels and the input/output schemas of the main graph and the writer subgraph.

Rules (docs/DESIGN.md): state holds ids and small records only; reducers only on keys that parallel
branches write; `typing_extensions.TypedDict` so that Studio gets schemas on Python 3.11; no defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from typing_extensions import NotRequired, TypedDict


def append(old: list | None, new: list | None) -> list:
    """Fan-in channel: parallel tasks append; a consuming join clears it with `Overwrite([])`."""
    return (old or []) + list(new or [])


def merge_usage(old: dict | None, new: dict | None) -> dict:
    """Per-stage counters from parallel tasks are added field by field."""
    out = {stage: dict(counts) for stage, counts in (old or {}).items()}
    for stage, counts in (new or {}).items():
        acc = out.setdefault(stage, {})
        for key, value in counts.items():
            acc[key] = acc.get(key, 0) + value
    return out


def merge_dict(old: dict | None, new: dict | None) -> dict:
    return {**(old or {}), **(new or {})}


class UpdateRequest(TypedDict):
    """An update of a finished survey (`llmxmr update`): documents to add (a corpus path or inline papers),
    paper ids to remove, and whether the outline is refined again."""

    add_path: NotRequired[str | None]  # a JSONL corpus or a folder of documents
    add_papers: NotRequired[list[dict[str, Any]] | None]  # inline papers (reference JSONL shape)
    remove: NotRequired[list[str] | None]  # paper ids of the run to drop
    refine: NotRequired[Literal["auto", "always", "never"] | None]  # default auto


class SurveyInput(TypedDict):
    """What a caller gives: a corpus path (JSONL or a folder) or inline papers, and optionally a title.
    On a finished thread, `update` alone starts a new version of its survey (docs/DESIGN.md, updates)."""

    corpus_path: NotRequired[str | None]
    papers: NotRequired[list[dict[str, Any]] | None]
    title: NotRequired[str | None]
    survey_index: NotRequired[int | None]
    update: NotRequired[UpdateRequest | None]


class SurveyOutput(TypedDict):
    """What a run returns: the article, its outline, references and the run report (survey.json)."""

    title: str
    article: str
    outline: dict[str, Any]
    references: list[dict[str, Any]]
    report: dict[str, Any]
    version: int  # 1 for the first run, +1 per update
    changelog: Annotated[list[dict[str, Any]], append]  # one entry per update: what changed and why


class SurveyState(SurveyInput, SurveyOutput):
    run_id: str  # the settings and every large record of the run are in the store under it
    paper_refs: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    map_pass: bool  # read every paper (map) before grouping: default mode
    batch: list[str]  # stages sent as Batch API jobs (`Settings.batch`, decided when the run starts)
    groups: list[list[str]]
    skeleton_batches: list[list[int]]  # group indexes of each local skeleton draft
    # Skeleton merge in flight: its level and the outline keys of each merge_batch task ([] once O_0 is chosen).
    merge_level: int
    merge_plan: list[list[str]]
    # The refinement loop. `outline_key` is the outline being worked on (O_b, then C); base_* is O_b.
    # Outlines live in the store: a checkpoint holds their keys only (`outline` is the run's output).
    outline_key: str
    outline_sections: int  # sections of that outline: the writing reserve of the budget checks
    base_key: str
    base_score: dict[str, Any]
    best: dict[str, Any]  # {"outline_key", "J", "rationale"}: best outline found in this block so far
    block: int
    layer: int
    round: int  # self-refine round to run next (0: none)
    candidates: int  # candidates per self-refine round
    rescore_keys: list[str]  # [C, O_b] to re-score with fresh judge calls before block_end; [] for none
    working_set: list[dict[str, Any]]  # W: scored suggestions
    plan: list[list[str]]  # suggestion ids of each unit of the next layer
    plan_kind: str  # "layer0" | "sampling" | "pooling"
    layer_best: list[float]  # best J per layer of the current block, layer 0 first
    block_outlines: list[dict[str, Any]]  # {"outline_key", "E", "J", "H"} of O_0 .. O_last (all digested)
    final_key: str
    redigest: bool  # a person changed the final outline's structure: digest it again before writing
    redigest_from: str  # the outline before that change: each paper is read again only for what changed
    stop_reason: str
    results: Annotated[list[dict[str, Any]], append]  # a fan-out's results (drafts, suggestions, candidates)
    scores: Annotated[list[dict[str, Any]], append]  # entropy_score's records: one per scored outline
    usage: Annotated[dict[str, dict[str, int]], merge_usage]
    failures: Annotated[list[dict[str, Any]], append]
    entropy_history: Annotated[list[dict[str, Any]], append]
    sections: Annotated[dict[str, str], merge_dict]  # section id -> store key of its final text
    verification: dict[str, Any]  # the citation check's counts (the writer's output)
    # An update in flight (nodes/update.py): the version it starts from, what it added, removed and decided,
    # and the sections the writer writes again (None: all of them).
    update_base: dict[str, Any]
    update_log: dict[str, Any]
    rewrite: list[str] | None


class WriterInput(TypedDict):
    """The writer subgraph's input: which outline to write, from which run's digests."""

    run_id: str
    final_key: str
    title: NotRequired[str]
    outline: NotRequired[dict[str, Any] | None]  # inline outline (Studio): used when final_key is not in the store
    digests: NotRequired[list[dict[str, Any]] | None]  # inline digests (Studio)
    paper_refs: NotRequired[list[dict[str, Any]] | None]  # papers (paper_id, title, url): the parent's refs or inline
    rewrite: NotRequired[list[str] | None]  # an update: only these sections are written (None: all)
    sections: NotRequired[dict[str, str] | None]  # an update: the kept sections (children of rewritten parents)
    version: NotRequired[int]  # the survey's version (an update's), stamped on the claim records it checks


class WriterOutput(TypedDict):
    sections: dict[str, str]
    verification: dict[str, Any]  # the citation check's counts (its per-claim records are in the store)
    usage: dict[str, dict[str, int]]
    failures: list[dict[str, Any]]


class WriterState(WriterInput):
    schedule: list[list[str]]
    evidence: dict[str, list[str]]  # section id -> papers whose digest for it is non-empty (built once)
    with_charts: bool
    verify: bool  # check every cited claim once the sections are written (Settings.verify_citations)
    step: int
    # The citation check: its batches and verdicts are in the store (run_store.*_check_batch, *_verdicts).
    check_round: int  # 1: the written text; 2: the claims repairs changed
    check_batches: list[int]  # verifier calls of round 1 and round 2
    repairs: list[list[list[Any]]]  # batches of [section id, uncited paper ids]: the repair fan-out
    repaired: Annotated[list[dict[str, Any]], append]  # per repaired section: the claims it changed
    verification: dict[str, Any]
    sections: Annotated[dict[str, str], merge_dict]
    usage: Annotated[dict[str, dict[str, int]], merge_usage]
    failures: Annotated[list[dict[str, Any]], append]
