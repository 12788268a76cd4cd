"""The benchmark harness runs end to end in --quick mode (tiny corpus, zero latency) and writes its figures.

No timing assertions: this only keeps bench/ from rotting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_stub_handler_disables_nagle():
    from llmxmr.testing.openai_stub import StubOpenAIServer, _make_handler

    assert _make_handler(StubOpenAIServer()).disable_nagle_algorithm is True


def test_corpus_is_deterministic(tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench.corpus import corpus_tokens, write_corpus

    a = write_corpus(tmp_path / "a.jsonl", 3, 300, seed=1)
    b = write_corpus(tmp_path / "b.jsonl", 3, 300, seed=1)
    assert a.read_bytes() == b.read_bytes()
    survey = json.loads(a.read_text())
    assert len(survey["papers"]) == 3 and all(p["txt"] and p["title"] for p in survey["papers"])
    assert 600 <= corpus_tokens(a) <= 1000


@pytest.mark.timeout(300)
def test_quick_benchmark_writes_figures(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for mode in ("reference", "default"):
        summary = results["overhead"]["modes"][mode]
        run = summary["run"]
        assert run["log"]["calls"] > 0
        assert run["task_calls"] == run["log"]["calls"]  # every request is attributed to a task
        assert run["critical_path"]["bound"] > 0
        assert run["usage"]["write_section"]["calls"] >= 1
        assert run["stop_reason"]
    overhead = results["overhead"]
    assert overhead["unit"] == "chars4" and 0 < overhead["corpus_o200k"] != overhead["corpus_chars4"] > 0
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "Framework overhead" in text and "Calls and tokens per stage" in text
    # Every figure names its unit: the corpus in characters ÷ 4 (with o200k), per-stage tokens in both.
    assert f"3 papers × 400 tokens in characters ÷ 4, the reference's unit (the corpus: {overhead['corpus_chars4']:,}" in text
    assert "| prompt o200k | prompt chars ÷ 4 |" in text and "in characters ÷ 4." in text


@pytest.mark.timeout(300)
def test_render_of_results_kept_elsewhere_writes_beside_them_not_into_the_repository(tmp_path):
    repo_md = (ROOT / "BENCHMARKS.md").read_bytes()
    (tmp_path / "results.json").write_text(json.dumps({"machine": {"commit": "x", "date": "d"}}))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--render", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "BENCHMARKS.md").is_file()
    assert (ROOT / "BENCHMARKS.md").read_bytes() == repo_md


def test_one_big_document_scenario_runs_at_a_small_size(tmp_path):
    # bench/bigdoc.py measures plan and a run on one 200 MB document; here 0.3 MB, in several chunks.
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bigdoc.py"), "--mb", "0.3", "--work", str(tmp_path),
                           "--context-window", "8192"], capture_output=True, text=True, timeout=280, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["document_bytes"] >= 300_000
    for part in ("plan", "run"):
        assert result[part]["exit"] in (0, 3) and result[part]["peak_rss_mb"] > 0
    assert result["run"]["calls"] > 10  # the document was mapped in many chunks


@pytest.mark.timeout(300)
def test_scale_out_bench_runs_at_a_small_size(tmp_path):
    """bench/scale_out.py (issue 12's figures) in --quick mode, its cheapest part: the growth check."""
    out = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "scale_out.py"), "--quick", "--only", "ten",
                           "--out", str(out)], capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ten = json.loads(out.read_text())["ten"]
    assert ten["40"]["calls"] > ten["4"]["calls"] > 0
    assert ten["40"]["stop_reason"] and ten["ratios"]["max_prompt"]


def test_update_scenario_counts_an_update_against_a_fresh_run():
    sys.path.insert(0, str(ROOT))
    from bench.update import measure, table

    r = measure(4, 200, 1, {"max_blocks": 1, "max_layers": 0, "units": 1, "refine_rounds": 0, "best_of": 1})
    assert r["never"]["calls"] < r["fresh"]["calls"] and r["never"]["per_stage"]["digest"] == 1
    assert r["never"]["rewritten"] + r["never"]["kept"] == r["sections"]
    assert "| update, `refine=auto` |" in table(r)


def test_the_benchmarked_demo_runs_the_settings_of_scripts_demo_sh():
    import re

    sys.path.insert(0, str(ROOT))
    from bench.config import DEMO_SET

    script = (ROOT / "scripts" / "demo.sh").read_text()
    flags = dict(re.findall(r"--set (\w+)=(\S+)", script))
    assert flags == {key: str(value) for key, value in DEMO_SET.items()}
