"""Build LangChain chat models from specs; each provider (providers.py) builds its own client. SDK retries
are off: caller.py owns retries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from llmxmr.models.providers import EmbeddedServer, provider_of
from llmxmr.models.specs import ModelSpec
from llmxmr.state.context import Settings


def effective_spec(spec: ModelSpec, settings: Settings) -> ModelSpec:
    """The spec with the run's explicit overrides (context window, output cap, timeout) applied."""
    return dataclasses.replace(
        spec,
        context_window=provider_of(spec).context_window_for(spec, settings),
        max_output_tokens=settings.max_output_tokens or spec.max_output_tokens,
        request_timeout=settings.request_timeout or spec.request_timeout,
    )


def model_path(spec: ModelSpec) -> Path:
    """The .gguf file of a spec the embedded server runs."""
    provider = provider_of(spec)
    return provider.model_path(spec) if isinstance(provider, EmbeddedServer) else Path(spec.name).expanduser()


def make_chat_model(spec: ModelSpec, *, settings: Settings) -> BaseChatModel:
    spec = effective_spec(spec, settings)
    return provider_of(spec).make_client(spec, settings)


def check_model_exists(spec: ModelSpec, settings: Settings) -> None:
    """Fail early when the provider can tell that the model is not served (an OpenAI-compatible listing)."""
    provider_of(spec).check_model_exists(spec, settings)
