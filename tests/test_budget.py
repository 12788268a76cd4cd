"""Budgets: max_calls / max_total_tokens count every paid call (retries and repairs included), a budget too
small for any article is refused before any paid call, and an exhausted budget stops a run resumably."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.store.memory import InMemoryStore

from llmxmr import cli
from llmxmr.models import caller as caller_mod
from llmxmr.models.caller import ModelCaller, UsageMeter
from llmxmr.models.errors import BudgetExceededError
from llmxmr.state.context import resolve_settings
from llmxmr.testing.openai_stub import StubOpenAIServer
from llmxmr.testing.responder import Responder
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(caller_mod, "_sleep", waits.append)
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    return waits


def test_retries_count_against_max_calls_and_the_count_survives_a_new_caller() -> None:
    attempts = iter([{"status": 500}, {"status": 500}, {"content": "ok"}])
    with StubOpenAIServer(lambda req: next(attempts)) as stub:
        settings = resolve_settings({"model": "openai:m", "base_url": stub.base_url, "max_calls": 2})
        store = InMemoryStore()
        caller = ModelCaller(settings, store, run_id="r1")
        with pytest.raises(BudgetExceededError, match=r"2 of max_calls=2 calls used"):
            caller.call(role="judge", stage="judge", unit="u", messages=[SystemMessage("s"), HumanMessage("h")],
                        meter=UsageMeter(), max_tokens=10)
        assert len(stub.chat_requests) == 2  # the third attempt was refused before it was sent
        again = ModelCaller(settings, store, run_id="r1")  # a resumed process reads the saved count
        assert again.spent["calls"] == 2
        with pytest.raises(BudgetExceededError):
            again.call(role="judge", stage="judge", unit="u", messages=[HumanMessage("other")],
                       meter=UsageMeter(), max_tokens=10)


def test_budget_too_small_for_any_article_fails_before_any_paid_call(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    with scripted_server() as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(tmp_path), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--set", "max_calls=5", *TINY])
    err = capsys.readouterr().err
    assert code == 2
    assert stub.requests == []
    assert "max_calls=5 is too small for any article" in err and "Fix: --set max_calls=" in err


def test_token_budget_too_small_is_refused_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["run", str(CORPUS), "-o", str(tmp_path), "--model", "openai:scripted",
                     "--base-url", "http://127.0.0.1:9/v1", "--set", "max_total_tokens=100", *TINY])
    assert code == 2
    assert "max_total_tokens=100 is too small" in capsys.readouterr().err


def announced_minimum(capsys: pytest.CaptureFixture, *flags: str) -> int:
    """The minimum `max_calls` the CLI announces for the corpus and flags (exit 2, no paid call)."""
    assert cli.main(["run", str(CORPUS), "-o", "/nonexistent", "--model", "openai:scripted",
                     "--base-url", "http://127.0.0.1:9/v1", "--set", "max_calls=1", *flags]) == 2
    found = re.search(r"Fix: --set max_calls=(\d+) or more", capsys.readouterr().err)
    assert found
    return int(found.group(1))


@pytest.mark.parametrize("flags", [TINY, ["-q", "--set", "max_layers=1", "--set", "units=2"],
                                   ["-q", "--mode", "reference", "--set", "max_layers=1", "--set", "units=2"]],
                         ids=["tiny", "default", "reference"])
def test_the_announced_minimum_budget_writes_an_article(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        flags: list[str]) -> None:
    need = announced_minimum(capsys, *flags)
    out = tmp_path / "out"
    with scripted_server() as stub:  # one call less is refused before any paid call
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--set", f"max_calls={need - 1}", *flags]) == 2
        assert stub.requests == []
    assert f"Fix: --set max_calls={need} or more" in capsys.readouterr().err
    with scripted_server() as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--set", f"max_calls={need}", *flags])
        paid = len(stub.chat_requests)
    assert code == 0, capsys.readouterr().err
    assert paid <= need
    report = json.loads((out / "survey.json").read_text())
    assert "Section not written" not in report["content"]
    assert report["stop_reason"].startswith("budget")


def test_an_outline_far_larger_than_planned_is_cut_to_what_the_announced_minimum_can_write(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Issue 16 §4: the outline's size is only known once drafted. 10 sections of 3 subsections (40) is far
    # beyond the size the minimum reserves for; the run cuts the final outline instead of dying while writing.
    need = announced_minimum(capsys, *TINY)
    out = tmp_path / "out"
    with scripted_server(Responder(sections_per_outline=10, subsections=3)) as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--set", f"max_calls={need}", *TINY])
        paid = len(stub.chat_requests)
    err = capsys.readouterr().err
    assert code == 3, err  # an article, with the cut recorded
    assert paid <= need
    report = json.loads((out / "survey.json").read_text())
    assert "Section not written" not in report["content"]
    cut = [f for f in report["failures"] if f["kind"] == "budget" and f["unit"] == "outline"]
    assert len(cut) == 1 and re.search(r"cut from 40 to \d+ sections", cut[0]["message"])
    written = report["content"].count("\n#")
    assert 1 < written <= 40
    assert "cut to" in (out / "outline-final.md").read_text()


def test_exhausted_budget_outside_refinement_stops_resumably_then_resume_with_more(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Retries are paid calls: a server failing each section's first two attempts spends the slack while writing.
    need = announced_minimum(capsys, *TINY)
    out = tmp_path / "out"
    seen: dict[str, int] = {}

    def flaky_writer(stage: str, request: dict) -> dict | None:
        if stage != "write_section":
            return None
        key = json.dumps(request.get("messages"), sort_keys=True)
        seen[key] = seen.get(key, 0) + 1
        return {"status": 500} if seen[key] <= 2 else None

    with scripted_server(fault=flaky_writer) as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--thread", "b", "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--set", f"max_calls={need}", *TINY])
        err = capsys.readouterr().err
        assert code == 1, err
        assert f"budget exhausted: {need} of max_calls={need} calls used" in err
        assert f"llmxmr resume b --db {out / 'runs.sqlite'} -o {out}" in err
        assert len(stub.chat_requests) == need  # never more than the budget
        code = cli.main(["resume", "b", "--db", str(out / "runs.sqlite"), "-o", str(out), "-q",
                         "--set", "max_calls=400"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "survey.json").read_text())
    assert "Section not written" not in report["content"]


def test_every_budget_from_tight_to_ample_finishes_within_itself() -> None:
    # Issue 16 §4: a run that starts finishes within its budget, whatever the budget: refinement layers,
    # self-refine rounds and the citation check give way, the outline is cut, the article is written.
    from graph_helpers import papers, run

    from llmxmr.testing.fake_model import ScriptedChatModel

    shape = {"mode": "default", "units": 2, "max_layers": 1, "refine_rounds": 2, "best_of": 2, "max_blocks": 1}
    free = run(ScriptedChatModel(), papers(6), **shape)
    full = sum(u["calls"] for u in free["report"]["usage"].values())
    kinds = set()
    # The top of the sweep lies well above the free run's calls: refinement starts only when the worst case
    # it may cost (a new best outline re-digested and re-scored at the block's end) still fits.
    for budget in range(full - 30, full + 36, 3):
        out = run(ScriptedChatModel(), papers(6), max_calls=budget, **shape)
        usage = out["report"]["usage"]
        assert sum(u["calls"] for u in usage.values()) <= budget, budget
        assert out["article"] and "Section not written" not in out["article"], budget
        kinds.add("refined" if "critique" in usage else "layers" if "modify" in usage else "none")
    assert kinds == {"refined", "layers", "none"}  # the sweep crossed every way of giving way


def test_every_token_budget_from_tight_to_ample_finishes_within_itself() -> None:
    # The same under max_total_tokens: the outline is cut to what writing can pay for, and the citation
    # check's rounds keep to the tokens writing left.
    from graph_helpers import papers, run

    from llmxmr.testing.fake_model import ScriptedChatModel

    shape = {"mode": "default", "units": 2, "max_layers": 1, "refine_rounds": 1, "best_of": 1, "max_blocks": 1}
    free = run(ScriptedChatModel(), papers(6), **shape)
    full = sum(u["prompt_tokens"] + u["completion_tokens"] for u in free["report"]["usage"].values())
    held_back = set()
    for share in (0.5, 0.6, 0.7, 0.8, 1.0, 1.5, 2.5):
        budget = int(full * share)
        out = run(ScriptedChatModel(), papers(6), max_total_tokens=budget, **shape)
        usage = out["report"]["usage"]
        assert sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage.values()) <= budget, share
        assert out["article"] and "Section not written" not in out["article"], share
        held_back |= {f["stage"] for f in out["report"]["failures"] if f["kind"] == "budget"}
    assert {"write_section", "verify"} <= held_back  # the outline was cut, and the check held back
