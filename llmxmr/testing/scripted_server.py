"""The scripted Responder behind the loopback OpenAI-compatible stub: the real ChatOpenAI client (and so
the CLI with `--model openai:scripted --base-url ...`) runs the whole pipeline offline and fast.

Judge answers carry token logprobs for the score digit, as llama.cpp, vLLM and OpenAI return them, so the
expected-digit path is exercised end to end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llmxmr.models.tokens import count_tokens
from llmxmr.testing.openai_stub import StubOpenAIServer, digit_logprobs
from llmxmr.testing.responder import Responder, stage_of

Fault = Callable[[str, dict[str, Any]], dict[str, Any] | None]  # (stage, request) -> fault/reply or None


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The usage's prompt tokens: each message's content in o200k plus 4 for its role and separators."""
    return sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages)


def scripted_reply(responder: Responder, request: dict[str, Any], *, prompt: int | None = None) -> dict[str, Any]:
    """The answer with its usage; `prompt`: the prompt tokens when the caller has counted them already."""
    messages = request.get("messages") or []
    text = responder.respond(messages)
    prompt = prompt_tokens(messages) if prompt is None else prompt
    reply: dict[str, Any] = {"content": text, "prompt_tokens": prompt, "completion_tokens": count_tokens(text)}
    field = {"judge": "score", "verify": "verdict"}.get(stage_of(messages))
    if request.get("logprobs") and field:
        try:
            digit = int(json.loads(text)[field])
        except (ValueError, KeyError, TypeError):
            return reply
        near = str(min(9, digit + 1))
        reply["logprobs"] = digit_logprobs(text, {str(digit): 0.7, near: 0.3} if near != str(digit) else {str(digit): 1.0},
                                           key=field)
    return reply


def scripted_server(responder: Responder | None = None, *, fault: Fault | None = None,
                    models: list[str] | None = None, work: float = 0.0, slots: int | None = None,
                    report_slots: bool = False) -> StubOpenAIServer:
    """A stub server answering like `responder`; `fault(stage, request)` may replace any answer. With
    `slots`, it works on that many requests at once, `work` seconds each (a slow llama.cpp server)."""
    responder = responder or Responder()

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        if fault is not None:
            replaced = fault(stage_of(request.get("messages") or []), request)
            if replaced is not None:
                return replaced
        reply = scripted_reply(responder, request)
        return {**reply, "delay": work} if work else reply

    return StubOpenAIServer(answer, models=models, slots=slots, report_slots=report_slots)
