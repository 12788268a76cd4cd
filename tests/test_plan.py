"""`llmxmr plan`: the pure estimate (METHOD.md §5) and the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmxmr import cli
from llmxmr.plan import estimate, merge_levels, minimum_calls
from llmxmr.state.context import resolve_settings

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
BIG = "openai:gpt-4.1-mini"  # a 128k-token window, as the reference's measurements had (the local model: 8k)


@pytest.mark.parametrize(("n", "calls"), [(12, 325), (60, 474), (150, 775)])
def test_reference_call_estimate_matches_method_section_5(n: int, calls: int) -> None:
    plan = estimate(resolve_settings({"mode": "reference", "model": BIG}), [3000] * n, sections=38)
    assert plan.blocks == 1
    assert plan.calls == calls


def test_reference_first_layer_pools_for_150_papers() -> None:
    plan = estimate(resolve_settings({"mode": "reference"}), [3000] * 150, sections=38)
    assert plan.stages["merge_suggestions"].calls == 17 + 5 * 10  # 17 pooling units, then 5 sampling layers


def test_default_mode_adds_map_reduce_and_rescoring() -> None:
    ref = estimate(resolve_settings({"mode": "reference", "max_blocks": 1}), [3000] * 12, sections=38)
    d = estimate(resolve_settings({"max_blocks": 1, "charts": True, "verify_citations": False}), [3000] * 12,
                 [2] * 6 + [1] * 6, sections=38)
    assert d.stages["map"].calls == 18 and d.stages["reduce_notes"].calls == 6
    assert d.stages["judge"].calls == ref.stages["judge"].calls + 2
    assert d.calls == ref.calls + 18 + 6 + 2


def test_the_citation_check_is_planned_in_default_mode_only() -> None:
    on = estimate(resolve_settings({"max_blocks": 1}), [3000] * 12, sections=38)
    off = estimate(resolve_settings({"max_blocks": 1, "verify_citations": False}), [3000] * 12, sections=38)
    ref = estimate(resolve_settings({"mode": "reference"}), [3000] * 12, sections=38)
    assert "verify" not in off.stages and "verify" not in ref.stages and "repair" not in ref.stages
    # Per section ~10 cited claims of ~1.3 citations each (494 pairs at S = 38), 20 % checked again, half the
    # sections repaired: batched into one round of max_concurrency (8) calls each.
    assert on.stages["verify"].calls == 8 + 8 and on.stages["repair"].calls == 8
    assert on.calls == off.calls + 16 + 8
    assert on.stages["verify"].prompt_tokens > 494 * 2 * 160, "every pair's passages are in a prompt"
    # The run does the citation check whenever it is on, so the minimum budget reserves its calls (issue 16 §4).
    assert minimum_calls(resolve_settings({}), [3000] * 12) > minimum_calls(resolve_settings({"verify_citations": False}), [3000] * 12)


def test_default_mode_trims_the_outline_it_sends_and_merges_drafts_by_level() -> None:
    ref = estimate(resolve_settings({"mode": "reference", "model": BIG}), [3000] * 60, sections=38)
    d = estimate(resolve_settings({"max_blocks": 1, "model": BIG}), [3000] * 60, sections=38)
    for stage in ("digest", "feedback", "modify", "merge_suggestions"):
        per_ref = ref.stages[stage].prompt_tokens / ref.stages[stage].calls
        per_d = d.stages[stage].prompt_tokens / d.stages[stage].calls
        assert per_d < per_ref, stage
    assert d.stages["judge"].prompt_tokens / d.stages["judge"].calls == pytest.approx(
        ref.stages["judge"].prompt_tokens / ref.stages["judge"].calls), "the judge sees the whole outline"
    assert merge_levels(28, 2300, resolve_settings({"model": BIG})) == [4, 1]  # 8 drafts per call, then one merge
    assert merge_levels(28, 2300, resolve_settings({"mode": "reference", "model": BIG})) == [1]  # all in one call
    assert merge_levels(1, 2300, resolve_settings({"model": BIG})) == [1], "always one merge call"
    assert merge_levels(7, 2300, resolve_settings({"mode": "reference"})) == [4, 2, 1], "8k local window: pairs"
    big = estimate(resolve_settings({"model": BIG}), [3000] * 250, sections=38)
    assert big.stages["merge_skeleton"].calls == 4 + 1 and big.stages["skeleton"].calls == 28


def test_money_and_minimum() -> None:
    plan = estimate(resolve_settings({}), [1000] * 4)
    assert plan.cost(1.0, 0.0) == pytest.approx(plan.prompt_tokens / 1e6)
    assert plan.cost(0.0, 2.0) == pytest.approx(2 * plan.completion_tokens / 1e6)
    assert 0 < minimum_calls(resolve_settings({}), [1000] * 4) < plan.calls


def test_plan_command_prints_stages_and_money(capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["plan", str(CORPUS), "--set", "max_blocks=1", "--price-in", "0.15", "--price-out", "0.6"])
    err = capsys.readouterr().out  # the plan is the output: stdout
    assert code == 0
    for word in ("map", "digest", "judge", "write_section", "total", "$", "4 papers"):
        assert word in err


def test_the_group_stage_is_planned_in_the_batches_the_run_makes() -> None:
    # Issue 16 §8: 5,000 papers are grouped in 50 calls of at most 100 titles (nodes/group.py), not one call.
    plan = estimate(resolve_settings({"max_blocks": 1, "model": "openai:gpt-4o-mini"}), [3000] * 5000)
    assert plan.stages["group"].calls == 50
    assert plan.stages["group"].prompt_tokens < 50 * 6000
    assert estimate(resolve_settings({"max_blocks": 1}), [3000] * 12).stages["group"].calls == 1
