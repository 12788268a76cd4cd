"""The one seam between LangGraph and the steps: `StepAdapter` turns a step `node(input, step)` into a
LangGraph node `(input, runtime)` by building its `Step` (store, settings, model calls, event stream).

One adapter belongs to one compiled graph (and its writer subgraph). It holds what lives as long as a run:
the model callers (clients, rate limiters, the budget count) and, when the graph runs without a store, the
run's in-memory store. A finished run releases both, so a long-lived parent agent does not keep them.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from llmxmr import retrieval, run_store
from llmxmr.models.caller import ModelCaller
from llmxmr.nodes.model_calls import ModelCalls
from llmxmr.nodes.step import Step
from llmxmr.state.context import CONTEXT_FIELDS, Context, Settings, resolve_settings

Models = Mapping[str, BaseChatModel] | BaseChatModel | None
In = TypeVar("In")
Out = TypeVar("Out")
StepFn = Callable[[In, Step], Out]
Node = Callable[[Any, Runtime[Context]], Out]


class StepAdapter:
    def __init__(self, models: Models = None) -> None:
        self.models = models  # injected chat models (tests, a parent agent's clients); None = from settings
        self._callers: dict[tuple[int, str, str], ModelCaller] = {}
        self._local_stores: dict[str, InMemoryStore] = {}
        self._lock = threading.Lock()

    # -- wrapping steps ---------------------------------------------------------------------------------
    def node(self, fn: StepFn) -> Node:
        """A step of a running run: its settings are in the store under the input's `run_id`."""

        def run(state: Any, runtime: Runtime[Context]) -> Any:
            return fn(state, self.step(state["run_id"], runtime))

        return _named(run, fn)

    def entry(self, fn: StepFn, default_run_id: Callable[[], str]) -> Node:
        """The first step of a run (or of a writer run on its own): it resolves the run id and the settings
        (saved ones win: a resume may have overridden them) and saves them for every later step."""

        def run(state: Any, runtime: Runtime[Context]) -> Any:
            run_id = state.get("run_id") or default_run_id()
            store = self.store(runtime, run_id)
            saved = run_store.get_settings(store, run_id)
            settings = Settings(**saved) if saved else resolve_settings(context_of(runtime))
            if saved is None:
                if self.models is None:
                    check_credentials(settings)
                run_store.put_settings(store, run_id, settings.model_dump())
            return fn(state, self._step(run_id, store, settings, runtime))

        return _named(run, fn)

    def last(self, fn: StepFn) -> Node:
        """The last step of a run: afterwards the run's callers and local store are released."""

        def run(state: Any, runtime: Runtime[Context]) -> Any:
            out = fn(state, self.step(state["run_id"], runtime))
            self.release(runtime, state["run_id"])
            return out

        return _named(run, fn)

    def renew(self, fn: StepFn) -> Node:
        """The first step of a new version of a finished run (an update): it resets the run's spending in
        the store, so afterwards the run's callers are dropped and the next step's caller reads that count."""

        def run(state: Any, runtime: Runtime[Context]) -> Any:
            out = fn(state, self.step(state["run_id"], runtime))
            self.release_callers(state["run_id"])
            return out

        return _named(run, fn)

    # -- what a step gets -------------------------------------------------------------------------------
    def step(self, run_id: str, runtime: Any) -> Step:
        store = self.store(runtime, run_id)
        values = run_store.get_settings(store, run_id)
        if values is None:
            raise LookupError(f"run {run_id} has no saved settings in the store")
        return self._step(run_id, store, Settings(**values), runtime)

    def _step(self, run_id: str, store: BaseStore, settings: Settings, runtime: Any) -> Step:
        calls = ModelCalls(self.caller(store, settings, run_id), settings)
        writer = getattr(runtime, "stream_writer", None)
        return Step(run_id=run_id, store=store, settings=settings, calls=calls, emit=writer or (lambda _: None))

    def store(self, runtime: Any, run_id: str) -> BaseStore:
        store = getattr(runtime, "store", None)
        if store is not None:
            return store
        # No store given (the module-level graph invoked from code, a parent agent without one): the run's
        # own in-memory store, kept by this graph until the run finishes.
        with self._lock:
            return self._local_stores.setdefault(run_store.safe_label(run_id), InMemoryStore())

    def caller(self, store: BaseStore, settings: Settings, run_id: str) -> ModelCaller:
        key = (id(store), settings.model_dump_json(), run_id)
        with self._lock:
            caller = self._callers.get(key)
            if caller is None:  # one per run: it keeps the run's budget count (calls, tokens) and rate limits
                caller = self._callers[key] = ModelCaller(settings, store, models=self.models, run_id=run_id)
            return caller

    def release_callers(self, run_id: str) -> None:
        with self._lock:
            for key in [k for k in self._callers if k[2] == run_id]:
                del self._callers[key]

    def release(self, runtime: Any, run_id: str) -> None:
        """Drop a finished run's callers (its spending is in the store), its passage indexes and its local store."""
        self.release_callers(run_id)
        retrieval.forget(run_id)
        with self._lock:
            if getattr(runtime, "store", None) is None:
                self._local_stores.pop(run_store.safe_label(run_id), None)


def check_credentials(settings: Settings) -> None:
    """A missing API key stops a run at its first step with the provider's message, before any task fans
    out; the traceback is cut here (the message is the whole story)."""
    from llmxmr.models.errors import ModelSetupError
    from llmxmr.models.providers import provider_of
    from llmxmr.models.specs import ModelSpec
    from llmxmr.stages import ROLES

    for raw in dict.fromkeys(settings.model_for(role) for role in ROLES):
        spec = ModelSpec.parse(raw)
        try:
            provider_of(spec).check_credentials(spec, settings)
        except ModelSetupError as exc:
            raise ModelSetupError(str(exc)).with_traceback(None) from None


def _named(run: Callable, fn: Callable) -> Callable:
    # Name and doc only: `functools.wraps` would expose fn's signature (input, step), and LangGraph reads a
    # node's signature to decide what to inject (`runtime`) and which input schema it has.
    run.__name__ = run.__qualname__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def derive_run_id() -> str:
    """The thread id of a top-level run; nested in a parent graph, the thread id plus a hash of where in the
    parent this run sits (its checkpoint namespace), so that two pipeline runs in one parent thread (two turns
    of an agent, two calls from a wrapper node) never share settings or store records."""
    try:
        configurable = get_config().get("configurable") or {}
    except RuntimeError:  # outside a runnable context
        configurable = {}
    thread = configurable.get("thread_id")
    if not thread:
        return uuid.uuid4().hex[:16]
    ns = str(configurable.get("checkpoint_ns") or "")
    parent = ns.rsplit("|", 1)[0] if "|" in ns else ""  # the last part is this node's own task
    if not parent:
        return run_store.safe_label(str(thread))
    return f"{run_store.safe_label(str(thread))[:40]}-{hashlib.sha256(parent.encode()).hexdigest()[:12]}"


def context_of(runtime: Any) -> Context | dict | None:
    """Our settings from the runtime context. A parent agent passes its own context type: it may carry ours
    under `llmxmr` (a Context or a dict, attribute or key); otherwise the defaults apply. A dict none of whose
    keys is one of our fields is a parent's dict, not a mistyped one of ours."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Context):
        return ctx
    if isinstance(ctx, dict):
        if "llmxmr" in ctx:
            ctx = ctx["llmxmr"]
        elif ctx and not set(ctx) & set(CONTEXT_FIELDS):
            return None
    else:
        ctx = getattr(ctx, "llmxmr", None)
    return ctx if isinstance(ctx, (Context, dict)) else None
