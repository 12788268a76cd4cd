"""map: read each document once (chunk by chunk when it is longer than the reader's budget), then
reduce the chunk notes of a multi-chunk document into its notes. Default mode only."""

from __future__ import annotations

from typing import Any

from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.nodes import storage
from llmxmr.nodes.calls import Call
from llmxmr.nodes.env import Env, progress
from llmxmr.nodes.limits import chunk_bounds
from llmxmr.prompts import map as prompts
from llmxmr.state.responses import Notes


def make_map_chunk(env: Env):
    def map_chunk(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        doc = storage.get_document(store, task["run_id"], task["paper_id"])
        bounds = storage.get_chunk_bounds(store, task["run_id"], doc.paper_id) or chunk_bounds(doc.text, settings)
        parts = [doc.text[a:b] for a, b in bounds]
        index = task["chunk"]
        call = Call(caller, settings)
        part = f"{index + 1}/{len(parts)}" if len(parts) > 1 else ""
        text = parts[index]

        def build(scale: float) -> list:  # a context overflow halves the chunk's text and asks again
            body = text if scale >= 1 else truncate_to_tokens(text, max(50, int(count_tokens(text) * scale)))[0]
            return prompts.map_chunk(task["topic"], doc.paper_id, doc.title, body, part=part, language=settings.language)

        reply = call.ask_shrinking("map", f"{doc.paper_id}:{index}", build, Notes)
        # A failed chunk falls back to its leading text so the document still has notes.
        notes = reply.value.notes if reply and reply.value.notes else [parts[index][:600]]
        storage.put_chunk_notes(store, task["run_id"], doc.paper_id, index, notes)
        if len(parts) == 1:
            storage.put_notes(store, task["run_id"], doc.paper_id, notes)
        progress("map", done=1, unit=f"{doc.paper_id}:{index}")
        return call.update()

    return map_chunk


def make_reduce_notes(env: Env):
    def reduce_notes(task: dict[str, Any], runtime: Any) -> dict[str, Any]:
        store, settings, caller = env.open(task, runtime)
        pid = task["paper_id"]
        doc = storage.get_document(store, task["run_id"], pid)
        chunk_notes = [storage.get_chunk_notes(store, task["run_id"], pid, i) for i in range(task["chunks"])]
        call = Call(caller, settings)
        reply = call.ask("reduce_notes", pid, prompts.reduce_notes(
            task["topic"], pid, doc.title, chunk_notes, language=settings.language), Notes)
        notes = reply.value.notes if reply and reply.value.notes else [n for ns in chunk_notes for n in ns][:24]
        storage.put_notes(store, task["run_id"], pid, notes)
        progress("reduce_notes", done=1, unit=pid)
        return call.update()

    return reduce_notes


def map_done(state: dict[str, Any]) -> dict[str, Any]:
    """Join point of the map fan-out (one task per chunk)."""
    return {}
