"""A LangChain chat model answering through the scripted `Responder`, with per-stage overrides for
fault injection and a thread-safe log of calls by stage."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from llmxmr.models.tokens import count_tokens
from llmxmr.testing.responder import Responder, stage_of

Override = Callable[[list[BaseMessage], int], str | None]  # (messages, nth call of the stage) -> answer or None


class ScriptedChatModel(BaseChatModel):
    """Deterministic by prompt; `overrides[stage](messages, n)` may replace an answer (None = default)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    responder: Responder = Field(default_factory=Responder)
    overrides: dict[str, Override] = Field(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: Counter = PrivateAttr(default_factory=Counter)
    _log: list = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "llmxmr-scripted"

    @property
    def calls(self) -> Counter:
        return Counter(self._calls)

    @property
    def log(self) -> list[tuple[str, str]]:
        return list(self._log)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        stage = stage_of(messages)
        with self._lock:
            n = self._calls[stage]
            self._calls[stage] += 1
        override = self.overrides.get(stage)
        text = override(messages, n) if override else None
        if text is None:
            text = self.responder.respond(messages)
        with self._lock:
            self._log.append((stage, text))
        prompt = sum(count_tokens(str(m.content)) for m in messages)
        message = AIMessage(content=text, usage_metadata={
            "input_tokens": prompt, "output_tokens": count_tokens(text), "total_tokens": prompt + count_tokens(text)})
        return ChatResult(generations=[ChatGeneration(message=message)])
