"""Build LangChain chat models from specs: ChatOpenAI (OpenAI, OpenAI-compatible servers, the embedded
llama.cpp server) and ChatGoogleGenerativeAI. SDK retries are off: caller.py owns retries."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import httpx
from langchain_core.language_models import BaseChatModel

from llmxmr.models.errors import ModelSetupError, ProviderError
from llmxmr.models.local_server import bundled_weights_path, local_base_url, slot_context
from llmxmr.models.specs import LOCAL_PARALLEL, LOCAL_SLOT_CTX, ModelSpec
from llmxmr.state.context import Settings

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"


def _local_slot_ctx(settings: Settings) -> int:
    return settings.context_window or LOCAL_SLOT_CTX


def effective_spec(spec: ModelSpec, settings: Settings) -> ModelSpec:
    """The spec with the run's explicit overrides (context window, output cap, timeout) applied."""
    if spec.is_local:
        # A server already running for this file keeps the per-slot context it was started with.
        running = slot_context(model_path(spec)) if spec.provider == "gguf" or _weights_installed() else None
        window = running or _local_slot_ctx(settings)
    else:
        window = settings.context_window or spec.context_window
    return dataclasses.replace(
        spec,
        context_window=window,
        max_output_tokens=settings.max_output_tokens or spec.max_output_tokens,
        request_timeout=settings.request_timeout or spec.request_timeout,
    )


def _weights_installed() -> bool:
    try:
        bundled_weights_path()
    except ModelSetupError:
        return False
    return True


def model_path(spec: ModelSpec) -> Path:
    return bundled_weights_path() if spec.provider == "local" else Path(spec.name).expanduser()


def make_chat_model(spec: ModelSpec, *, settings: Settings) -> BaseChatModel:
    spec = effective_spec(spec, settings)
    if spec.is_local:
        return _local_model(spec, settings)
    if spec.provider == "openai":
        return _openai_model(spec, settings)
    if spec.provider == "google_genai":
        return _google_model(spec)
    raise ModelSetupError(f"no factory for provider {spec.provider!r}")


LOCAL_FREQUENCY_PENALTY = 0.5


def _local_model(spec: ModelSpec, settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    path = model_path(spec)
    slot = _local_slot_ctx(settings)
    # n_ctx is split across the slots: give each parallel request the full per-call window.
    base_url = local_base_url(path, n_ctx=slot * LOCAL_PARALLEL, n_parallel=LOCAL_PARALLEL,
                              threads=max(1, os.cpu_count() or 1))
    # The bundled 135M model loops on its own phrases until the token limit; a frequency penalty ends its
    # answers (measured: a section went from a 300-token loop to 21 tokens). Other GGUF models keep defaults.
    penalty = {"frequency_penalty": LOCAL_FREQUENCY_PENALTY} if spec.provider == "local" else {}
    return ChatOpenAI(model=path.stem, base_url=base_url, api_key="not-needed", max_retries=0,
                      timeout=spec.request_timeout, use_responses_api=False, **penalty)


def _openai_model(spec: ModelSpec, settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    key = os.environ.get("OPENAI_API_KEY")
    if not key and not settings.base_url:
        raise ModelSetupError(
            f"model {spec.raw!r} needs an API key: set OPENAI_API_KEY, or set base_url to an "
            "OpenAI-compatible server (vLLM, Ollama, LM Studio)"
        )
    return ChatOpenAI(model=spec.name, base_url=settings.base_url, api_key=key or "not-needed", max_retries=0,
                      timeout=spec.request_timeout, use_responses_api=False)


def _google_model(spec: ModelSpec) -> BaseChatModel:
    key = os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
    if not key:
        raise ModelSetupError(f"model {spec.raw!r} needs an API key: set GOOGLE_API_KEY")
    try:
        from langchain_google_genai import ChatGoogleGenerativeAI
    except ImportError as exc:
        raise ModelSetupError("google_genai models need `pip install langchain-google-genai`") from exc
    # max_retries=1 means one attempt: the google SDK reads 0 as "use its default" (6).
    return ChatGoogleGenerativeAI(model=spec.name, google_api_key=key, max_retries=1, timeout=spec.request_timeout)


def check_model_exists(spec: ModelSpec, settings: Settings) -> None:
    """Fail early when an OpenAI-compatible server lists its models and ours is not among them."""
    if spec.provider != "openai":
        return  # the embedded server answers any name; google's listing needs its SDK: skip
    base = (settings.base_url or OPENAI_DEFAULT_BASE).rstrip("/")
    key = os.environ.get("OPENAI_API_KEY") or "not-needed"
    try:
        resp = httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"}, timeout=10.0)
        if resp.status_code != 200:
            return
        names = [m.get("id") for m in resp.json().get("data", []) if isinstance(m, dict)]
    except Exception:  # listing unsupported or unreachable: the first real call will tell
        return
    if names and spec.name not in names:
        shown = ", ".join(sorted(str(n) for n in names)[:30])
        raise ProviderError(
            f"model {spec.name!r} is not served at {base}; available: {shown}. "
            f"Fix: pass one of these as --model openai:NAME",
            status=404,
        )
