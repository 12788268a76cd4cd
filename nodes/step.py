"""`Step`: everything a step needs besides its input, handed to every node by one adapter
(`graph/adapter.py`): the run's id, its store, its settings, its model calls and its event stream.

Nodes are plain functions `node(input, step) -> update`; they never reach for LangGraph's runtime, a
process-wide registry or `runtime.context` (which may be a parent agent's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import BaseStore

from llmxmr.nodes.model_calls import ModelCalls
from llmxmr.state.context import Settings


def _dropped(event: Any) -> None:
    """Events nobody streams."""


@dataclass(frozen=True)
class Step:
    run_id: str
    store: BaseStore
    settings: Settings
    calls: ModelCalls
    emit: Callable[[Any], None] = _dropped  # LangGraph's custom stream writer (a no-op when nobody streams)

    def progress(self, stage: str, **fields: Any) -> None:
        """A progress event (the CLI's bars, Studio's stream)."""
        self.emit({"event": "progress", "stage": stage, **fields})

    def artifact(self, name: str, text: str) -> None:
        """A file for the run's output folder: the CLI writes OUTDIR/<name> as the run goes, so a person can
        follow a long run from another terminal."""
        self.emit({"event": "artifact", "name": name, "text": text})

    def update(self, **values: Any) -> dict[str, Any]:
        """The state update `values`, with the usage and failures of this step's model calls."""
        return self.calls.update(**values)
