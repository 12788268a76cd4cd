"""The lean ChatOpenAI client (llmxmr.models.plain_completions): the same request on the wire and the same
answer read as through the OpenAI SDK's typed `create`, which it skips for CPU's sake."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from llmxmr.models.plain_completions import PlainChatCompletions, lean
from llmxmr.models.providers import bind_for
from llmxmr.stages import STAGES
from llmxmr.state.context import resolve_settings
from llmxmr.testing.openai_stub import StubOpenAIServer, digit_logprobs

JUDGE = '{"rationale": "well ordered", "score": 7}'
MSGS = [SystemMessage("Task: judge\nRate it."), HumanMessage("Outline:\n[s1] Intro")]
# Headers that differ between any two requests of one client, whichever path sent them.
PER_REQUEST = {"x-stainless-retry-count", "x-stainless-read-timeout", "content-length"}


def _chat(stub: StubOpenAIServer, plain: bool) -> ChatOpenAI:
    chat = ChatOpenAI(model="m", base_url=stub.base_url, api_key="k", max_retries=0, timeout=30,
                      use_responses_api=False)
    return lean(chat) if plain else chat


def _judge_reply(request: dict[str, Any]) -> dict[str, Any]:
    return {"content": JUDGE, "prompt_tokens": 40, "completion_tokens": 12, "cached_tokens": 8,
            "logprobs": digit_logprobs(JUDGE, {"7": 0.6, "8": 0.4}, key="score")}


def test_same_request_and_same_answer_as_the_sdk_path() -> None:
    schema = STAGES["judge"].schema
    with StubOpenAIServer(_judge_reply) as stub:
        sdk, plain = (bind_for(_chat(stub, p), schema=schema, max_tokens=500, temperature=0.0, logprobs=True, seed=3)
                      .invoke(MSGS) for p in (False, True))
        first, second = stub.chat_requests
    assert second["body"] == first["body"]
    assert second["body"]["response_format"]["type"] == "json_schema" and second["body"]["top_logprobs"] == 10
    assert {k: v for k, v in second["headers"].items() if k not in PER_REQUEST} == \
        {k: v for k, v in first["headers"].items() if k not in PER_REQUEST}
    # What ModelCaller reads of an answer (caller.py::_request) is the same.
    assert plain.content == sdk.content == JUDGE
    assert plain.usage_metadata == sdk.usage_metadata
    assert plain.usage_metadata["input_token_details"] == {"cache_read": 8}
    for key in ("finish_reason", "model_name"):
        assert plain.response_metadata[key] == sdk.response_metadata[key]
    assert plain.response_metadata["logprobs"]["content"] == sdk.response_metadata["logprobs"]["content"]
    assert plain.response_metadata["logprobs"]["content"][0]["token"] == "{"


def test_errors_are_the_sdks_exceptions() -> None:
    replies = iter([{"status": 429, "headers": {"Retry-After": "2"}}, {"status": 400}])
    with StubOpenAIServer(lambda _: next(replies)) as stub:
        chat = _chat(stub, plain=True)
        with pytest.raises(openai.RateLimitError) as limited:
            chat.invoke(MSGS)
        assert limited.value.response.headers["retry-after"] == "2"
        with pytest.raises(openai.BadRequestError):
            chat.invoke(MSGS)


def test_streaming_goes_through_the_sdk() -> None:
    with StubOpenAIServer(lambda _: {"content": "A streamed answer, in pieces."}) as stub:
        chat = _chat(stub, plain=True)
        assert "".join(str(c.content) for c in chat.stream(MSGS)) == "A streamed answer, in pieces."
        assert stub.chat_requests[0]["body"]["stream"] is True


def test_the_providers_clients_are_lean(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmxmr.models.factory import make_chat_model
    from llmxmr.models.specs import ModelSpec

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = resolve_settings({"model": "openai:m", "base_url": "http://127.0.0.1:9/v1"})
    chat = make_chat_model(ModelSpec.parse("openai:m"), settings=settings)
    assert isinstance(chat.client, PlainChatCompletions)
