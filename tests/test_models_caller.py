"""ModelCaller with the real ChatOpenAI over HTTP against the loopback stub server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.store.memory import InMemoryStore
from pydantic import BaseModel, Field

from llmxmr.core.packing import PACKED
from llmxmr.models import caller as caller_mod
from llmxmr.models.caller import ModelCaller, UsageMeter
from llmxmr.models.errors import BudgetExceededError, ContextOverflowError, OutputFault, ProviderError
from llmxmr.state.context import resolve_settings
from llmxmr.testing.openai_stub import StubOpenAIServer, digit_logprobs


class Verdict(BaseModel):
    score: int = Field(ge=0, le=10)
    rationale: str = Field("", max_length=200)


GOOD = '{"score": 7, "rationale": "clear"}'
MSGS = [SystemMessage("You are a judge."), HumanMessage("Score this outline.")]


@pytest.fixture(autouse=True)
def fast_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(caller_mod, "_sleep", waits.append)  # record waits instead of sleeping
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return waits


class Script:
    """A responder answering from a list of replies in order (the last one repeats)."""

    def __init__(self, *replies: dict[str, Any]) -> None:
        self.replies = list(replies)
        self.lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@pytest.fixture
def make() -> Iterator[Any]:
    stubs: list[StubOpenAIServer] = []

    def _make(*replies: dict[str, Any], **settings: Any) -> tuple[ModelCaller, StubOpenAIServer]:
        stub = StubOpenAIServer(Script(*replies)).start()
        stubs.append(stub)
        values = {"model": "openai:stub-model", "base_url": stub.base_url} | settings
        return ModelCaller(resolve_settings(values), InMemoryStore()), stub

    yield _make
    for stub in stubs:
        stub.stop()


def _call(caller: ModelCaller, meter: UsageMeter, **kw: Any) -> Any:
    args = dict(role="judge", stage="entropy", unit="u1", messages=MSGS, meter=meter, schema=Verdict,
                max_tokens=200) | kw
    return caller.call(**args)


def test_structured_output_and_request_shape(make: Any) -> None:
    caller, stub = make({"content": GOOD, "prompt_tokens": 31, "completion_tokens": 9})
    meter = UsageMeter()
    result = _call(caller, meter)
    assert result.value == Verdict(score=7, rationale="clear") and not result.cached
    assert (result.prompt_tokens, result.completion_tokens) == (31, 9)
    body = stub.chat_requests[0]["body"]
    assert body["model"] == "stub-model" and body["temperature"] == 0.0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Verdict"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["score"]["maximum"] == 10
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 200
    assert meter.as_usage() == {"entropy": {"calls": 1, "cached": 0, "batched": 0, "retries": 0, "repairs": 0, "failures": 0,
                                            "prompt_tokens": 31, "cache_read_tokens": 0, "completion_tokens": 9,
                                            "batched_prompt_tokens": 0, "batched_completion_tokens": 0}}


def test_plain_text_call(make: Any) -> None:
    caller, stub = make({"content": "A paragraph."})
    result = _call(caller, UsageMeter(), schema=None, role="writer", stage="write")
    assert result.value == "A paragraph." and "response_format" not in stub.chat_requests[0]["body"]


def test_logprobs_returned(make: Any) -> None:
    lp = digit_logprobs(GOOD, {"7": 0.6, "8": 0.3, "6": 0.1}, key="score")
    caller, stub = make({"content": GOOD, "logprobs": lp})
    result = _call(caller, UsageMeter(), logprobs=True)
    body = stub.chat_requests[0]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 10
    digit = next(e for e in result.logprobs if e["token"] == "7")
    assert {t["token"] for t in digit["top_logprobs"]} == {"7", "8", "6"}
    assert "".join(e["token"] for e in result.logprobs) == GOOD
    # Only the digit keeps its alternatives: the record stays small, and a replay reads the same.
    assert [e["token"] for e in result.logprobs if "top_logprobs" in e] == ["7"]
    replay = _call(caller, UsageMeter(), logprobs=True)
    assert replay.cached and replay.logprobs == result.logprobs and len(stub.chat_requests) == 1


def test_large_records_are_packed_in_the_store(make: Any) -> None:
    long = json.dumps({"score": 7, "rationale": "x" * 150}) + " " * 3000
    caller, _ = make({"content": long})
    _call(caller, UsageMeter(), schema=None)
    [item] = caller.store.search(("llmxmr", "responses"))
    assert list(item.value) == [PACKED] and len(json.dumps(item.value)) < 1000
    assert _call(caller, UsageMeter(), schema=None).text == long


def test_durable_record_replays_without_http(make: Any) -> None:
    caller, stub = make({"content": GOOD, "prompt_tokens": 20, "completion_tokens": 5})
    meter = UsageMeter()
    first = _call(caller, meter)
    again = _call(caller, meter)
    assert len(stub.chat_requests) == 1 and again.cached and again.value == first.value
    assert (again.prompt_tokens, again.completion_tokens) == (20, 5)
    usage = meter.as_usage()["entropy"]
    # Paid once, counted once: the replay in the same run adds a replayed call, not its tokens again.
    assert (usage["calls"], usage["cached"], usage["prompt_tokens"], usage["completion_tokens"]) == (1, 1, 20, 5)
    # A new caller on the same store (a resumed run in a new process) does not pay either, and counts the
    # answer once: the stopped process's task that paid for it never saved its usage.
    resumed, meter2 = ModelCaller(caller.settings, caller.store), UsageMeter()
    assert _call(resumed, meter2).cached and _call(resumed, meter2).cached and len(stub.chat_requests) == 1
    assert (meter2.as_usage()["entropy"]["cached"], meter2.as_usage()["entropy"]["prompt_tokens"]) == (2, 20)
    # Any change of the request is a new key.
    _call(caller, meter, candidate=1)
    _call(caller, meter, temperature=0.7)
    assert len(stub.chat_requests) == 3


def test_record_is_written_before_parsing(make: Any) -> None:
    caller, stub = make({"content": "garbage"}, max_repairs=0)
    with pytest.raises(OutputFault):
        _call(caller, UsageMeter())
    with pytest.raises(OutputFault):
        _call(caller, UsageMeter())  # replayed from the record: the bad answer is not paid twice
    assert len(stub.chat_requests) == 1


def test_429_with_retry_after_then_success(make: Any, fast_waits: list[float]) -> None:
    caller, stub = make(
        {"status": 429, "headers": {"Retry-After": "3"}, "body": {"error": {"message": "rate limited"}}},
        {"content": GOOD},
    )
    meter = UsageMeter()
    assert _call(caller, meter).value.score == 7
    assert fast_waits == [3.0] and len(stub.chat_requests) == 2
    usage = meter.as_usage()["entropy"]
    assert (usage["calls"], usage["retries"]) == (2, 1)


def test_retry_after_is_capped(make: Any, fast_waits: list[float]) -> None:
    caller, _ = make({"status": 429, "headers": {"Retry-After": "600"}}, {"content": GOOD})
    _call(caller, UsageMeter())
    assert fast_waits == [60.0]


def test_500_and_dropped_connection_retried(make: Any, fast_waits: list[float]) -> None:
    caller, stub = make({"status": 500}, {"drop": True}, {"status": 503}, {"content": GOOD})
    assert _call(caller, UsageMeter()).value.score == 7
    assert len(stub.chat_requests) == 4 and len(fast_waits) == 3
    assert fast_waits[1] > fast_waits[0] * 0.9  # exponential (jittered) backoff


def test_retries_give_up_after_max_attempts(make: Any) -> None:
    caller, stub = make({"status": 502})
    meter = UsageMeter()
    with pytest.raises(ProviderError) as info:
        _call(caller, meter)
    assert info.value.retryable and len(stub.chat_requests) == caller_mod.MAX_ATTEMPTS
    assert "5 attempts" in str(info.value)
    assert meter.as_usage()["entropy"]["calls"] == caller_mod.MAX_ATTEMPTS


@pytest.mark.parametrize(("status", "kind"), [(404, "not_found"), (400, "invalid_request"), (401, "auth")])
def test_fatal_errors_fail_fast_naming_model_role_stage(make: Any, status: int, kind: str) -> None:
    caller, stub = make({"status": status, "body": {"error": {"message": "nope", "type": "invalid"}}})
    meter = UsageMeter()
    with pytest.raises(ProviderError) as info:
        _call(caller, meter)
    msg = str(info.value)
    assert len(stub.chat_requests) == 1 and info.value.status == status and not info.value.retryable
    assert "openai:stub-model" in msg and "role judge" in msg and "stage entropy" in msg and "Fix:" in msg
    assert msg.startswith(kind)
    assert meter.failures[0].kind == "provider_error" and meter.failures[0].unit == "u1"


def test_context_overflow_classified(make: Any) -> None:
    body = {"error": {"code": 400, "type": "exceed_context_size_error",
                      "message": "the request exceeds the available context size, try increasing it"}}
    caller, stub = make({"status": 400, "body": body})
    with pytest.raises(ContextOverflowError, match="does not fit"):
        _call(caller, UsageMeter())
    assert len(stub.chat_requests) == 1


def test_invalid_json_repaired_by_reask(make: Any) -> None:
    caller, stub = make({"content": "Sure! The score is seven."}, {"content": '{"score": 11}'}, {"content": GOOD})
    meter = UsageMeter()
    assert _call(caller, meter).value.score == 7
    assert len(stub.chat_requests) == 3
    second = stub.chat_requests[1]["body"]["messages"]
    assert second[-2] == {"role": "assistant", "content": "Sure! The score is seven."}
    assert "no complete JSON" in second[-1]["content"] and '"score": int 0..10' in second[-1]["content"]
    assert "score" in stub.chat_requests[2]["body"]["messages"][-1]["content"]  # names the pydantic error
    usage = meter.as_usage()["entropy"]
    assert (usage["calls"], usage["repairs"], usage["failures"]) == (3, 2, 0)


def test_repairs_exhausted_records_failure(make: Any) -> None:
    caller, stub = make({"content": ""}, max_repairs=1)
    meter = UsageMeter()
    with pytest.raises(OutputFault) as info:
        _call(caller, meter)
    assert info.value.kind == "empty" and len(stub.chat_requests) == 2
    assert meter.failures[0].model_dump() == {"stage": "entropy", "unit": "u1", "kind": "output_fault",
                                              "message": "empty: the reply was empty"}


def test_length_stop_handled(make: Any) -> None:
    # Nothing complete to keep (the score comes last): the model is asked again.
    caller, stub = make({"content": '{"rationale": "a very lo', "finish_reason": "length"},
                        {"content": GOOD})
    meter = UsageMeter()
    assert _call(caller, meter).value.score == 7
    assert "cut off at the 200-token limit" in stub.chat_requests[1]["body"]["messages"][-1]["content"]
    assert meter.as_usage()["entropy"]["repairs"] == 1


def test_length_stop_exhausted(make: Any) -> None:
    caller, _ = make({"content": "{", "finish_reason": "length"}, max_repairs=0)
    with pytest.raises(OutputFault) as info:
        _call(caller, UsageMeter())
    assert info.value.kind == "length"


def test_budget_hook_stops_before_paying(make: Any) -> None:
    caller, stub = make({"content": GOOD})

    def over_budget() -> None:
        raise BudgetExceededError("max_calls reached")

    caller.budget_check = over_budget
    with pytest.raises(BudgetExceededError):
        _call(caller, UsageMeter())
    assert stub.chat_requests == []


def test_rate_limiter_spaces_requests(make: Any, fast_waits: list[float]) -> None:
    caller, _ = make({"content": GOOD}, requests_per_minute=60)
    meter = UsageMeter()
    for i in range(3):
        _call(caller, meter, candidate=i)
    assert len(fast_waits) == 2 and all(0.5 < w <= 2.0 for w in fast_waits)


def test_parallel_calls_are_metered_exactly(make: Any) -> None:
    caller, stub = make({"content": GOOD, "prompt_tokens": 3, "completion_tokens": 2})
    meter = UsageMeter()
    threads = [threading.Thread(target=_call, args=(caller, meter), kwargs={"candidate": i}) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    usage = meter.as_usage()["entropy"]
    assert (usage["calls"], usage["prompt_tokens"], usage["completion_tokens"]) == (8, 24, 16)
    assert len(stub.chat_requests) == 8 and all(r["delivered"] for r in stub.chat_requests)


def test_injected_fake_models_by_role() -> None:
    judge = GenericFakeChatModel(messages=iter([AIMessage(content="```json\n" + GOOD + "\n```")]))
    writer = GenericFakeChatModel(messages=iter([AIMessage(content="Prose.")]))
    caller = ModelCaller(resolve_settings({}), InMemoryStore(), models={"judge": judge, "writer": writer})
    meter = UsageMeter()
    assert _call(caller, meter).value.score == 7
    assert _call(caller, meter, role="writer", stage="write", schema=None).value == "Prose."
    usage = meter.as_usage()
    assert usage["write"]["calls"] == 1 and usage["write"]["completion_tokens"] > 0  # counted by tiktoken


def test_stub_serves_streaming(make: Any) -> None:
    from langchain_openai import ChatOpenAI

    caller, stub = make({"content": GOOD * 3})
    model = ChatOpenAI(base_url=stub.base_url, api_key="x", model="m", max_retries=0, use_responses_api=False)
    assert "".join(str(c.content) for c in model.stream("hi")) == GOOD * 3
    assert json.loads(json.dumps(stub.chat_requests[0]["body"]))["stream"] is True


def test_prose_cut_at_the_limit_is_kept_to_its_last_sentence(make: Any) -> None:
    text = "First finding [@p-1]. Second finding is long and was cut in the mid"
    caller, stub = make({"content": text, "finish_reason": "length"})
    meter = UsageMeter()
    result = _call(caller, meter, schema=None)
    assert result.value == "First finding [@p-1]."
    assert len(stub.chat_requests) == 1  # no re-ask for prose
    assert meter.as_usage()["entropy"]["repairs"] == 0


def test_a_cut_off_answer_keeps_its_complete_part_without_asking_again(make: Any) -> None:
    caller, stub = make({"content": '{"score": 7, "rationale": "a very lo', "finish_reason": "length"})
    meter = UsageMeter()
    result = _call(caller, meter)
    assert (result.value.score, result.value.rationale) == (7, "")
    assert len(stub.chat_requests) == 1
    assert meter.as_usage()["entropy"]["repairs"] == 1
    assert meter.as_usage()["entropy"]["failures"] == 0
    assert [(f.kind, f.stage) for f in meter.failures] == [("truncated", "entropy")]


def test_token_rate_limiter_waits_once_a_minutes_worth_is_used() -> None:
    from llmxmr.models.metering import TokenRateLimiter

    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    limiter = TokenRateLimiter(600, sleep=sleep, clock=lambda: now[0])  # 10 tokens per second
    limiter.acquire(500)
    limiter.acquire(100)
    assert waits == [], "a minute's worth goes at once"
    limiter.acquire(50)
    assert waits == [pytest.approx(5.0)], "then 10 tokens per second"
    limiter.settle(50, 10)  # the request used fewer tokens than estimated: the difference comes back
    limiter.acquire(40)
    assert waits == [pytest.approx(5.0)]
    limiter.acquire(20)
    assert waits[-1] == pytest.approx(2.0)
    unlimited = TokenRateLimiter(None, sleep=sleep)
    unlimited.acquire(10**9)
    assert len(waits) == 2


def test_tokens_per_minute_limits_each_model(make: Any, fast_waits: list[float]) -> None:
    caller, stub = make({"content": GOOD, "prompt_tokens": 900, "completion_tokens": 100}, tokens_per_minute=1500)
    meter = UsageMeter()
    _call(caller, meter, max_tokens=100)
    assert fast_waits == []
    _call(caller, meter, max_tokens=100, candidate=1)  # 1,000 used + ~120 estimated <= 1,500
    assert fast_waits == []
    _call(caller, meter, max_tokens=400, candidate=2)  # 2,000 used + ~420 estimated: wait for ~920 tokens
    assert len(fast_waits) == 1 and 30 < fast_waits[0] < 45
    assert len(stub.chat_requests) == 3


def test_rate_limits_must_be_positive() -> None:
    from llmxmr.state.context import SettingsError

    with pytest.raises(SettingsError, match="tokens_per_minute must be at least 1"):
        resolve_settings({"tokens_per_minute": 0})
