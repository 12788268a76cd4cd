"""`llmxmr plan`'s prompt estimate per call, against a run of the benchmark mock, whose answers are
calibrated to the reference implementation's measured answer lengths (bench/mock.py): the outline, the map
notes and the judge's prompt are what a real run sends, so an estimate far below them would let a budget
pass that the run then overspends."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import write_corpus
from bench.mock import BenchMock
from llmxmr import cli
from llmxmr.state.context import resolve_settings

pytestmark = pytest.mark.usefixtures("offline_env")


def test_plan_estimates_the_prompt_of_each_outline_stage_within_a_third_of_a_calibrated_run(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    corpus = write_corpus(tmp_path / "corpus.jsonl", 12, 3000, unit="chars4")
    sets = ["max_blocks=1", "max_layers=1", "units=3", "refine_rounds=1"]
    with BenchMock() as mock:
        code = cli.main(["run", str(corpus), "-o", str(tmp_path / "out"), "--model", "openai:scripted",
                         "--base-url", mock.base_url, "-q", *[a for s in sets for a in ("--set", s)]])
        log = list(mock.log)
    assert code in (0, 3)
    measured: dict[str, list[int]] = defaultdict(list)
    for e in log:
        measured[e["stage"]].append(e["prompt_tokens"])
    sections = 38  # the calibrated mock's outlines (bench/mock.py DEFAULT_SHAPE)
    settings = resolve_settings({"model": "openai:scripted", **{k: int(v) for k, v in (s.split("=") for s in sets)}})
    (_, plan, *_), = cli.corpus_plans(corpus, settings, sections=sections)
    for stage in ("digest", "feedback", "judge", "critique"):
        per_call = sum(measured[stage]) / len(measured[stage])
        estimate = plan.stages[stage].prompt_tokens / plan.stages[stage].calls
        assert 2 / 3 * per_call <= estimate <= 1.5 * per_call, (stage, round(estimate), round(per_call))
