"""`llmxmr eval` with a judge: the scripted model rates an article of ours and a hand-written foreign one,
K passes give intervals, the judge's identity and instructions are recorded, faithfulness checks cited claims
against their sources, and an interrupted eval resumes without judging any item twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graph_helpers import our_run_on_disk, papers

from llmxmr.eval.command import run_eval
from llmxmr.eval.judge import JUDGE_METRICS
from llmxmr.prompts.evaluate import prompt_hashes
from llmxmr.state.context import Context
from llmxmr.testing.fake_model import ScriptedChatModel


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    corpus = papers(6)
    ours, corpus_path = our_run_on_disk(tmp_path, corpus)
    foreign = tmp_path / "other.md"
    foreign.write_text(
        "# Other survey\n\n## Methods\n\nBody of paper 0 about topic 0 is summarised here with care [1].\n"
        "Paper 1 is described here without any support in its text [2].\n\n"
        f"## References\n\n[1] {corpus[0]['title']}\n[2] {corpus[1]['title']}\n")
    return {"articles": [str(ours), str(foreign)], "corpus_path": str(corpus_path), "names": ["ours", "other"],
            "judge": True, "seeds": 2, "seed": 0}


def faithful_verifier(messages, n):
    """Supported when the claim's words 'Body of paper 0' appear in the passages: only the first claim."""
    text = messages[-1].content
    verdicts = []
    for k, block in enumerate(text.split("Claim ")[1:], 1):
        verdicts.append({"claim": k, "passage": 1, "reason": "scripted",
                         "verdict": 2 if "Body of paper 0" in block.split("<document", 1)[0] else 0})
    return json.dumps({"verdicts": verdicts})


def test_a_judge_rates_both_systems_with_intervals_and_is_recorded(inputs, tmp_path: Path):
    model = ScriptedChatModel(overrides={"verify": faithful_verifier})
    values = run_eval(inputs, Context(model="openai:judge-x", base_url="http://127.0.0.1:9/v1"), tmp_path / "ev",
                      models=model)
    result = values["result"]
    assert [m["key"] for m in result["metrics"]][:len(JUDGE_METRICS)] == JUDGE_METRICS
    ours, other = result["systems"]
    for s in (ours, other):
        for m in ("structure", "relevance", "language", "criticalness"):
            est = s["metrics"][m]
            assert 0 <= est["low"] <= est["mean"] <= est["high"] <= 10, (s["system"], m)
        assert s["metrics"]["structure"]["n"] == 2, "one rating per pass"
    # The foreign article's two claims, judged twice: the first supported, the second not.
    assert other["metrics"]["faithfulness"]["mean"] == 0.5 and other["metrics"]["faithfulness"]["n"] == 4
    judge = result["judge"]
    assert judge["model"] == "openai:judge-x" and judge["prompt_hashes"] == prompt_hashes()
    # Per system and pass: 2 article ratings, 2 ratings and 1 claim list per section, 1 faithfulness batch.
    sections = [s["metrics"]["language"]["n"] // 2 for s in (ours, other)]  # one rating per section and pass
    expected = sum(2 * (2 + 3 * n + 1) for n in sections)
    assert judge["calls"] + judge["cached"] == expected
    assert judge["reported_models"] == [], "the injected fake model reports no name"
    assert ours["metrics"]["density"]["n"] == 2 and ours["metrics"]["density"]["mean"] > 0, "one density per pass"
    assert judge["calls"] == sum(1 for stage, _ in model.log if stage in ("eval_judge", "eval_claims", "verify"))
    assert "| judge: faithfulness | higher |" in values["table"]


def test_an_interrupted_eval_resumes_without_judging_an_item_twice(inputs, tmp_path: Path):
    from llmxmr.models.errors import ProviderError

    def broken(messages, n):
        if n >= 5:
            raise RuntimeError("server went away")
        return None

    first = ScriptedChatModel(overrides={"eval_judge": broken})
    with pytest.raises(ProviderError):
        run_eval(inputs, Context(model="openai:j", base_url="http://127.0.0.1:9/v1"), tmp_path / "ev", models=first)
    second = ScriptedChatModel()
    values = run_eval(inputs, Context(model="openai:j", base_url="http://127.0.0.1:9/v1"), tmp_path / "ev",
                      models=second)
    judged = [s for s, _ in first.log + second.log if s == "eval_judge"]
    n_items = sum(s["metrics"][m]["n"] for s in values["result"]["systems"]
                  for m in ("structure", "relevance", "language", "criticalness"))
    assert 5 <= len([s for s, _ in first.log if s == "eval_judge"]) < n_items, "the first run stopped midway"
    assert len(judged) == n_items, "every judged item answered exactly once across the two runs"


def test_the_cli_judges_over_http_and_a_repeated_eval_pays_nothing(inputs, tmp_path: Path, monkeypatch):
    from llmxmr import cli
    from llmxmr.testing.scripted_server import scripted_server

    monkeypatch.setenv("OPENAI_API_KEY", "x")
    cmd = ["eval", *inputs["articles"], "--corpus", inputs["corpus_path"], "-o", str(tmp_path / "ev"),
           "--judge-model", "openai:scripted", "--seeds", "1", "--price-in", "1", "--price-out", "2"]
    with scripted_server() as server:
        assert cli.main([*cmd, "--base-url", server.base_url]) == 0
        first = len(server.chat_requests)
        verifies = [r["body"] for r in server.chat_requests if r["body"]["messages"][0]["content"].startswith("Task: verify")]
        assert verifies
        for body in verifies:  # faithfulness: only the claims it was shown
            claims = body["messages"][1]["content"].count("\nClaim ") + body["messages"][1]["content"].startswith("Claim ")
            verdict = body["response_format"]["json_schema"]["schema"]["$defs"]["Verdict"]["properties"]
            assert claims and verdict["claim"]["maximum"] == claims
        result = json.loads((tmp_path / "ev" / "eval.json").read_text())
        assert result["judge"]["model"] == "openai:scripted" and result["judge"]["calls"] == first
        assert result["judge"]["cost"] > 0
        assert result["judge"]["reported_models"] == ["scripted"], "the model name the server reported"
        structure = result["systems"][0]["metrics"]["structure"]
        assert structure["n"] == 1 and 0 <= structure["mean"] <= 10
        assert cli.main([*cmd, "--base-url", server.base_url]) == 0
        assert len(server.chat_requests) == first, "every judge answer is replayed from EVALDIR/eval.sqlite"
    assert "judge: structure" in (tmp_path / "ev" / "eval.md").read_text()


def test_our_runs_get_each_blocks_outline_rated(inputs, tmp_path: Path):
    ours = Path(inputs["articles"][0])
    for block in (0, 1):  # what the CLI writes to OUTDIR as a run goes
        (ours / f"outline-b{block}.md").write_text(f"# T\n\n## Theme {block}\n\n### Part {block}\n")
    judge = {0: 3, 1: 8}

    def rate(messages, n):
        text = messages[-1].content
        for block, score in judge.items():
            if f"the outline after block {block}" in text:
                return json.dumps({"rationale": "scripted", "score": score})
        return None

    values = run_eval({**inputs, "seeds": 1}, Context(model="openai:j", base_url="http://127.0.0.1:9/v1"), tmp_path / "ev",
                      models=ScriptedChatModel(overrides={"eval_judge": rate}))
    stages = values["result"]["systems"][0]["stages"]
    rated = {r["block"]: r["judge_structure"] for r in stages}
    assert rated[0] == pytest.approx(3 * 10 / 9) and rated.get(1) in (None, pytest.approx(8 * 10 / 9))
    assert "| judge |" in values["table"]


def test_claim_precision_citation_precision_and_numeric_claims_from_one_set_of_verdicts():
    from llmxmr.eval.judge import values_by_metric

    def verdict(claim: str, value: float) -> dict:
        return {"section": 0, "claim": claim, "value": value}

    judgements = [
        {"system": 0, "seed": 0, "metric": "faithfulness", "section": -1, "values": [
            verdict("Caches cut latency by 40% [1, 2].", 1.0), verdict("Caches cut latency by 40% [1, 2].", 0.0),
            verdict("Locks hurt scaling (Lee, 2019).", 0.5), verdict("Queues help producers [3].", 1.0)]},
        {"system": 0, "seed": 0, "metric": "density", "section": 0, "values": ["Caches cut latency.", "caches cut latency", "Locks hurt writers."]},
        {"system": 1, "seed": 0, "metric": "structure", "section": -1, "values": [7.0]},
    ]
    v = values_by_metric(judgements, 0, words=500)
    assert v["citation_precision"] == [1.0, 0.0, 0.5, 1.0]
    assert v["faithfulness"] == [0.0, 0.5, 1.0], "a claim is as good as its worst citation"
    assert v["numeric_claims"] == [0.0], "only the claim that states a number (a citation's year is not one)"
    assert v["density"] == [4.0] and v["structure"] == []


@pytest.mark.postgres
def test_the_eval_keeps_its_answers_in_postgres_with_db(inputs, tmp_path: Path, monkeypatch, pg_url: str):
    """`llmxmr eval --db postgresql://…`: a repeat from another output folder pays nothing; no eval.sqlite."""
    from llmxmr import cli
    from llmxmr.testing.scripted_server import scripted_server

    monkeypatch.setenv("OPENAI_API_KEY", "x")
    cmd = ["eval", *inputs["articles"], "--corpus", inputs["corpus_path"], "--db", pg_url,
           "--judge-model", "openai:scripted", "--seeds", "1"]
    with scripted_server() as server:
        assert cli.main([*cmd, "-o", str(tmp_path / "a"), "--base-url", server.base_url]) == 0
        first = len(server.chat_requests)
        assert first > 0
        assert cli.main([*cmd, "-o", str(tmp_path / "b"), "--base-url", server.base_url]) == 0
        assert len(server.chat_requests) == first
    assert not (tmp_path / "a" / "eval.sqlite").exists()
    assert json.loads((tmp_path / "b" / "eval.json").read_text())["systems"]
