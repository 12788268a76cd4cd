"""Reference mode reproduces METHOD.md §5's per-stage call counts (calls + responses replayed from the
durable record), for full and short last groups, pooling layers, and the measured 325 for N = 12, S = 38."""

from __future__ import annotations

import json

import pytest
from graph_helpers import (
    article_problems, layer_records, n_sections, outline_draft, papers, records, reference_counts, run, stage_totals,
)

from llmxmr.testing.fake_model import ScriptedChatModel
from llmxmr.testing.responder import Responder

# A window large enough that the single merge call and untruncated digests of §5 apply.
WIDE = dict(mode="reference", context_window=32768)


def check_counts(out, n: int, **knobs) -> dict[str, int]:
    expected = reference_counts(n, n_sections(out), **knobs)
    got = stage_totals(out)
    assert got == expected  # per stage, not only the total
    return expected


@pytest.mark.parametrize("n", [12, 7])
def test_reference_counts_match_the_cost_model(n):
    model = ScriptedChatModel(responder=Responder(sections_per_outline=4, subsections=2))
    out = run(model, papers(n), **WIDE)
    check_counts(out, n)
    layers = layer_records(out)
    groups = -(-n // 3)
    assert [r["parts"]["units"] for r in layers] == [groups] + [10] * 6  # layer 0 + 6 sampling layers
    assert [r["parts"]["plan"] for r in layers][1:] == ["sampling"] * 6
    assert len(records(out, "refine")) == 3
    assert out["report"]["stop_reason"] == "max_blocks reached (1)"
    # the only recorded problems are citations of papers outside a section's evidence, removed
    assert {f["kind"] for f in out["report"]["failures"]} <= {"citation"}
    assert article_problems(out) == []


def test_reference_first_layer_pools_when_W_exceeds_units_kernels():
    # N = 40: G = 14 feedbacks; with units = 2, 14 / 3 > 2 so layer 1 pools into ceil(14 / 3) = 5 units
    n = 40
    model = ScriptedChatModel(responder=Responder(sections_per_outline=3, subsections=2))
    out = run(model, papers(n, words=40), units=2, **WIDE)
    check_counts(out, n, units=2)
    layers = layer_records(out)
    assert layers[1]["parts"]["plan"] == "pooling" and layers[1]["parts"]["units"] == 5
    # after pooling, W is the 5 new results: 5 / 3 <= 2, so sampling with `units` units
    assert [r["parts"]["plan"] for r in layers[2:]] == ["sampling"] * 5
    assert [r["parts"]["units"] for r in layers[2:]] == [2] * 5
    assert article_problems(out) == []


def test_reference_pooling_recurs_when_W_grows_back():
    # N = 12, units = 1: W = 4 > 1 kernel pools (chunks of 3 and 1: one merge skipped), W shrinks to 2,
    # sampling adds one result per layer until W/3 > 1 again
    n = 12
    model = ScriptedChatModel()
    out = run(model, papers(n), units=1, **WIDE)
    expected = check_counts(out, n, units=1)
    plans = [r["parts"]["plan"] for r in layer_records(out)]
    assert plans == ["layer0", "pooling", "sampling", "sampling", "pooling", "sampling", "sampling"]
    assert expected["merge_suggestions"] < expected["modify"] - 4 - 9  # some units had a group of one
    assert article_problems(out) == []


def test_reference_325_calls_for_12_papers_and_38_sections():
    # 8 chapters: 6 with 4 subsections and 2 with 3 = 8 + 30 = 38 non-root sections
    fixed = json.dumps(outline_draft([4] * 6 + [3] * 2))
    overrides = {stage: (lambda messages, n: fixed) for stage in ("skeleton", "merge_skeleton", "modify")}
    model = ScriptedChatModel(overrides=overrides)
    out = run(model, papers(12), **WIDE)
    assert n_sections(out) == 38
    expected = check_counts(out, 12)
    assert sum(expected.values()) == 325
    assert expected == {"group": 1, "skeleton": 2, "merge_skeleton": 1, "digest": 24, "feedback": 4, "judge": 74,
                        "modify": 73, "merge_suggestions": 60, "critique": 9, "write_section": 38, "polish": 38,
                        "charts": 1}
    # identical judge requests are answered from the durable record, not paid twice
    usage = out["report"]["usage"]
    assert usage["judge"]["cached"] > 0
    assert model.calls["judge"] == usage["judge"]["calls"] < 74
    assert out["report"]["failures"] == []
    assert article_problems(out) == []
