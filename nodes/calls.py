"""Making one model call from a node: output faults become recorded failures, the rest propagates."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from llmxmr.models.caller import CallResult, ModelCaller, UsageMeter
from llmxmr.models.errors import ContextOverflowError, OutputFault
from llmxmr.nodes.limits import ROLE_OF, output_tokens
from llmxmr.state.context import Settings


class Call:
    """The calls of one node invocation: one meter, one failure list, returned together as a state update."""

    def __init__(self, caller: ModelCaller, settings: Settings) -> None:
        self.caller = caller
        self.settings = settings
        self.meter = UsageMeter()

    def ask(
        self,
        stage: str,
        unit: str,
        messages: list,
        schema: type[BaseModel] | None,
        *,
        candidate: int = 0,
        temperature: float | None = None,
        logprobs: bool = False,
        limit_stage: str | None = None,
    ) -> CallResult | None:
        """The result, or None when the model's output stayed malformed (recorded as a failure)."""
        try:
            return self.caller.call(
                role=ROLE_OF[stage], stage=stage, unit=unit, messages=messages, meter=self.meter, schema=schema,
                max_tokens=output_tokens(self.settings, limit_stage or stage),
                temperature=self.settings.temperature if temperature is None else temperature,
                candidate=candidate, logprobs=logprobs,
            )
        except OutputFault:
            return None  # the caller's meter has recorded the failure
        except ContextOverflowError as exc:
            self.fail(stage, unit, "context_overflow", str(exc))
            return None

    def fail(self, stage: str, unit: str, kind: str, message: str) -> None:
        self.meter.fail(stage, unit, kind, message[:500])

    def update(self, **values: Any) -> dict[str, Any]:
        """State update carrying this node's usage and failures along with `values`."""
        return {**values, "usage": self.meter.as_usage(), "failures": [f.model_dump() for f in self.meter.failures]}
