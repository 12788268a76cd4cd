"""The provider registry: parsing, defaults, logprob support and per-provider binding (no network)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from llmxmr.models.errors import ModelSetupError, classify
from llmxmr.models.providers import (
    MODEL_FORMS,
    PROVIDERS,
    TOP_LOGPROBS,
    bind_for,
    provider_of,
)
from llmxmr.models.specs import ModelSpec
from llmxmr.state.context import resolve_settings

# (context_window, max_output_tokens, request_timeout, is_local, logprobs); a new provider must be added here.
EXPECTED = {
    "local": (4096, 1024, 180.0, True, True),
    "gguf": (4096, 1024, 180.0, True, True),
    "openai": (128_000, 16_384, 120.0, False, True),
    "google_genai": (1_000_000, 8192, 120.0, False, False),
}


class Verdict(BaseModel):
    score: int


def test_registry_lists_every_provider_in_help_order() -> None:
    assert list(PROVIDERS) == list(EXPECTED)
    assert MODEL_FORMS == ("'local' (bundled SmolLM2), 'gguf:/path/model.gguf', 'openai:MODEL' or "
                           "'google_genai:MODEL'")


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_each_advertised_form_parses_with_the_providers_defaults(name: str) -> None:
    provider = PROVIDERS[name]
    example = provider.form.split("'")[1]  # "'gguf:/path/model.gguf'" -> gguf:/path/model.gguf
    spec = ModelSpec.parse(example)
    assert spec.provider == name and provider_of(spec) is provider is provider_of(name)
    window, max_out, timeout, local, logprobs = EXPECTED[name]
    assert (spec.context_window, spec.max_output_tokens, spec.request_timeout) == (window, max_out, timeout)
    assert (spec.is_local, spec.supports_logprobs) == (local, logprobs) == (provider.is_local, provider.logprobs)
    # The entropy node asks for logprobs exactly where the response_format binding is used.
    assert (spec.structured_method == "response_format") == logprobs


@pytest.mark.parametrize("raw", ["anthropic:claude", "local:x", "openai", ""])
def test_unknown_forms_list_model_forms(raw: str) -> None:
    with pytest.raises(ModelSetupError) as info:
        ModelSpec.parse(raw)
    assert MODEL_FORMS in str(info.value)
    with pytest.raises(ModelSetupError, match="valid forms"):
        provider_of("anthropic")


def _chat_openai(**kw):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="m", base_url="http://127.0.0.1:9/v1", api_key="x", use_responses_api=False, **kw)


def test_chat_openai_gets_response_format_in_extra_body_and_logprobs() -> None:
    bound = bind_for(_chat_openai(extra_body={"keep": 1}), schema=Verdict, max_tokens=100, temperature=0.3,
                     logprobs=True)
    assert bound.kwargs == {
        "max_tokens": 100, "temperature": 0.3, "logprobs": True, "top_logprobs": TOP_LOGPROBS,
        "extra_body": {"keep": 1, "response_format": {"type": "json_schema", "json_schema": {
            "name": "Verdict", "schema": Verdict.model_json_schema(), "strict": False}}},
    }
    plain = bind_for(_chat_openai(), schema=None, max_tokens=50, temperature=0.0, logprobs=False)
    assert plain.kwargs == {"max_tokens": 50, "temperature": 0.0}


def test_google_gets_native_json_schema_and_no_logprobs() -> None:
    from langchain_google_genai import ChatGoogleGenerativeAI

    model = ChatGoogleGenerativeAI(model="gemini-x", google_api_key="dummy")
    bound = bind_for(model, schema=Verdict, max_tokens=100, temperature=0.0, logprobs=True)
    assert bound.kwargs == {"max_output_tokens": 100, "temperature": 0.0, "response_mime_type": "application/json",
                            "response_json_schema": Verdict.model_json_schema()}


def test_models_no_provider_owns_come_back_unbound() -> None:
    from llmxmr.testing.fake_model import ScriptedChatModel

    fake = ScriptedChatModel()
    assert bind_for(fake, schema=Verdict, max_tokens=10, temperature=0.0, logprobs=True) is fake


def test_a_providers_own_classification_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = ValueError("an SDK error only google knows")
    assert classify(exc) == ("unknown", False, None)
    monkeypatch.setattr(PROVIDERS["google_genai"], "classify",
                        lambda e: ("rate_limit", True, 2.0) if e is exc else None)
    assert classify(exc) == ("rate_limit", True, 2.0)
    assert classify(ValueError("other")) == ("unknown", False, None)


def test_preflight_of_a_missing_gguf_file_names_it_before_any_call(tmp_path, capsys):
    from llmxmr import cli

    spec = ModelSpec.parse("gguf:/nowhere/model.gguf")
    with pytest.raises(ModelSetupError, match="no such file /nowhere/model.gguf"):
        provider_of(spec).preflight(spec, resolve_settings({}))
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"title": "T", "papers": [{"title": "A", "txt": "Some text."}]}\n')
    code = cli.main(["run", str(corpus), "-o", str(tmp_path / "out"), "--model", "gguf:/nowhere/model.gguf", "-q"])
    assert code == 2 and "no such file /nowhere/model.gguf" in capsys.readouterr().err
