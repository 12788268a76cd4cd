"""Settings: mode defaults, role models, validation, --set parsing and resume overrides."""

from __future__ import annotations

import pytest

from llmxmr.state.context import (
    CONTEXT_FIELDS,
    Context,
    SettingsError,
    apply_overrides,
    context_help,
    parse_setting_value,
    resolve_settings,
)

ISSUE_FIELDS = ("model, base_url, reader_model, planner_model, judge_model, writer_model, group_size, "
                "skeleton_group_size, kernel_width, units, top_k, max_layers, max_blocks, refine_rounds, best_of, "
                "epsilon, patience, entropy_lambda, digest_input, charts, language, seed, max_concurrency, "
                "context_window, max_output_tokens, request_timeout").split(", ")


def test_every_documented_setting_exists_with_a_description() -> None:
    assert set(ISSUE_FIELDS) <= set(CONTEXT_FIELDS)
    assert all(desc for _, _, desc in context_help())


def test_reference_mode_takes_the_reference_knobs() -> None:
    s = resolve_settings(Context(mode="reference"))
    assert (s.group_size, s.kernel_width, s.units, s.top_k, s.max_layers, s.max_blocks) == (3, 3, 10, 6, 6, 1)
    assert (s.refine_rounds, s.best_of, s.entropy_lambda, s.digest_input, s.charts) == (3, 3, 1.0, "fulltext", True)


def test_explicit_knobs_win_over_mode_defaults() -> None:
    s = resolve_settings({"mode": "reference", "max_layers": 2, "charts": False})
    assert s.max_layers == 2 and s.charts is False and s.units == 10


def test_role_models_default_to_model() -> None:
    s = resolve_settings(Context(model="openai:m", judge_model="openai:j"))
    assert (s.reader_model, s.planner_model, s.judge_model, s.writer_model) == ("openai:m", "openai:m", "openai:j", "openai:m")


@pytest.mark.parametrize("bad, words", [
    ({"nope": 1}, "unknown setting(s) nope; valid names: mode, model"),
    ({"units": 0}, "units must be at least 1"),
    ({"entropy_lambda": 1.5}, "entropy_lambda must be within [0, 1]"),
    ({"digest_input": "pdf"}, "digest_input must be 'fulltext' or 'notes'"),
    ({"mode": "fast"}, "mode must be 'default' or 'reference'"),
])
def test_invalid_settings_are_named(bad: dict, words: str) -> None:
    with pytest.raises(SettingsError) as err:
        resolve_settings(bad)
    assert words in str(err.value)


def test_set_values_are_json_when_they_parse() -> None:
    assert parse_setting_value("3") == 3
    assert parse_setting_value("0.5") == 0.5
    assert parse_setting_value("true") is True
    assert parse_setting_value("openai:gpt-4.1") == "openai:gpt-4.1"


def test_resume_overrides_replace_inherited_role_models_only() -> None:
    s = resolve_settings(Context(model="openai:a", writer_model="openai:w"))
    new = apply_overrides(s, {"model": "openai:b", "base_url": "http://127.0.0.1:9/v1"})
    assert (new.reader_model, new.judge_model, new.writer_model) == ("openai:b", "openai:b", "openai:w")
    assert new.base_url == "http://127.0.0.1:9/v1"
    with pytest.raises(SettingsError, match="unknown setting"):
        apply_overrides(s, {"colour": "red"})


def test_the_verifier_follows_the_judge_unless_set_and_the_check_follows_the_mode():
    from llmxmr.state.context import Settings, apply_overrides

    s = resolve_settings({"model": "openai:a", "judge_model": "openai:j"})
    assert s.model_for("verifier") == "openai:j" and s.verify_citations is True
    assert resolve_settings({"mode": "reference"}).verify_citations is False
    assert resolve_settings({"verifier_model": "openai:v"}).model_for("verifier") == "openai:v"
    moved = apply_overrides(resolve_settings({"model": "openai:a"}), {"model": "openai:b"})
    assert moved.judge_model == moved.model_for("verifier") == "openai:b", "an inherited verifier follows a new model"
    kept = apply_overrides(resolve_settings({"model": "openai:a", "verifier_model": "openai:v"}), {"model": "openai:b"})
    assert kept.model_for("verifier") == "openai:v"
    old = {k: v for k, v in s.model_dump().items() if k not in ("verifier_model", "verify_citations")}
    assert Settings(**old).verify_citations is False, "settings saved before the check existed keep it off"
    with pytest.raises(SettingsError, match="verify_passages"):
        resolve_settings({"verify_passages": 0})
