"""map: read each document once (chunk by chunk when it is longer than the reader's budget), then
reduce the chunk notes of a multi-chunk document into its notes. Default mode only."""

from __future__ import annotations

from typing import Any

from llmxmr import run_store
from llmxmr.limits import chunk_bounds
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.tasks import MapTask, ReduceTask

MAP, REDUCE = STAGES["map"], STAGES["reduce_notes"]


def map_chunk(task: MapTask, step: Step) -> dict[str, Any]:
    run_id, settings = step.run_id, step.settings
    doc = run_store.get_document(step.store, run_id, task["paper_id"])
    bounds = run_store.get_chunk_bounds(step.store, run_id, doc.paper_id) or chunk_bounds(doc.text, settings)
    parts = [doc.text[a:b] for a, b in bounds]
    index = task["chunk"]
    part = f"{index + 1}/{len(parts)}" if len(parts) > 1 else ""
    text = parts[index]

    def build(scale: float) -> list:  # a context overflow halves the chunk's text and asks again
        body = text if scale >= 1 else truncate_to_tokens(text, max(50, int(count_tokens(text) * scale)))[0]
        return MAP.prompt(task["topic"], doc.paper_id, doc.title, body, part=part, language=settings.language)

    reply = step.calls.ask_shrinking(MAP, f"{doc.paper_id}:{index}", build)
    # A failed chunk falls back to its leading text so the document still has notes.
    notes = reply.value.notes if reply and reply.value.notes else [parts[index][:600]]
    run_store.put_chunk_notes(step.store, run_id, doc.paper_id, index, notes)
    if len(parts) == 1:
        run_store.put_notes(step.store, run_id, doc.paper_id, notes)
    step.progress("map", done=1, unit=f"{doc.paper_id}:{index}")
    return step.update()


def reduce_notes(task: ReduceTask, step: Step) -> dict[str, Any]:
    run_id, pid = step.run_id, task["paper_id"]
    doc = run_store.get_document(step.store, run_id, pid)
    chunk_notes = [run_store.get_chunk_notes(step.store, run_id, pid, i) for i in range(task["chunks"])]
    reply = step.calls.ask(REDUCE, pid, REDUCE.prompt(task["topic"], pid, doc.title, chunk_notes,
                                                      language=step.settings.language))
    notes = reply.value.notes if reply and reply.value.notes else [n for ns in chunk_notes for n in ns][:24]
    run_store.put_notes(step.store, run_id, pid, notes)
    step.progress("reduce_notes", done=1, unit=pid)
    return step.update()


def map_done(state: Any) -> dict[str, Any]:
    """Join point of the map fan-out (one task per chunk)."""
    return {}
