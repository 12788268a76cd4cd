"""Errors of the model-call layer, and `classify`: what kind of failure an SDK exception is.

The wrapper (caller.py) retries only what `classify` calls retryable; everything else surfaces as one of
the exceptions below with a message that says what to do.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any, Literal

import httpx
import openai
from langchain_core.exceptions import ContextOverflowError as LCContextOverflowError
from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from llmxmr.models.providers import PROVIDERS


class ModelSetupError(RuntimeError):
    """A model spec is malformed or its weights/packages are missing; the message says how to fix it."""


class ProviderError(RuntimeError):
    """The provider refused the request for good (bad request, auth, unknown model) or retries ran out."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class ContextOverflowError(RuntimeError):
    """The prompt does not fit the model's context; the calling node decides how to shrink it."""


OutputFaultKind = Literal["empty", "length", "invalid_json", "wrong_shape"]


class OutputFault(ValueError):
    """The model's output stayed malformed after the allowed repairs."""

    def __init__(self, message: str, *, kind: OutputFaultKind) -> None:
        super().__init__(message)
        self.kind = kind


class BudgetExceededError(RuntimeError):
    """The run's token or call budget is spent; raised before a paid request."""


# llama.cpp and vLLM report an overflow as a plain 400 "invalid request": recognise it from the text.
_OVERFLOW_RE = re.compile(
    r"context length|context size|context window|exceeds the available context|maximum context length"
    r"|too many tokens|n_ctx|context_length_exceeded|prompt is too long|exceeds the maximum number of tokens",
    re.IGNORECASE,
)

ErrorKind = Literal[
    "context_overflow", "rate_limit", "server", "timeout", "connection",
    "auth", "permission", "not_found", "invalid_request", "unknown",
]

_RETRYABLE_KINDS = {"rate_limit", "server", "timeout", "connection"}


def is_context_overflow_text(text: str) -> bool:
    return bool(_OVERFLOW_RE.search(text))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its explicit causes: langchain wraps SDK errors with `raise ... from e`."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 6:
        out.append(cur)
        cur = cur.__cause__
    return out


def _status_of(exc: BaseException) -> int | None:
    for e in _chain(exc):
        for attr in ("status_code", "code"):
            val = getattr(e, attr, None)
            if isinstance(val, int) and 100 <= val < 600:
                return val
        resp = getattr(e, "response", None)
        if isinstance(resp, httpx.Response):
            return resp.status_code
    return None


def _headers_of(exc: BaseException) -> Any:
    for e in _chain(exc):
        resp = getattr(e, "response", None)
        headers = getattr(resp, "headers", None)
        if headers is not None:
            return headers
    return None


def retry_after_seconds(exc: BaseException) -> float | None:
    """Retry-After (seconds or HTTP date) or retry-after-ms from the error's response headers."""
    headers = _headers_of(exc)
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        raw = headers.get("retry-after")
    except Exception:
        return None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _kind_from_status(status: int | None) -> ErrorKind:
    if status is None:
        return "unknown"
    if status == 429:
        return "rate_limit"
    if status in (408,):
        return "timeout"
    if status >= 500:
        return "server"
    return {401: "auth", 403: "permission", 404: "not_found"}.get(status, "invalid_request")


def classify(exc: BaseException) -> tuple[ErrorKind, bool, float | None]:
    """(kind, retryable, retry_after_seconds) for openai / httpx / google-genai / langchain-core errors.

    A provider's own rule wins; the generic rules below cover the SDKs the providers share (the openai SDK
    serves local, gguf and openai; google-genai errors carry an HTTP `code`).
    """
    for provider in PROVIDERS.values():
        verdict = provider.classify(exc)
        if verdict is not None:
            return verdict
    after = retry_after_seconds(exc)
    text = " ".join(str(e) for e in _chain(exc))
    if any(isinstance(e, LCContextOverflowError) for e in _chain(exc)):
        return "context_overflow", False, None
    status = _status_of(exc)
    # Overflow first: servers send it as a generic 400/413/422 (or with no status at all).
    if (status is None or 400 <= status < 500) and status != 429 and is_context_overflow_text(text):
        return "context_overflow", False, None
    # langchain-core 1.7 model errors carry is_retryable; their class tells the kind.
    lc_kinds: list[tuple[type[ModelError], ErrorKind]] = [
        (ModelRateLimitError, "rate_limit"), (ModelTimeoutError, "timeout"),
        (ModelConnectionError, "connection"), (ModelAPIError, "server"),
        (ModelAuthenticationError, "auth"), (ModelPermissionDeniedError, "permission"),
        (ModelNotFoundError, "not_found"), (ModelInvalidRequestError, "invalid_request"),
    ]
    if isinstance(exc, ModelError):
        for cls, kind in lc_kinds:
            if isinstance(exc, cls):
                return kind, bool(getattr(exc, "is_retryable", kind in _RETRYABLE_KINDS)), after
    # Timeouts before connection errors: openai.APITimeoutError subclasses APIConnectionError.
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return "timeout", True, after
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError, ConnectionError)):
        return "connection", True, after
    kind = _kind_from_status(status)
    if kind == "unknown" and isinstance(exc, ModelError):
        return "unknown", bool(exc.is_retryable), after
    return kind, kind in _RETRYABLE_KINDS, after
