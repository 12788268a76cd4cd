"""classify(): kinds, retryability and Retry-After for the installed SDKs' errors."""

from __future__ import annotations

import httpx
import openai
import pytest
from langchain_core.exceptions import ModelAuthenticationError, ModelRateLimitError, ModelTimeoutError

from llmxmr.models.errors import classify

REQ = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def _status_error(cls: type[openai.APIStatusError], status: int, message: str, headers: dict | None = None):
    resp = httpx.Response(status, headers=headers or {}, request=REQ, json={"error": {"message": message}})
    return cls(message, response=resp, body={"error": {"message": message}})


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (_status_error(openai.RateLimitError, 429, "slow down"), "rate_limit", True),
        (_status_error(openai.InternalServerError, 500, "boom"), "server", True),
        (_status_error(openai.InternalServerError, 503, "busy"), "server", True),
        (_status_error(openai.AuthenticationError, 401, "bad key"), "auth", False),
        (_status_error(openai.NotFoundError, 404, "no such model"), "not_found", False),
        (_status_error(openai.BadRequestError, 400, "bad field"), "invalid_request", False),
        (openai.APITimeoutError(REQ), "timeout", True),
        (openai.APIConnectionError(request=REQ), "connection", True),
        (httpx.ReadTimeout("slow", request=REQ), "timeout", True),
        (httpx.ConnectError("refused", request=REQ), "connection", True),
        (ModelRateLimitError("lc"), "rate_limit", True),
        (ModelTimeoutError("lc"), "timeout", True),
        (ModelAuthenticationError("lc"), "auth", False),
        (ValueError("something else"), "unknown", False),
    ],
)
def test_kinds(exc: BaseException, kind: str, retryable: bool) -> None:
    got_kind, got_retryable, _ = classify(exc)
    assert (got_kind, got_retryable) == (kind, retryable)


@pytest.mark.parametrize(
    "message",
    [
        "the request exceeds the available context size, try increasing it",  # llama.cpp
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",  # vLLM
        "prompt has too many tokens",
        "requested tokens exceed n_ctx",
        "Input exceeds context length",
    ],
)
def test_context_overflow_from_generic_400(message: str) -> None:
    assert classify(_status_error(openai.BadRequestError, 400, message)) == ("context_overflow", False, None)


def test_langchain_wrapped_overflow_and_cause_chain() -> None:
    from langchain_core.exceptions import ContextOverflowError

    assert classify(ContextOverflowError("x"))[0] == "context_overflow"
    try:
        try:
            raise _status_error(openai.RateLimitError, 429, "quota", {"retry-after": "7"})
        except openai.RateLimitError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert classify(outer) == ("rate_limit", True, 7.0)


def test_retry_after_headers() -> None:
    assert classify(_status_error(openai.RateLimitError, 429, "x", {"retry-after": "3"}))[2] == 3.0
    assert classify(_status_error(openai.RateLimitError, 429, "x", {"retry-after-ms": "250"}))[2] == 0.25
    assert classify(_status_error(openai.RateLimitError, 429, "x"))[2] is None


def test_langchain_openai_wrappers_keep_sdk_status() -> None:
    from langchain_openai.chat_models.base import OpenAIModelNotFoundError, OpenAIRateLimitError

    resp = httpx.Response(429, headers={"retry-after": "2"}, request=REQ)
    assert classify(OpenAIRateLimitError("x", response=resp, body=None)) == ("rate_limit", True, 2.0)
    resp = httpx.Response(404, request=REQ)
    assert classify(OpenAIModelNotFoundError("x", response=resp, body=None))[:2] == ("not_found", False)


def test_google_errors() -> None:
    from google.genai import errors as gerrors

    server = gerrors.ServerError(503, {"error": {"message": "overloaded", "status": "UNAVAILABLE"}})
    assert classify(server)[:2] == ("server", True)
    client = gerrors.ClientError(429, {"error": {"message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    assert classify(client)[:2] == ("rate_limit", True)
    bad = gerrors.ClientError(400, {"error": {"message": "API key not valid", "status": "INVALID_ARGUMENT"}})
    assert classify(bad)[:2] == ("invalid_request", False)
