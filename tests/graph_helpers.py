"""Shared helpers of the graph behaviour tests: corpora, one-call runs with the scripted model, the §5
cost model written out from METHOD.md (independently of the code), and message recorders."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.store.memory import InMemoryStore

from llmxmr.citations import Reference
from llmxmr.core.tree import section_ids
from llmxmr.export import check_article
from llmxmr.graph import build_graph
from llmxmr.prompts import judge as judge_prompts
from llmxmr.stages import STAGE_NAMES
from llmxmr.state.context import Context
from llmxmr.state.records import Outline
from llmxmr.testing.fake_model import ScriptedChatModel
from llmxmr.testing.responder import Responder

ALL_STAGES = STAGE_NAMES
GAP_TEXT = "Section not written"


def papers(n: int, *, words: int = 120, prefix: str = "Paper") -> list[dict[str, Any]]:
    """n distinct small papers (reference JSONL shape)."""
    return [{"title": f"{prefix} {i}: study of topic {i % 4}",
             "txt": f"Body of {prefix.lower()} {i} about topic {i % 4}. " + " ".join(f"w{i}x{j}" for j in range(words)),
             "url": f"https://example.org/{prefix.lower()}/{i}"}
            for i in range(n)]


def run(model: ScriptedChatModel, corpus: list[dict[str, Any]], *, title: str = "T", store: InMemoryStore | None = None,
        concurrency: int = 16, **context: Any) -> dict[str, Any]:
    graph = build_graph(models=model, store=store if store is not None else InMemoryStore())
    return graph.invoke({"papers": corpus, "title": title}, context=Context(**context),
                        config={"max_concurrency": concurrency})


def stage_totals(out: dict[str, Any]) -> dict[str, int]:
    """The method's call count per stage: paid calls + responses replayed from the durable record."""
    return {k: v["calls"] + v["cached"] for k, v in out["report"]["usage"].items() if v["calls"] + v["cached"]}


def n_sections(out: dict[str, Any]) -> int:
    return len(section_ids(Outline(**out["outline"])))


def article_problems(out: dict[str, Any]) -> list[str]:
    return check_article(out["article"], [Reference(**r) for r in out["references"]])


def layer_records(out: dict[str, Any], block: int | None = None) -> list[dict[str, Any]]:
    return [h for h in out["report"]["entropy_history"]
            if h["kind"] == "layer" and (block is None or h["block"] == block)]


def records(out: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [h for h in out["report"]["entropy_history"] if h["kind"] == kind]


# ---------------------------------------------------------------- METHOD §5, reference mode


def reference_counts(n: int, s: int, *, units: int = 10, kernel: int = 3, top_k: int = 6, layers: int = 6,
                     rounds: int = 3, best_of: int = 3, group_size: int = 3, skeleton_group_size: int = 3,
                     blocks: int = 1, charts: bool = True) -> dict[str, int]:
    """Per-stage call counts of METHOD §5 for a compliant model (every unit succeeds).

    Layer 0: one unit per feedback (modify + judge). Layer l: pooling when |W|/kernel > units
    (ceil(|W|/kernel) units of consecutive chunks, the last maybe smaller; W = top_k of the new results),
    else sampling (`units` units of min(|W|, kernel) suggestions; W = top_k of previous ∪ new). A unit
    merges its group (skipped for a group of one), modifies O_b and scores it.
    """
    g = math.ceil(n / group_size)
    w = g
    unit_total = merges = 0
    for _ in range(layers):
        if w / kernel > units:
            chunks = [min(kernel, w - i) for i in range(0, w, kernel)]
            unit_total += len(chunks)
            merges += sum(1 for c in chunks if c > 1)
            w = min(top_k, len(chunks))
        else:
            unit_total += units
            merges += units if min(w, kernel) > 1 else 0
            w = min(top_k, w + units)
    refine = rounds * best_of
    counts = {
        "group": 1,
        "skeleton": math.ceil(g / skeleton_group_size),
        "merge_skeleton": 1,
        "digest": n * (blocks + 1),
        "feedback": g * blocks,
        "judge": blocks * (1 + g + unit_total + refine),
        "modify": blocks * (g + unit_total + refine),
        "merge_suggestions": blocks * merges,
        "critique": blocks * refine,
        "write_section": s,
        "polish": s,
        "charts": 1 if charts else 0,
    }
    return {k: v for k, v in counts.items() if v}


# ---------------------------------------------------------------- fixed outlines


def outline_draft(chapters: list[int], *, tag: str = "") -> dict[str, Any]:
    """An OutlineDraft dict: one chapter per entry, each with that many leaf subsections."""
    def leaf(title: str) -> dict[str, Any]:
        return {"title": title, "construction": f"Extract the methods and results for {title}{tag}.",
                "analysis": f"Compare the papers on {title}; explain why they differ.", "subsections": []}

    sections = []
    for i, k in enumerate(chapters):
        chapter = leaf(f"Theme {i + 1} chapter")  # "Chapter 1 theme", "Chapter 2 theme" are one heading, "theme"
        chapter["subsections"] = [leaf(f"Topic {i + 1}.{j + 1} detail") for j in range(k)]
        sections.append(chapter)
    return {"title": "Fixed survey", "sections": sections}


# ---------------------------------------------------------------- recording and scripted answers


class Recorder:
    """Overrides that record every request's messages by stage (and answer by default: None)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, list[BaseMessage]]] = []

    def override(self, stage: str, answer: Callable[[list[BaseMessage], int], str | None] | None = None):
        def fn(messages: list[BaseMessage], n: int) -> str | None:
            with self.lock:
                self.requests.append((stage, list(messages)))
            return answer(messages, n) if answer else None

        return fn

    def all_stages(self, **answers: Callable[[list[BaseMessage], int], str | None]) -> dict[str, Any]:
        return {stage: self.override(stage, answers.get(stage)) for stage in ALL_STAGES}

    def of(self, stage: str) -> list[list[BaseMessage]]:
        with self.lock:
            return [m for s, m in self.requests if s == stage]


def user_text(messages: list[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages[1:])


def is_repair(messages: list[BaseMessage]) -> bool:
    """A re-ask after a malformed answer: the conversation carries the bad answer and the request."""
    return len(messages) > 2


def judge_digit(score: int, rationale: str = "scripted") -> str:
    return json.dumps({"rationale": rationale, "score": score})


REVISED_RE = re.compile(r"Revised:")


def revisions(messages: list[BaseMessage]) -> int:
    """How many sections of the judged outline the scripted default-mode modify has retitled (in the outline
    to rate, not in the block's start outline the default-mode judge is shown before it)."""
    return len(REVISED_RE.findall(user_text(messages).split(judge_prompts.RATE_REVISION_HEAD)[-1]))


def truncated_default(responder: Responder, fraction: float = 0.6) -> Callable[[list[BaseMessage], int], str]:
    """The scripted (valid) answer cut off at `fraction` of its length: truncated JSON."""
    def fn(messages: list[BaseMessage], n: int) -> str:
        text = responder.respond(messages)
        return text[: max(1, int(len(text) * fraction))]

    return fn


def our_run_on_disk(folder: Path, corpus: list[dict[str, Any]]) -> tuple[Path, Path]:
    """A small default-mode run of the scripted model written as an OUTDIR, and its corpus as JSONL
    (the inputs an eval of one of our runs reads)."""
    from llmxmr.export import SurveyReport, write_outputs

    out = run(ScriptedChatModel(), corpus, mode="default", units=2, max_layers=1, refine_rounds=0, best_of=1,
              max_blocks=1)
    ours = folder / "ours"
    write_outputs(ours, SurveyReport(**out["report"]))
    corpus_path = folder / "corpus.jsonl"
    corpus_path.write_text(json.dumps({"title": "T", "papers": corpus}) + "\n")
    return ours, corpus_path
