"""`ModelSpec`: a model string ("local", "gguf:/path", "openai:NAME", "google_genai:NAME") with its defaults.

The forms and defaults belong to the providers (providers.py); this module only parses.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmxmr.models.errors import ModelSetupError
from llmxmr.models.providers import (  # noqa: F401 - LOCAL_* re-exported for their importers
    LOCAL_PARALLEL,
    LOCAL_SLOT_CTX,
    MODEL_FORMS,
    PROVIDERS,
    StructuredMethod,
    provider_of,
)

VALID_FORMS = MODEL_FORMS  # the older name


@dataclass(frozen=True)
class ModelSpec:
    raw: str
    provider: str  # a key of PROVIDERS
    name: str  # model name sent to the server; for gguf, the file path
    context_window: int
    max_output_tokens: int
    request_timeout: float

    @property
    def structured_method(self) -> StructuredMethod:
        return provider_of(self).structured_method

    @property
    def is_local(self) -> bool:
        return provider_of(self).is_local

    @property
    def supports_logprobs(self) -> bool:
        return provider_of(self).logprobs

    @classmethod
    def parse(cls, raw: str) -> ModelSpec:
        text = (raw or "").strip()
        prefix, colon, rest = text.partition(":")
        provider = PROVIDERS.get(prefix.strip())
        name = provider.model_name(rest if colon else None) if provider else None
        if provider is None or not name:
            raise ModelSetupError(f"unknown model {raw!r}; valid forms: {MODEL_FORMS}")
        provider.check_name(raw, name)
        return cls(raw=text, provider=provider.name, name=name, context_window=provider.context_window,
                   max_output_tokens=provider.max_output_tokens, request_timeout=provider.request_timeout)


def parse_spec(raw: str) -> ModelSpec:
    return ModelSpec.parse(raw)
