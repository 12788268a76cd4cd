"""`ModelSpec`: a model string ("local", "gguf:/path", "openai:NAME", "google_genai:NAME") with its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmxmr.models.errors import ModelSetupError

Provider = Literal["local", "gguf", "openai", "google_genai"]
StructuredMethod = Literal["response_format", "google"]

VALID_FORMS = "'local' (bundled SmolLM2), 'gguf:/path/model.gguf', 'openai:MODEL' or 'google_genai:MODEL'"

# The embedded server splits n_ctx across its slots; these give each request LOCAL_SLOT_CTX tokens.
LOCAL_PARALLEL = 2
LOCAL_SLOT_CTX = 4096

_DEFAULTS: dict[str, tuple[int, int, float]] = {
    # provider: (context_window, max_output_tokens, request_timeout seconds)
    "local": (LOCAL_SLOT_CTX, 1024, 180.0),  # CPU model: long timeouts
    "gguf": (LOCAL_SLOT_CTX, 1024, 180.0),
    "openai": (128_000, 16_384, 120.0),  # a reference-mode outline rewrite alone is ~6.5k tokens
    "google_genai": (1_000_000, 8192, 120.0),
}


@dataclass(frozen=True)
class ModelSpec:
    raw: str
    provider: Provider
    name: str  # model name sent to the server; for gguf, the file path
    context_window: int
    max_output_tokens: int
    request_timeout: float

    @property
    def structured_method(self) -> StructuredMethod:
        return "google" if self.provider == "google_genai" else "response_format"

    @property
    def is_local(self) -> bool:
        return self.provider in ("local", "gguf")

    @classmethod
    def parse(cls, raw: str) -> ModelSpec:
        text = (raw or "").strip()
        if text == "local":
            provider, name = "local", "local"
        elif ":" in text:
            prefix, _, name = text.partition(":")
            provider = prefix.strip()
            name = name.strip()
            if provider not in ("gguf", "openai", "google_genai") or not name:
                raise ModelSetupError(f"unknown model {raw!r}; valid forms: {VALID_FORMS}")
        else:
            raise ModelSetupError(f"unknown model {raw!r}; valid forms: {VALID_FORMS}")
        if provider == "gguf" and not name.lower().endswith(".gguf"):
            raise ModelSetupError(f"model {raw!r}: a gguf model is a path to a .gguf file, e.g. gguf:/models/qwen2.5-7b-instruct-q4_k_m.gguf")
        window, max_out, timeout = _DEFAULTS[provider]
        return cls(raw=text, provider=provider, name=name, context_window=window,
                   max_output_tokens=max_out, request_timeout=timeout)  # type: ignore[arg-type]


def parse_spec(raw: str) -> ModelSpec:
    return ModelSpec.parse(raw)
