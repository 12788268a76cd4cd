"""map: read each document once (chunk by chunk when it is longer than the reader's budget), then
reduce the chunk notes of a multi-chunk document into its notes. Default mode only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmxmr import run_store
from llmxmr.limits import chunk_bounds
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES
from llmxmr.state.tasks import MapTask, ReduceTask

MAP, REDUCE = STAGES["map"], STAGES["reduce_notes"]


def _chunk(step: Step, paper_id: str, index: int) -> tuple[str, int, str]:
    """(text, chunks of the document, title) of one chunk, read on its own."""
    chunk = run_store.get_chunk(step.store, step.run_id, paper_id, index)
    if chunk is not None:
        return chunk["text"], int(chunk["of"]), chunk["title"]
    # A run prepared before chunks were stored on their own: slice the whole document, as then.
    doc = run_store.get_document(step.store, step.run_id, paper_id)
    bounds = run_store.get_chunk_bounds(step.store, step.run_id, paper_id) or chunk_bounds(doc.text, step.settings)
    a, b = bounds[index]
    return doc.text[a:b], len(bounds), doc.title


def map_request(task: MapTask, step: Step) -> tuple[str, Callable[[float], list], str, int]:
    """(unit, build(scale) -> messages, the chunk's text, chunks of the document): what `map_chunk` asks,
    also what a Batch API job of the map pass sends (nodes/batch.py)."""
    pid, index = task["paper_id"], task["chunk"]
    text, count, title = _chunk(step, pid, index)
    part = f"{index + 1}/{count}" if count > 1 else ""

    def build(scale: float) -> list:  # a context overflow halves the chunk's text and asks again
        body = text if scale >= 1 else truncate_to_tokens(text, max(50, int(count_tokens(text) * scale)))[0]
        return MAP.prompt(task["topic"], pid, title, body, part=part, language=step.settings.language)

    return f"{pid}:{index}", build, text, count


def map_chunk(task: MapTask, step: Step) -> dict[str, Any]:
    run_id, pid, index = step.run_id, task["paper_id"], task["chunk"]
    unit, build, text, count = map_request(task, step)
    reply = step.calls.ask_shrinking(MAP, unit, build)
    # A failed chunk falls back to its leading text so the document still has notes.
    notes = reply.value.notes if reply and reply.value.notes else [text[:600]]
    run_store.put_chunk_notes(step.store, run_id, pid, index, notes)
    if count == 1:
        run_store.put_notes(step.store, run_id, pid, notes)
    step.progress("map", done=1, unit=f"{pid}:{index}")
    return step.update()


def reduce_notes(task: ReduceTask, step: Step) -> dict[str, Any]:
    run_id, pid = step.run_id, task["paper_id"]
    title = _chunk(step, pid, 0)[2]  # the title without loading the whole document
    chunk_notes = [run_store.get_chunk_notes(step.store, run_id, pid, i) for i in range(task["chunks"])]
    reply = step.calls.ask(REDUCE, pid, REDUCE.prompt(task["topic"], pid, title, chunk_notes,
                                                      language=step.settings.language))
    notes = reply.value.notes if reply and reply.value.notes else [n for ns in chunk_notes for n in ns][:24]
    run_store.put_notes(step.store, run_id, pid, notes)
    step.progress("reduce_notes", done=1, unit=pid)
    return step.update()


def map_done(state: Any) -> dict[str, Any]:
    """Join point of the map fan-out (one task per chunk)."""
    return {}
