"""Fault injection through the whole CLI: the real ChatOpenAI client against the scripted loopback stub,
which replaces chosen answers with provider faults (429, 5xx, timeouts, dropped connections, 400/401/404,
context overflow) or malformed output. Runs in-process (`cli.main`) so waits can be observed, not slept."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmxmr import cli
from llmxmr.models import caller as caller_mod
from llmxmr.testing.scripted_server import scripted_server

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1",
        "--set", "max_concurrency=4", "-q"]
OVERFLOW = {"status": 400, "body": {"error": {"type": "invalid_request_error", "message":
            "request (6031 tokens) exceeds the available context size (4096 tokens), try increasing it"}}}


@pytest.fixture(autouse=True)
def fast_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(caller_mod, "_sleep", waits.append)
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)
    return waits


class Faults:
    """fault(stage, request): the n-th request (0-based) of a stage gets a scripted fault."""

    def __init__(self, plan: dict[str, dict[int, dict[str, Any]] | Callable[[int, dict], dict | None]]) -> None:
        self.plan = plan
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, stage: str, request: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            n = self.seen.get(stage, 0)
            self.seen[stage] = n + 1
        rule = self.plan.get(stage)
        if rule is None:
            return None
        return rule(n, request) if callable(rule) else rule.get(n)


def run_cli(tmp_path: Path, fault: Any, *extra: str, models: list[str] | None = None,
            model: str = "openai:scripted") -> tuple[int, Any, dict[str, Any] | None]:
    with scripted_server(fault=fault, models=models) as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(tmp_path / "out"), "--thread", "t",
                         "--model", model, "--base-url", stub.base_url, *TINY, *extra])
    js = tmp_path / "out" / "survey.json"
    return code, stub, json.loads(js.read_text()) if js.is_file() else None


def user_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in request["messages"] if m["role"] == "user")


# -- provider faults that are retried ---------------------------------------------------------------------

def test_transient_provider_faults_are_retried_and_the_run_completes(tmp_path: Path, fast_waits: list[float],
                                                                      capsys: pytest.CaptureFixture) -> None:
    faults = Faults({
        "map": {0: {"status": 429, "headers": {"Retry-After": "7"}}},
        "group": {0: {"status": 429}},
        "skeleton": {0: {"status": 500}},
        "merge_skeleton": {0: {"status": 503}, 1: {"status": 503}},
        "feedback": {0: {"delay": 1.5}},  # > request_timeout: the client times out and retries
        "digest": {0: {"drop": True}},
        "write_section": {0: {"drop": True}},
    })
    code, stub, report = run_cli(tmp_path, faults, "--set", "request_timeout=0.5")
    assert code == 0, capsys.readouterr().err
    assert report is not None
    retries = {stage: u["retries"] for stage, u in report["usage"].items() if u["retries"]}
    assert retries == {"map": 1, "group": 1, "skeleton": 1, "merge_skeleton": 2, "feedback": 1, "digest": 1,
                       "write_section": 1}
    assert 7.0 in fast_waits  # Retry-After honoured
    assert all(w <= caller_mod.BACKOFF_MAX for w in fast_waits)
    assert report["failures"] == []
    assert "retries" in capsys.readouterr().err  # the usage table is printed at the end


def test_persistent_5xx_gives_up_after_bounded_attempts_with_resume_hint(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    faults = Faults({"group": lambda n, r: {"status": 503}})
    code, stub, _ = run_cli(tmp_path, faults)
    err = capsys.readouterr().err
    assert code == 1
    assert faults.seen["group"] == caller_mod.MAX_ATTEMPTS
    assert "server error from model openai:scripted (role planner, stage group) persisted after 5 attempts" in err
    assert "llmxmr resume t --db" in err


# -- provider faults that fail fast -----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind", "fix"), [
    (400, "invalid_request", "Fix: the server rejected the request"),
    (401, "auth", "Fix: check the API key"),
    (404, "not_found", "Fix: check the model name"),
])
def test_fatal_provider_errors_fail_fast_naming_model_role_stage_fix(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                    status: int, kind: str, fix: str) -> None:
    faults = Faults({"group": lambda n, r: {"status": status, "body": {"error": {"message": f"nope {status}"}}}})
    code, stub, _ = run_cli(tmp_path, faults)
    err = capsys.readouterr().err
    assert code == 1
    assert faults.seen["group"] == 1  # no retry
    assert f"{kind} error from model openai:scripted (role planner, stage group)" in err
    assert fix in err
    assert f"llmxmr resume t --db {tmp_path / 'out' / 'runs.sqlite'} -o {tmp_path / 'out'}" in err
    assert "Traceback" not in err


def test_unknown_model_is_caught_before_any_paid_call(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, stub, _ = run_cli(tmp_path, None, models=["llama-3-8b", "qwen2.5-7b"],
                            model="openai:scripted")
    err = capsys.readouterr().err
    assert code == 2
    assert stub.chat_requests == []
    assert [r["path"] for r in stub.requests] == ["/v1/models"]  # one listing for the one model of all roles
    assert "model 'scripted' is not served at" in err and "available: llama-3-8b, qwen2.5-7b" in err
    assert "--model openai:NAME" in err and "role reader, planner, judge, writer" in err


def test_known_model_passes_the_listing_check(tmp_path: Path) -> None:
    code, stub, _ = run_cli(tmp_path, None, models=["scripted"])
    assert code == 0
    assert sum(r["path"] == "/v1/models" for r in stub.requests) == 1


# -- context overflow --------------------------------------------------------------------------------------

def test_context_overflow_shrinks_the_input_in_map_digest_and_writing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    overflowed: dict[str, list[int]] = {}

    def too_long(stage: str, times: int) -> Callable[[int, dict], dict | None]:
        def rule(n: int, request: dict) -> dict | None:
            overflowed.setdefault(stage, []).append(len(user_text(request)))
            return OVERFLOW if n < times else None
        return rule

    faults = Faults({"map": too_long("map", 2), "digest": too_long("digest", 1),
                     "write_section": too_long("write_section", 1)})
    code, stub, report = run_cli(tmp_path, faults, "--set", "max_concurrency=1")  # one request at a time
    assert code == 0, capsys.readouterr().err
    assert report is not None
    # Each retry after an overflow sent a shorter prompt.
    assert overflowed["map"][1] < overflowed["map"][0] and overflowed["map"][2] < overflowed["map"][1]
    assert overflowed["digest"][1] < overflowed["digest"][0]
    shrunk = [f for f in report["failures"] if f["kind"] == "truncated" and "context overflow" in f["message"]]
    assert {f["stage"] for f in shrunk} == {"map", "digest", "write_section"}
    assert all(f["unit"] for f in shrunk)
    assert "Section not written" not in report["content"]


def test_context_overflow_that_never_fits_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    faults = Faults({"map": lambda n, r: OVERFLOW if n < 4 else None})  # the first chunk never fits (1 + 3 tries)
    code, stub, report = run_cli(tmp_path, faults, "--set", "max_concurrency=1")
    assert code == 3
    assert report is not None
    failed = [f for f in report["failures"] if f["kind"] == "context_overflow"]
    assert len(failed) == 1 and failed[0]["stage"] == "map"
    assert "Fix: set context_window" in failed[0]["message"]


def test_context_overflow_elsewhere_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    faults = Faults({"group": lambda n, r: OVERFLOW})
    code, stub, _ = run_cli(tmp_path, faults)
    err = capsys.readouterr().err
    assert code == 1
    assert faults.seen["group"] == 1
    assert "model openai:scripted (role planner, stage group): the prompt does not fit" in err
    assert "Fix: set context_window" in err and "llmxmr resume t" in err


# -- output faults -----------------------------------------------------------------------------------------

def _reply(text: str, **kw: Any) -> dict[str, Any]:
    return {"content": text, "prompt_tokens": 50, "completion_tokens": 20, **kw}


def test_output_faults_are_repaired_or_recorded_and_the_run_completes(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    def digest_unknown(n: int, request: dict) -> dict | None:
        if n == 0:
            return _reply(json.dumps({"sections": [{"section_id": "s999", "content": "x"}], "suggestion": "s"}))
        return None

    faults = Faults({
        "group": {0: _reply("")},                                     # empty -> re-asked
        "skeleton": {0: _reply('{"title": "Survey", "sections": [', finish_reason="length")},  # length stop
        "merge_skeleton": {0: _reply("Sure! Here is the outline: {not json")},  # invalid JSON
        "feedback": lambda n, r: _reply('{"suggestion": ["a", "list"]}') if n == 0 else None,  # wrong shape
        "judge": lambda n, r: _reply('{"rationale": "great", "score": 42}') if n == 0 else None,  # out of range
        "digest": digest_unknown,                                     # unknown section id
        "modify": lambda n, r: _reply("no edits, sorry"),             # never usable: a failed unit
        "write_section": lambda n, r: _reply("") if "Section 1.1 " in user_text(r) else None,  # one section never
    })
    code, stub, report = run_cli(tmp_path, faults)
    err = capsys.readouterr().err
    assert report is not None, err
    repairs = {stage: u["repairs"] for stage, u in report["usage"].items() if u["repairs"]}
    for stage in ("group", "skeleton", "merge_skeleton", "feedback", "judge"):
        assert repairs.get(stage, 0) >= 1, (stage, repairs)
    kinds = {(f["stage"], f["kind"]) for f in report["failures"]}
    assert ("digest", "unknown_section") in kinds
    assert ("modify", "output_fault") in kinds
    assert ("write_section", "gap") in kinds
    assert all(f["unit"] for f in report["failures"])
    assert "Section not written" in report["content"]
    assert code == 3  # serious failures were recorded
    assert "recorded failures" in err
