"""Issue 14: the prompt tokens a provider serves from its prompt cache are read from its usage, shown per
stage (summary table, survey.json) and billed at --price-cached; `llmxmr plan` estimates them."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.store.memory import InMemoryStore

from llmxmr import cli
from llmxmr.core.prompt_cache import cacheable, cost
from llmxmr.models.caller import ModelCaller, UsageMeter, cache_read_tokens
from llmxmr.state.context import resolve_settings
from llmxmr.testing.responder import Responder
from llmxmr.testing.scripted_server import scripted_reply, scripted_server

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "mini.jsonl"
# Two blocks with layers and self-refine: a run that asks some questions twice (answered from its record).
LOOP = ["--set", "max_blocks=2", "--set", "max_layers=1", "--set", "units=2", "--set", "refine_rounds=2",
        "--set", "best_of=2", "--set", "patience=5"]

pytestmark = pytest.mark.usefixtures("offline_env")


def test_openai_and_gemini_cache_reads_are_read_from_langchain_usage() -> None:
    assert cache_read_tokens({"input_tokens": 5000, "input_token_details": {"cache_read": 3072}}) == 3072
    # OpenAI's service tiers name them by tier; Gemini's cached content arrives as cache_read too.
    assert cache_read_tokens({"input_token_details": {"priority_cache_read": 1024, "cache_creation": 9}}) == 1024
    assert cache_read_tokens({"input_token_details": {"cache_read": None}}) == 0
    assert cache_read_tokens({}) == 0


def test_openai_rule_and_cost() -> None:
    assert [cacheable(n) for n in (0, 1023, 1024, 1151, 1152, 5000)] == [0, 0, 1024, 1024, 1152, 4992]
    assert cost(1_000_000, 0, price_in=2.0, price_out=8.0) == pytest.approx(2.0)
    assert cost(1_000_000, 500_000, price_in=2.0, price_out=8.0, cached_tokens=600_000,
                price_cached=0.5) == pytest.approx(0.8 + 0.3 + 4.0)
    assert cost(100, 0, price_in=1.0, price_out=1.0, cached_tokens=900, price_cached=0.0) == 0.0  # never below 0


class _CachingGemini(BaseChatModel):
    """Answers like ChatGoogleGenerativeAI's usage: cached content as input_token_details.cache_read."""

    @property
    def _llm_type(self) -> str:
        return "fake-gemini"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        message = AIMessage(content="fine", usage_metadata={
            "input_tokens": 4096, "output_tokens": 1, "total_tokens": 4097, "input_token_details": {"cache_read": 2048}})
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_cache_reads_reach_the_meter_and_survive_a_replay() -> None:
    store = InMemoryStore()
    settings = resolve_settings({"model": "openai:x"})
    msgs = [SystemMessage("Task: polish\nx"), HumanMessage("y")]
    meter = UsageMeter()
    ModelCaller(settings, store, models=_CachingGemini()).call(
        role="writer", stage="polish", unit="u", messages=msgs, meter=meter, max_tokens=10)
    ModelCaller(settings, store, models=_CachingGemini()).call(  # a resumed process: the durable record
        role="writer", stage="polish", unit="u", messages=msgs, meter=meter, max_tokens=10)
    usage = meter.as_usage()["polish"]
    assert (usage["calls"], usage["cached"], usage["prompt_tokens"], usage["cache_read_tokens"]) == (1, 1, 8192, 4096)


def test_cached_tokens_from_the_stub_reach_the_table_survey_json_and_the_bill(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    reported: dict[str, int] = {}
    sent: dict[str, int] = {}  # prompt tokens the stub billed per stage
    lock = threading.Lock()
    responder = Responder()

    def caching(stage: str, request: dict[str, Any]) -> dict[str, Any]:
        reply = scripted_reply(responder, request)
        reply["cached_tokens"] = reply["prompt_tokens"] // 2 if stage in ("digest", "verify") else 0
        with lock:
            reported[stage] = reported.get(stage, 0) + reply["cached_tokens"]
            sent[stage] = sent.get(stage, 0) + reply["prompt_tokens"]
        return reply

    out = tmp_path / "out"
    with scripted_server(fault=caching) as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url", stub.base_url,
                         "--price-in", "2", "--price-out", "8", "--price-cached", "0.5", "-q", *LOOP])
    err = capsys.readouterr().err
    assert code == 0, err
    usage = json.loads((out / "survey.json").read_text())["usage"]
    assert reported["digest"] > 0 and reported["verify"] > 0
    for stage, u in usage.items():
        assert u["cache_read_tokens"] == reported.get(stage, 0), stage
        # what the provider billed, once: a question the run asks twice is replayed, not counted again
        assert u["prompt_tokens"] == sent.get(stage, 0), (stage, u)
    assert sum(u["cached"] for u in usage.values()) > 0, "the run replays some answers (the case counted once)"
    assert "cached tok" in " ".join(err.split()) or "cached" in err
    digest_row = next(line for line in err.splitlines() if line.startswith("│ digest"))
    cells = [c.strip() for c in digest_row.strip("│ ").split("│")]
    assert cells[6:8] == [str(usage["digest"]["prompt_tokens"]), str(reported["digest"])]  # prompt, cached
    prompt = sum(u["prompt_tokens"] for u in usage.values())
    completion = sum(u["completion_tokens"] for u in usage.values())
    cached = sum(reported.values())
    billed = (2 * (prompt - cached) + 0.5 * cached + 8 * completion) / 1e6
    line = re.search(r"cost: \$([\d.]+) \((\d+) of (\d+) prompt tokens", " ".join(err.split()))
    assert line is not None, err[-800:]
    assert (float(line.group(1)), int(line.group(2)), int(line.group(3))) == (round(billed, 4), cached, prompt)


def test_plan_estimates_cached_tokens_and_bills_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmxmr.plan import estimate

    settings = resolve_settings({"mode": "default", "max_blocks": 1})
    plan = estimate(settings, [3000] * 60, sections=38)
    digest = plan.stages["digest"]
    assert 0 < digest.cached_tokens < digest.prompt_tokens  # 60 papers per pass share the outline
    assert plan.stages["map"].cached_tokens == 0  # every document differs from its first line
    assert plan.cost(2, 8, 0.5) < plan.cost(2, 8) == plan.cost(2, 8, None)
    assert cli.main(["plan", str(CORPUS), "--price-in", "2", "--price-out", "8", "--price-cached", "0.5"]) == 0
    shown = capsys.readouterr().out  # the plan is the command's output: stdout
    assert "cached tok" in shown and "--price-cached" in shown


def test_plan_prices_the_batch_stages_at_the_batch_price(capsys: pytest.CaptureFixture[str]) -> None:
    from llmxmr.plan import estimate, stage_cost

    settings = resolve_settings({"mode": "default", "max_blocks": 1})
    plan = estimate(settings, [3000] * 60, sections=38)
    map_, digest = plan.stages["map"], plan.stages["digest"]
    batch = frozenset({"map", "digest"})
    saved = (stage_cost(map_, 2, 8) - stage_cost(map_, 2, 8, batched=True)
             + stage_cost(digest, 2, 8, 0.5) - stage_cost(digest, 2, 8, 0.5, batched=True))
    # half price on batched stages, and their cache discount is not counted on top
    assert stage_cost(map_, 2, 8, batched=True) == pytest.approx(stage_cost(map_, 2, 8) / 2)
    assert stage_cost(digest, 2, 8, 0.5, batched=True) == pytest.approx(stage_cost(digest, 2, 8) / 2)
    assert plan.cost(2, 8, 0.5, batch) == pytest.approx(plan.cost(2, 8, 0.5) - saved)
    assert cli.main(["plan", str(CORPUS), "--price-in", "2", "--price-out", "8", "--batch", "map,digest",
                     "--model", "openai:gpt-4.1-mini"]) == 0
    shown = capsys.readouterr().out
    assert "map (batch)" in shown and "digest (batch)" in shown and "at 50% of the prices" in shown
    assert cli.main(["plan", str(CORPUS), "--batch", "writing", "--model", "openai:gpt-4.1-mini"]) != 0  # a stage batch mode cannot take
    assert "batch" in capsys.readouterr().err
