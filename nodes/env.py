"""What every node needs besides its state: the store, the run's settings, the model caller, progress.

`Env` is created by `build_graph` (it holds models injected by tests or a parent agent) and closed over by
the node functions, so nodes never depend on `runtime.context` being ours.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.config import get_stream_writer
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from llmxmr.models.caller import ModelCaller
from llmxmr.nodes import storage
from llmxmr.state.context import Settings

_LOCAL_STORES: dict[str, InMemoryStore] = {}
_LOCK = threading.Lock()


class Env:
    def __init__(self, models: Mapping[str, BaseChatModel] | BaseChatModel | None = None) -> None:
        self.models = models
        self._callers: dict[tuple[int, str], ModelCaller] = {}
        self._lock = threading.Lock()

    def store(self, runtime: Any, run_id: str) -> BaseStore:
        store = getattr(runtime, "store", None)
        if store is not None:
            return store
        # No store given (module-level graph, a parent agent without one): a per-run in-process store.
        with _LOCK:
            return _LOCAL_STORES.setdefault(storage.safe_label(run_id), InMemoryStore())

    def release(self, runtime: Any, run_id: str) -> None:
        """A finished run drops its model callers (clients, rate limiters; its spending is in the store) and its
        per-run local store: a long-lived parent agent would otherwise keep every run it ever made in memory."""
        with self._lock:
            for key in [k for k in self._callers if k[2] == run_id]:
                del self._callers[key]
        if getattr(runtime, "store", None) is None:
            with _LOCK:
                _LOCAL_STORES.pop(storage.safe_label(run_id), None)

    def settings(self, store: BaseStore, run_id: str) -> Settings:
        values = storage.get_settings(store, run_id)
        if values is None:
            raise LookupError(f"run {run_id} has no saved settings in the store")
        return Settings(**values)

    def caller(self, store: BaseStore, settings: Settings, run_id: str | None = None) -> ModelCaller:
        key = (id(store), settings.model_dump_json(), run_id or "")
        with self._lock:
            caller = self._callers.get(key)
            if caller is None:  # run_id: the caller keeps the run's budget count (calls, tokens)
                caller = self._callers[key] = ModelCaller(settings, store, models=self.models, run_id=run_id)
            return caller

    def open(self, state: Mapping[str, Any], runtime: Any) -> tuple[BaseStore, Settings, ModelCaller]:
        store = self.store(runtime, state["run_id"])
        settings = self.settings(store, state["run_id"])
        return store, settings, self.caller(store, settings, state["run_id"])


def run_settings(state: Mapping[str, Any]) -> Settings:
    """The run's settings as saved in the store (a resume may have overridden them), for nodes and routes
    that have no `Env`; falls back to the copy in state outside a graph context."""
    try:
        from langgraph.config import get_store

        store = get_store()
    except Exception:  # called outside a runnable context (unit tests of pure node logic)
        store = None
    if store is None:
        with _LOCK:
            store = _LOCAL_STORES.get(storage.safe_label(state.get("run_id", "")))
    saved = storage.get_settings(store, state["run_id"]) if store is not None and state.get("run_id") else None
    return Settings(**(saved or state["settings"]))


def progress(stage: str, **fields: Any) -> None:
    """A custom stream event; silently dropped when nobody streams `custom` events."""
    try:
        writer = get_stream_writer()
    except Exception:  # outside a runnable context (direct calls in unit tests)
        return
    writer({"event": "progress", "stage": stage, **fields})


def artifact(name: str, text: str) -> None:
    """A file for the run's output folder (the CLI writes OUTDIR/<name> as the run goes, so a person can follow a
    long run from another terminal): a custom stream event like `progress`, dropped when nobody streams."""
    try:
        writer = get_stream_writer()
    except Exception:
        return
    writer({"event": "artifact", "name": name, "text": text})
