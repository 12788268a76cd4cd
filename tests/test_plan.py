"""`llmxmr plan`: the pure estimate (METHOD.md §5) and the command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmxmr import cli
from llmxmr.plan import (
    estimate,
    max_sections_within,
    merge_levels,
    minimum_calls,
    writing_cost,
)
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
    # Each call shows a cited paper's passages once for all its claims: about 55 % of 2 passages a pair.
    assert 494 * 2 * 160 * 0.5 < on.stages["verify"].prompt_tokens < 494 * 2 * 160, "each paper's passages once"
    # The run does the citation check whenever it is on, so the minimum budget reserves its calls (issue 16 §4).
    assert minimum_calls(resolve_settings({}), [3000] * 12) > minimum_calls(resolve_settings({"verify_citations": False}), [3000] * 12)


def test_default_mode_trims_the_outline_it_sends_and_merges_drafts_by_level() -> None:
    ref = estimate(resolve_settings({"mode": "reference", "model": BIG}), [3000] * 60, sections=38)
    d = estimate(resolve_settings({"max_blocks": 1, "model": BIG}), [3000] * 60, sections=38)
    for stage in ("digest", "feedback", "modify", "merge_suggestions"):
        per_ref = ref.stages[stage].prompt_tokens / ref.stages[stage].calls
        per_d = d.stages[stage].prompt_tokens / d.stages[stage].calls
        assert per_d < per_ref, stage
    # The default-mode judge sees the block's start outline in full, then the candidate's revision of it:
    # more tokens per call than reference mode's outline in full, and most of them cached.
    per_ref, per_d = (p.stages["judge"].prompt_tokens / p.stages["judge"].calls for p in (ref, d))
    assert per_ref < per_d < 1.5 * per_ref
    assert ref.stages["judge"].cached_tokens == 0
    assert d.stages["judge"].cached_tokens > 0.6 * d.stages["judge"].prompt_tokens
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


@pytest.mark.parametrize("mode", ["default", "reference"])
def test_plan_counts_the_group_calls_the_run_makes_for_5000_papers(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                    mode: str) -> None:
    # Issue 16 §8: `plan` said one 200k-token group call for 5,000 papers; the run makes batched calls.
    from langgraph.store.memory import InMemoryStore

    from llmxmr.models.caller import ModelCaller
    from llmxmr.nodes.group import group
    from llmxmr.nodes.model_calls import ModelCalls
    from llmxmr.nodes.step import Step
    from llmxmr.testing.fake_model import ScriptedChatModel

    titles = [f"Paper {i}: lock-free queues, work stealing and fair schedulers on {i % 64}-core machines"
              for i in range(5000)]
    corpus = tmp_path / "big.jsonl"
    corpus.write_text(json.dumps({"title": "Schedulers", "papers": [
        {"title": t, "txt": f"Text {i} of a paper on queues."} for i, t in enumerate(titles)]}) + "\n")
    flags = ["--model", BIG, "--mode", mode, "--set", "max_blocks=1"]
    assert cli.main(["plan", str(corpus), *flags]) == 0
    planned = int(re.search(r"│ group\s+│\s+(\d+) │", capsys.readouterr().out).group(1))

    settings = resolve_settings({"model": BIG, "mode": mode, "max_blocks": 1})
    store = InMemoryStore()
    calls = ModelCalls(ModelCaller(settings, store, models=ScriptedChatModel()), settings)
    refs = [{"paper_id": f"p{i}", "title": t} for i, t in enumerate(titles)]
    update = group({"paper_refs": refs, "title": "Schedulers"}, Step("r", store, settings, calls))
    made = update["usage"]["group"]["calls"]
    assert planned == made > 1
    if mode == "default":
        assert made >= 50  # at most 100 titles a call, within the input budget


def test_the_group_stage_is_planned_in_the_batches_the_run_makes() -> None:
    # Issue 16 §8: 5,000 papers are grouped in 50 calls of at most 100 titles (nodes/group.py), not one call.
    plan = estimate(resolve_settings({"max_blocks": 1, "model": "openai:gpt-4o-mini"}), [3000] * 5000)
    assert plan.stages["group"].calls == 50
    assert plan.stages["group"].prompt_tokens < 50 * 6000
    assert estimate(resolve_settings({"max_blocks": 1}), [3000] * 12).stages["group"].calls == 1


def test_the_sections_a_budget_can_write() -> None:
    settings = resolve_settings({"max_blocks": 1})
    papers = [1000] * 4
    assert max_sections_within(settings, papers, None, None) is None  # no budget, no cap
    fit = max_sections_within(settings, papers, 40, None)
    assert fit is not None and fit > 1
    assert writing_cost(settings, papers, fit)[0] <= 40 < writing_cost(settings, papers, fit + 1)[0]
    assert max_sections_within(settings, papers, 0, None) == 1  # an article needs a section, whatever is left
    tokens = writing_cost(settings, papers, 5, check=False)[1]  # under a token budget the check gives way
    assert max_sections_within(settings, papers, None, tokens) == 5
