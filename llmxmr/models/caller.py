"""`ModelCaller`: the one wrapper that owns every model call.

It picks the role's model, replays durable responses (a resumed run never pays twice), binds structured
output per provider, retries only retryable errors, repairs malformed output by re-asking a bounded number
of times, rate-limits per role, and meters calls and tokens per stage. Nodes run in parallel threads, so
every shared piece here is lock-protected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.store.base import BaseStore
from pydantic import BaseModel

from llmxmr import run_store
from llmxmr.core.entropy import compact_logprobs
from llmxmr.corpus import clean_text
from llmxmr.models.adaptive import AdaptiveLimit
from llmxmr.models.errors import (
    BudgetExceededError,
    ContextOverflowError,
    OutputFault,
    ProviderError,
    classify,
)
from llmxmr.models.jsonparse import parse_json_reply, salvage_truncated, schema_sketch
from llmxmr.models.metering import (  # noqa: F401 - re-exported for callers and tests
    RateLimiter,
    TokenRateLimiter,
    UsageMeter,
    _in_flight,
    sending,
    server_slots,
    wait_for_requests_in_flight,
)
from llmxmr.models.providers import (  # noqa: F401 - TOP_LOGPROBS re-exported
    TOP_LOGPROBS,
    bind_for,
    provider_of,
    schema_json,
)
from llmxmr.models.specs import ModelSpec
from llmxmr.models.tokens import count_tokens, truncate_to_tokens
from llmxmr.stages import ROLES
from llmxmr.state.context import Settings

# Retry policy (module-level so tests can shrink the waits).
BACKOFF_BASE = 1.0  # seconds before the 2nd attempt; doubles each time
BACKOFF_MAX = 30.0
RETRY_AFTER_CAP = 60.0  # honour Retry-After up to this many seconds
MAX_ATTEMPTS = 5
TOTAL_DEADLINE = 900.0  # seconds one call may spend across its retries
REPAIR_ECHO_TOKENS = 300  # how much of a bad answer is shown back to the model
# An answer longer than this many characters per token of its output budget was not cut by the server
# (a broken or hostile one): a token is 3-5 characters of English, so honest answers stay far below.
ANSWER_CHARS_PER_TOKEN = 16
_sleep = time.sleep  # module-level so tests can observe waits without waiting
log = logging.getLogger("llmxmr")  # retries and back-offs, as they happen (the CLI prints them unless -q)



@dataclass
class CallResult:
    value: BaseModel | str
    text: str
    logprobs: list[dict] | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool


@dataclass
class _Reply:
    """One model response as stored in the durable record."""

    text: str
    logprobs: list[dict] | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    cached: bool = False
    reported_model: str | None = None  # the model name the provider says answered (its version, often)
    cache_read_tokens: int = 0  # prompt tokens the provider served from its prompt cache


def _content_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    # Content blocks (google, reasoning models): keep the text parts only.
    parts = [b if isinstance(b, str) else b.get("text", "") for b in content if isinstance(b, (str, dict))]
    return "".join(p for p in parts if isinstance(p, str))


def _finish_reason(message: BaseMessage) -> str:
    meta = message.response_metadata or {}
    reason = str(meta.get("finish_reason") or meta.get("stop_reason") or "stop")
    return "length" if reason.lower() in ("length", "max_tokens") else reason.lower()


def response_key(*, model: str, messages: list[BaseMessage], schema: type[BaseModel] | None, max_tokens: int,
                 temperature: float | None, candidate: int, logprobs: bool) -> str:
    """sha256 of everything that determines the answer: equal keys may share one paid response."""
    payload = {
        "model": model,
        "messages": [[m.type, m.content] for m in messages],
        "schema": [schema.__name__, schema_json(schema)] if schema else None,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "candidate": candidate,
        "logprobs": logprobs,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


_FIXES = {
    "auth": "check the API key (OPENAI_API_KEY or GOOGLE_API_KEY)",
    "permission": "the API key has no access to this model; use another model or key",
    "not_found": "check the model name (--model) and base_url; an OpenAI-compatible server lists its models at BASE_URL/models",
    "invalid_request": "the server rejected the request; check that the model supports JSON-schema output"
    " (and logprobs for the judge), or lower max_output_tokens",
}


class ModelCaller:
    def __init__(
        self,
        settings: Settings,
        store: BaseStore,
        *,
        models: Mapping[str, BaseChatModel] | BaseChatModel | None = None,
        budget_check: Callable[[], None] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        # The run's spending (calls incl. retries and repairs, tokens), persisted in the store so that a resumed
        # run continues the same count; the default budget_check stops before a request that would exceed it.
        self.run_id = run_id
        self._spent_lock = threading.Lock()
        self.spent = {"calls": 0, "tokens": 0}
        self.reported_models: dict[str, set[str]] = {}  # model spec -> the names its provider reported
        if run_id is not None:
            self.spent.update(run_store.get_spent(store, run_id) or {})
        self.budget_check = budget_check if budget_check is not None else self._check_budget
        self._injected = models
        self._models: dict[str, BaseChatModel] = {}
        self._models_lock = threading.Lock()
        # The lambda looks `_sleep` up at call time, so tests that replace it see the limiter's waits too.
        self._limits: dict[str, tuple[RateLimiter, TokenRateLimiter]] = {}  # per model spec (providers limit per model)
        self._limits_lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}  # one paid request per key at a time (single flight)
        self._inflight_lock = threading.Lock()
        # Keys whose tokens this caller (one per run and process) has put in a meter: a question asked twice
        # in one run is replayed and counted once; a resumed process counts what the killed one paid for
        # (its tasks' usage was never checkpointed), and a Batch API answer when its task first replays it.
        self._counted: set[str] = set()
        self._adaptive: dict[str, AdaptiveLimit] = {}  # per model spec: requests in flight, adapted (AIMD)

    def in_flight_limit(self, spec: str) -> AdaptiveLimit:
        """The model's adaptive in-flight limit: it starts at the server's parallel slots where the server
        reports them (else max_concurrency), or at the limit a stopped run had settled at."""
        with self._limits_lock:
            if spec not in self._adaptive:
                ceiling = self.settings.max_concurrency
                slots = self._server_slots(spec)
                if slots is not None:
                    ceiling = min(ceiling, slots)
                saved = run_store.get_concurrency(self.store, self.run_id).get(spec) if self.run_id else None
                start = min(ceiling, int(saved["settled"])) if saved and saved.get("max") == ceiling else ceiling
                self._adaptive[spec] = AdaptiveLimit(start, ceiling, on_change=lambda _: self._save_concurrency())
            return self._adaptive[spec]

    def _server_slots(self, spec: str) -> int | None:
        if self._injected is not None:  # injected chat models (tests, a parent agent): no server to ask
            return None
        try:
            parsed = ModelSpec.parse(spec)
            return provider_of(parsed).parallel_slots(parsed, self.settings)
        except Exception:  # a bad spec fails at its first call, with its own message
            return None

    def concurrency_report(self) -> dict[str, dict[str, int]]:
        with self._limits_lock:
            return {spec: limit.report() for spec, limit in self._adaptive.items()}

    def _save_concurrency(self) -> None:
        if self.run_id is None:
            return
        saved = run_store.get_concurrency(self.store, self.run_id)
        saved.update(self.concurrency_report())
        run_store.put_concurrency(self.store, self.run_id, saved)

    def _limiters(self, spec: str) -> tuple[RateLimiter, TokenRateLimiter]:
        with self._limits_lock:
            if spec not in self._limits:
                sleep = lambda s: _sleep(s)  # noqa: E731 - looked up at call time: tests replace `_sleep`
                self._limits[spec] = (RateLimiter(self.settings.requests_per_minute, sleep=sleep),
                                      TokenRateLimiter(self.settings.tokens_per_minute, sleep=sleep))
            return self._limits[spec]

    # -- budget ------------------------------------------------------------------------------------------
    def _check_budget(self) -> None:
        s = self.settings
        with self._spent_lock:
            calls, tokens = self.spent["calls"], self.spent["tokens"]
        if s.max_calls is not None and calls >= s.max_calls:
            raise BudgetExceededError(
                f"budget exhausted: {calls} of max_calls={s.max_calls} calls used (retries and repairs included). "
                "Fix: resume with a larger budget, e.g. --set max_calls=" + str(max(s.max_calls * 2, calls + 10)))
        if s.max_total_tokens is not None and tokens >= s.max_total_tokens:
            raise BudgetExceededError(
                f"budget exhausted: {tokens} of max_total_tokens={s.max_total_tokens} tokens used. Fix: resume "
                "with a larger budget, e.g. --set max_total_tokens=" + str(max(s.max_total_tokens * 2, tokens)))

    def _spend(self, calls: int = 0, tokens: int = 0, persist: bool = True) -> None:
        with self._spent_lock:
            self.spent["calls"] += calls
            self.spent["tokens"] += tokens
            value = dict(self.spent)
        if persist and self.run_id is not None:
            run_store.put_spent(self.store, self.run_id, value)

    # -- model selection ---------------------------------------------------------------------------------
    def model_for(self, role: str) -> BaseChatModel:
        if isinstance(self._injected, BaseChatModel):
            return self._injected
        if isinstance(self._injected, Mapping) and role in self._injected:
            return self._injected[role]
        raw = self.settings.model_for(role)
        with self._models_lock:  # one start of the embedded server, one client per spec
            if raw not in self._models:
                from llmxmr.models.factory import make_chat_model

                self._models[raw] = make_chat_model(ModelSpec.parse(raw), settings=self.settings)
            return self._models[raw]

    # -- the call ------------------------------------------------------------------------------------------
    def call(
        self,
        *,
        role: str,
        stage: str,
        unit: str,
        messages: list[BaseMessage],
        meter: UsageMeter,
        schema: type[BaseModel] | None = None,
        max_tokens: int,
        temperature: float | None = None,
        candidate: int = 0,
        logprobs: bool = False,
    ) -> CallResult:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        model = self.model_for(role)
        temperature = self.settings.temperature if temperature is None else temperature
        if candidate and not temperature:
            # A candidate other than 0 is a deliberate independent sample (best-of, a fresh re-score): the
            # same request at temperature 0 would only repeat an earlier answer, so it samples, with its
            # index as the seed (`_bind`): no request body is sent twice in a run.
            temperature = self.settings.candidate_temperature
        convo = list(messages)
        for repair in range(self.settings.max_repairs + 1):
            reply = self._reply(role=role, stage=stage, unit=unit, model=model, messages=convo, meter=meter, schema=schema,
                                max_tokens=max_tokens, temperature=temperature, candidate=candidate,
                                logprobs=logprobs)
            try:
                value = self._interpret(reply, schema)
            except OutputFault as fault:
                kept = self._salvage(reply, schema) if fault.kind == "length" else None
                if kept is not None:
                    meter.note(stage, unit, "truncated", "the answer was cut at the token limit; its complete "
                               "elements were kept instead of asking again")
                    return CallResult(value=kept, text=reply.text, logprobs=reply.logprobs,
                                      prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                                      cached=reply.cached)
                if repair >= self.settings.max_repairs:
                    meter.fail(stage, unit, "output_fault", f"{fault.kind}: {fault}")
                    raise
                meter.add(stage, repairs=1)
                convo = [*convo, *self._repair_messages(reply, fault, schema, max_tokens)]
                continue
            return CallResult(value=value, text=reply.text, logprobs=reply.logprobs,
                              prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                              cached=reply.cached)
        raise AssertionError("unreachable")

    @staticmethod
    def _salvage(reply: _Reply, schema: type[BaseModel] | None) -> BaseModel | None:
        """The complete part of a structured answer cut at the token limit, when it is a valid answer."""
        if schema is None:
            return None
        closed = salvage_truncated(reply.text)
        if closed is None:
            return None
        try:
            return parse_json_reply(closed, schema)
        except OutputFault:
            return None

    @staticmethod
    def _interpret(reply: _Reply, schema: type[BaseModel] | None) -> BaseModel | str:
        if reply.finish_reason == "length" and schema is None and reply.text.strip():
            # Prose cut at the token limit is still usable: keep it up to its last full sentence
            # (re-asking would pay for the same long answer again).
            return _to_last_sentence(reply.text)
        if reply.finish_reason == "length":
            raise OutputFault(f"the answer was cut off at the token limit ({reply.completion_tokens} tokens)",
                              kind="length")
        if not reply.text.strip():
            raise OutputFault("the reply was empty", kind="empty")
        return parse_json_reply(reply.text, schema) if schema else reply.text

    @staticmethod
    def _repair_messages(reply: _Reply, fault: OutputFault, schema: type[BaseModel] | None,
                         max_tokens: int) -> list[BaseMessage]:
        shown, _ = truncate_to_tokens(reply.text, REPAIR_ECHO_TOKENS)
        if fault.kind == "length":
            ask = f"Your answer was cut off at the {max_tokens}-token limit. Answer again, much shorter"
        elif fault.kind == "empty":
            ask = "Your answer was empty. Answer again"
        else:
            ask = f"Your answer was not usable: {fault}. Answer again"
        if schema is not None:
            ask += f", with only one JSON object of this shape: {schema_sketch(schema)}"
        return [AIMessage(content=shown or "(empty)"), HumanMessage(content=ask + ".")]

    # -- one response: durable record or a paid request -------------------------------------------------
    def _reply(self, *, role: str, stage: str, unit: str, model: BaseChatModel, messages: list[BaseMessage],
               meter: UsageMeter, schema: type[BaseModel] | None, max_tokens: int, temperature: float,
               candidate: int, logprobs: bool) -> _Reply:
        spec = self.settings.model_for(role)
        key = response_key(model=spec, messages=messages, schema=schema, max_tokens=max_tokens,
                           temperature=temperature, candidate=candidate, logprobs=logprobs)
        # Parallel branches may ask the very same question (two sections with the same draft): the second
        # waits for the first and replays its record instead of paying again.
        with self._inflight_lock:
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            return self._reply_once(key, role=role, stage=stage, unit=unit, spec=spec, model=model,
                                    messages=messages, meter=meter, schema=schema, max_tokens=max_tokens,
                                    temperature=temperature, logprobs=logprobs, candidate=candidate)

    def _reply_once(self, key: str, *, role: str, stage: str, unit: str, spec: str, model: BaseChatModel,
                    messages: list[BaseMessage], meter: UsageMeter, schema: type[BaseModel] | None,
                    max_tokens: int, temperature: float, logprobs: bool, candidate: int = 0) -> _Reply:
        v = run_store.get_response(self.store, key)
        if v is not None:
            if key in self._counted:  # this run already counted it: one payment, one count
                meter.add(stage, cached=1)
            else:
                self._counted.add(key)
                meter.add(stage, cached=1, prompt_tokens=v["prompt_tokens"], completion_tokens=v["completion_tokens"],
                          cache_read_tokens=int(v.get("cache_read_tokens") or 0))
            self._note_reported(spec, v.get("reported_model"))
            return _Reply(text=v["text"], logprobs=v.get("logprobs"), prompt_tokens=v["prompt_tokens"],
                          completion_tokens=v["completion_tokens"], finish_reason=v.get("finish_reason", "stop"),
                          cached=True, reported_model=v.get("reported_model"),
                          cache_read_tokens=int(v.get("cache_read_tokens") or 0))
        bound = self._bind(model, schema=schema, max_tokens=max_tokens, temperature=temperature,
                           logprobs=logprobs, seed=candidate or None)
        with _in_flight():
            reply = self._request(bound, role=role, stage=stage, unit=unit, spec=spec, messages=messages,
                                  meter=meter, logprobs=logprobs, max_tokens=max_tokens)
            reply.logprobs = compact_logprobs(reply.logprobs)  # fresh and replayed answers read the same
            self._admit(reply, max_tokens, stage, unit, meter)
            # Record before parsing: a run killed after this point never pays for this response again.
            run_store.put_response(self.store, key, {
                "text": reply.text, "logprobs": reply.logprobs, "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens, "finish_reason": reply.finish_reason,
                "cache_read_tokens": reply.cache_read_tokens, "model": spec, "reported_model": reply.reported_model,
                "stage": stage, "recorded_at": time.time(),
            })
        self._note_reported(spec, reply.reported_model)
        self._counted.add(key)
        meter.add(stage, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                  cache_read_tokens=reply.cache_read_tokens)
        self._spend(tokens=reply.prompt_tokens + reply.completion_tokens)
        return reply

    # -- the Batch API (llmxmr.models.batch, nodes/batch.py) ---------------------------------------------
    def batch_request(self, *, role: str, messages: list[BaseMessage], schema: type[BaseModel] | None,
                      max_tokens: int, temperature: float | None = None) -> tuple[str, dict[str, Any]] | None:
        """(durable-record key, chat-completions body) of the request `call` would send, or None when the
        role's model is not an OpenAI-family client (no Batch API). Candidate 0, no logprobs: map and digest."""
        from langchain_openai import ChatOpenAI

        model = self.model_for(role)
        if not isinstance(model, ChatOpenAI):
            return None
        temperature = self.settings.temperature if temperature is None else temperature
        spec = self.settings.model_for(role)
        key = response_key(model=spec, messages=messages, schema=schema, max_tokens=max_tokens,
                           temperature=temperature, candidate=0, logprobs=False)
        bound = self._bind(model, schema=schema, max_tokens=max_tokens, temperature=temperature, logprobs=False)
        payload = model._get_request_payload(messages, **getattr(bound, "kwargs", {}))
        payload.pop("stream", None)
        extra = payload.pop("extra_body", None) or {}
        return key, {**payload, **extra}

    def record_batch_reply(self, key: str, *, role: str, stage: str, unit: str, completion: dict[str, Any],
                           max_tokens: int, meter: UsageMeter) -> bool:
        """Record one batch line's chat completion under `key` as an ordinary answer would be (the task that
        asks the same question then replays it); its tokens are counted when it is replayed. False when the
        line holds no usable choice (the task then asks as an ordinary call)."""
        choices = completion.get("choices") or []
        if not choices:
            return False
        choice = choices[0]
        usage = completion.get("usage") or {}
        text = (choice.get("message") or {}).get("content") or ""
        reply = _Reply(text=text, logprobs=None, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                       completion_tokens=int(usage.get("completion_tokens") or count_tokens(text)),
                       finish_reason=str(choice.get("finish_reason") or "stop"),
                       reported_model=completion.get("model"),
                       cache_read_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0))
        self._admit(reply, max_tokens, stage, unit, meter)
        spec = self.settings.model_for(role)
        run_store.put_response(self.store, key, {
            "text": reply.text, "logprobs": None, "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens, "finish_reason": reply.finish_reason,
            "cache_read_tokens": reply.cache_read_tokens, "model": spec, "reported_model": reply.reported_model,
            "stage": stage, "batch": True, "recorded_at": time.time(),
        })
        self._spend(calls=1, tokens=reply.prompt_tokens + reply.completion_tokens)
        return True

    def _note_reported(self, spec: str, reported: str | None) -> None:
        if reported:
            with self._spent_lock:
                self.reported_models.setdefault(spec, set()).add(str(reported))

    @staticmethod
    def _admit(reply: _Reply, max_tokens: int, stage: str, unit: str, meter: UsageMeter) -> None:
        """The answer crosses into the run here, once: lone surrogates and NUL go (they cannot be stored or
        sent again), and an answer far beyond its stage's output budget is cut there, as a server would."""
        reply.text = clean_text(reply.text)
        limit = max(1, max_tokens) * ANSWER_CHARS_PER_TOKEN
        if len(reply.text) > limit:
            meter.note(stage, unit, "truncated", f"the answer had {len(reply.text)} characters, far beyond the "
                       f"{max_tokens}-token output budget; it was cut to {limit}")
            reply.text, reply.finish_reason = reply.text[:limit], "length"

    @staticmethod
    def _bind(model: BaseChatModel, *, schema: type[BaseModel] | None, max_tokens: int, temperature: float,
              logprobs: bool, seed: int | None = None) -> Any:
        return bind_for(model, schema=schema, max_tokens=max_tokens, temperature=temperature, logprobs=logprobs,
                        seed=seed)

    def _request(self, bound: Any, *, role: str, stage: str, unit: str, spec: str, messages: list[BaseMessage],
                 meter: UsageMeter, logprobs: bool, max_tokens: int = 0) -> _Reply:
        deadline = time.monotonic() + TOTAL_DEADLINE
        requests, tokens = self._limiters(spec)
        limit = self.in_flight_limit(spec)
        estimate = _count_messages(messages) + max_tokens if self.settings.tokens_per_minute else 0
        timed_out: list[float] = []  # how long each attempt that timed out ran
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self.budget_check is not None:
                self.budget_check()  # raises BudgetExceededError before money is spent
            # The request waits for its slot before it is sent: its time-out counts the server's work, not
            # the time spent behind our own other requests. Rate limits pace it when it is about to go.
            with limit.slot() as sent_in:
                requests.acquire()
                tokens.acquire(estimate)
                meter.add(stage, calls=1, retries=1 if attempt > 1 else 0)
                # Counted now (parallel requests see it); written with the answer's tokens, or now under a call budget.
                self._spend(calls=1, persist=self.settings.max_calls is not None)
                started = time.monotonic()
                try:
                    slot = server_slots(spec)
                    with sending():
                        if slot is None:
                            message = bound.invoke(messages)
                        else:
                            with slot:
                                message = self._invoke_embedded(bound, messages, spec)
                except openai.LengthFinishReasonError as exc:  # a parse-path binding (response_format=) raises on length stops
                    limit.success()
                    return self._reply_from_completion(exc.completion, "length", messages, logprobs)
                except openai.ContentFilterFinishReasonError as exc:
                    limit.success()
                    return self._reply_from_completion(exc.completion, "content_filter", messages, logprobs)
                except BudgetExceededError:
                    raise
                except Exception as exc:
                    failure = exc
                    ran = time.monotonic() - started
                else:
                    failure = None
            if failure is None:
                limit.success()
                break
            exc = failure
            kind, retryable, after = classify(exc)
            where = f"model {spec} (role {role}, stage {stage})"
            if kind == "context_overflow":
                raise ContextOverflowError(
                    f"{where}: the prompt does not fit the model's context window: {_short(exc)}. Fix: set "
                    "context_window (--set context_window=N) to the server's real per-request context, or "
                    "use a model with a larger context") from exc
            status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
            status = status if isinstance(status, int) else None
            if not retryable:
                fix = _FIXES.get(kind, "see the error above")
                meter.fail(stage, unit, "provider_error", f"{kind}: {_short(exc)}")
                raise ProviderError(f"{kind} error from {where}: {_short(exc)}. Fix: {fix}",
                                    status=status, retryable=False) from exc
            if kind == "timeout":
                timed_out.append(ran)
            lowered = (kind in ("timeout", "rate_limit") or status == 503) and limit.congestion(sent_in)
            wait = min(after, RETRY_AFTER_CAP) if after is not None else _backoff(attempt)
            if attempt == MAX_ATTEMPTS or time.monotonic() + wait > deadline:
                meter.fail(stage, unit, "provider_error", f"{kind}: {_short(exc)}")
                raise ProviderError(self._gave_up(kind, where, spec, attempt, exc, timed_out, limit),
                                    status=status, retryable=True) from exc
            log.warning("%s: %s (attempt %d of %d); retrying in %.1f s%s", where, _retry_reason(kind, exc),
                        attempt, MAX_ATTEMPTS, wait,
                        f"; in-flight limit lowered to {limit.limit}" if lowered else "")
            _sleep(wait)
        usage = message.usage_metadata or {}
        text = _content_text(message)
        lp = (message.response_metadata.get("logprobs") or {}).get("content") if logprobs else None
        reply = _Reply(text=text, logprobs=lp,
                       prompt_tokens=int(usage.get("input_tokens") or _count_messages(messages)),
                       completion_tokens=int(usage.get("output_tokens") or count_tokens(text)),
                       finish_reason=_finish_reason(message), cache_read_tokens=cache_read_tokens(usage),
                       reported_model=(message.response_metadata or {}).get("model_name")
                       or (message.response_metadata or {}).get("model"))
        tokens.settle(estimate, reply.prompt_tokens + reply.completion_tokens)
        return reply

    def _invoke_embedded(self, bound: Any, messages: list[BaseMessage], spec: str) -> BaseMessage:
        """A request to the embedded server: its client has no read time-out, and a request is given up only
        when the server, asked every request_timeout seconds, says it is working on nothing."""
        from llmxmr.models.local_server import invoke_while_busy, slots_busy

        base = getattr(getattr(bound, "bound", bound), "openai_api_base", None)
        if not base:  # an injected chat model (tests): no server to ask
            return bound.invoke(messages)
        return invoke_while_busy(lambda: bound.invoke(messages), self._timeout_of(spec) or 180.0,
                                 lambda: slots_busy(base))

    def _gave_up(self, kind: str, where: str, spec: str, attempts: int, exc: BaseException,
                 timed_out: list[float], limit: AdaptiveLimit) -> str:
        """The message of a retryable error that persisted: what to change, not only what happened."""
        if kind == "connection":
            endpoint = self._endpoint(spec) or "the model's server"
            local = endpoint.startswith("the embedded")
            fix = ("reinstall the package (pip install xllamacpp) and run again" if local else
                   "is the server running, is `--base-url` right?" if self.settings.base_url else
                   "is the network up?")
            return f"cannot reach {endpoint}: {_connection_reason(exc)}; {fix} ({where}, {attempts} attempts)"
        if kind == "timeout" and timed_out:
            timeout = self._timeout_of(spec)
            ran = ", ".join(f"{t:.0f} s" for t in timed_out[-3:])
            over = f"request_timeout={timeout:g} s" if timeout else "the request time-out"
            return (f"timeout error from {where}: {len(timed_out)} of {attempts} attempts ran out of {over} "
                    f"(the last ran {ran} without an answer, with at most {limit.limit} request(s) in flight). "
                    f"Fix: --set request_timeout={max(60, 2 * (timeout or 60)):g} or more: the server needs longer "
                    f"than {timeout or 0:g} s per request; --set max_concurrency=1 if it serves one request at a time")
        return (f"{kind} error from {where} persisted after {attempts} attempts: {_short(exc)}. "
                "Fix: retry later, or lower max_concurrency / requests_per_minute")

    def _endpoint(self, spec: str) -> str | None:
        try:
            parsed = ModelSpec.parse(spec)
            return provider_of(parsed).endpoint(parsed, self.settings)
        except Exception:
            return None

    def _timeout_of(self, spec: str) -> float | None:
        try:
            return self.settings.request_timeout or ModelSpec.parse(spec).request_timeout
        except Exception:
            return self.settings.request_timeout

    @staticmethod
    def _reply_from_completion(completion: Any, reason: str, messages: list[BaseMessage], logprobs: bool) -> _Reply:
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content or "") if choice else ""
        lp = None
        if logprobs and choice is not None and choice.logprobs is not None and choice.logprobs.content:
            lp = [c.model_dump() for c in choice.logprobs.content]
        usage = completion.usage
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        return _Reply(text=text, logprobs=lp,
                      prompt_tokens=usage.prompt_tokens if usage else _count_messages(messages),
                      completion_tokens=usage.completion_tokens if usage else count_tokens(text),
                      finish_reason=reason, cache_read_tokens=int(getattr(details, "cached_tokens", 0) or 0))


def cache_read_tokens(usage: Mapping[str, Any]) -> int:
    """Prompt tokens the provider served from its prompt cache, from langchain's `usage_metadata`: OpenAI's
    `prompt_tokens_details.cached_tokens` and Gemini's cached content both arrive as
    `input_token_details.cache_read` (OpenAI's service tiers as `priority_cache_read`, `flex_cache_read`)."""
    details = usage.get("input_token_details") or {}
    return sum(int(v or 0) for k, v in details.items() if k == "cache_read" or k.endswith("_cache_read"))


def _connection_reason(exc: BaseException) -> str:
    """"connection refused", "name or service not known", ...: the operating system's words, where given."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 8:
        seen.append(cur)
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror.lower()
        cur = cur.__cause__ or cur.__context__
    text = " ".join(" ".join(str(e).split()) for e in seen[1:] or seen)
    match = re.search(r"\[Errno -?\d+\] ([^\]'\"]+)", text)
    return match.group(1).strip().lower() if match else (_short(seen[-1], 120).rstrip(".").lower() or "no answer")


def _retry_reason(kind: str, exc: BaseException) -> str:
    return {"timeout": "timed out", "rate_limit": "rate limited (429)",
            "connection": f"connection failed ({_connection_reason(exc)})"}.get(kind, f"{kind} error: {_short(exc, 120)}")


def _to_last_sentence(text: str) -> str:
    cut = max(text.rfind(". "), text.rfind(".\n"), text.rfind("]."), text.rstrip().rfind("."))
    return text[: cut + 1].rstrip() if cut > 0 else text.rstrip()


def _backoff(attempt: int) -> float:
    # Exponential with full jitter: parallel branches that failed together do not retry together.
    return random.uniform(0.5, 1.0) * min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))


def _count_messages(messages: list[BaseMessage]) -> int:
    return sum(count_tokens(_content_text(m)) + 4 for m in messages)


_URL_PASSWORD = re.compile(r"(//[^/\s:@]*):[^@\s/]*@")


def _short(exc: BaseException, limit: int = 300) -> str:
    text = _URL_PASSWORD.sub(r"\1:***@", " ".join(str(exc).split()))  # a base URL's password is never shown
    text = text.rstrip(".")  # messages add their own full stop ("Request timed out.. Fix" otherwise)
    return text if len(text) <= limit else text[: limit - 3] + "..."
