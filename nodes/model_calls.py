"""`ModelCalls`: the model calls of one step. Output faults become recorded failures; the usage and failures
of every call go back to the graph with the step's state update."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmxmr.core.tree import with_usable_headings
from llmxmr.limits import output_tokens
from llmxmr.models.caller import CallResult, ModelCaller, UsageMeter
from llmxmr.models.errors import ContextOverflowError, OutputFault
from llmxmr.stages import Stage
from llmxmr.state.context import Settings
from llmxmr.state.records import Outline

SHRINK_TRIES = 3  # halvings of a call's variable input after context overflows (1 -> 1/8)


class ModelCalls:
    """One meter and one failure list for the calls a step makes, returned together as a state update."""

    def __init__(self, caller: ModelCaller, settings: Settings) -> None:
        self.caller = caller
        self.settings = settings
        self.meter = UsageMeter()

    def ask(
        self,
        stage: Stage,
        unit: str,
        messages: list,
        *,
        candidate: int = 0,
        temperature: float | None = None,
        logprobs: bool = False,
        schema: Any = None,
    ) -> CallResult | None:
        """The result, or None when the model's output stayed malformed (recorded as a failure). `schema`
        replaces the stage's for this call (a subclass built for it, e.g. with the outline's section ids)."""
        try:
            return self.caller.call(
                role=stage.role, stage=stage.name, unit=unit, messages=messages, meter=self.meter,
                schema=schema or stage.schema, max_tokens=output_tokens(self.settings, stage),
                temperature=self.settings.temperature if temperature is None else temperature,
                candidate=candidate, logprobs=logprobs,
            )
        except OutputFault:
            return None  # the caller's meter has recorded the failure
        # ContextOverflowError propagates: only map, digest and writing can shrink their input
        # (ask_shrinking); anywhere else it stops the run with the model, role, stage and fix.

    def ask_shrinking(self, stage: Stage, unit: str, build: Callable[[float], list], **kwargs: Any) -> CallResult | None:
        """`ask` with `build(scale)` making the messages; on a context overflow the variable input is
        shrunk (scale halved) and the call retried, at most SHRINK_TRIES times, then recorded as failed."""
        scale = 1.0
        for attempt in range(SHRINK_TRIES + 1):
            try:
                return self.ask(stage, unit, build(scale), **kwargs)
            except ContextOverflowError as exc:
                if attempt == SHRINK_TRIES:
                    self.fail(stage.name, unit, "context_overflow",
                              f"{exc} (still too long after shrinking the input to {scale:.0%}). Fix: set "
                              "context_window to the server's real context size, or use a larger model")
                    return None
                scale /= 2
                self.fail(stage.name, unit, "truncated", f"context overflow: input shrunk to {scale:.0%} and retried")
        return None

    def fail(self, stage: str, unit: str, kind: str, message: str) -> None:
        self.meter.fail(stage, unit, kind, message[:500])

    def usable_headings(self, stage: str, unit: str, outline: Outline, not_headings: Sequence[str], *,
                        renumber: bool = False) -> Outline:
        """`outline` without the headings that are no headings (core.tree.with_usable_headings), each change
        recorded as a `heading` notice of this call."""
        outline, notes = with_usable_headings(outline, not_headings, renumber=renumber)
        for note in notes:
            self.fail(stage, unit, "heading", note)
        return outline

    def update(self, **values: Any) -> dict[str, Any]:
        """State update carrying these calls' usage and failures along with `values`."""
        return {**values, "usage": self.meter.as_usage(), "failures": [f.model_dump() for f in self.meter.failures]}
