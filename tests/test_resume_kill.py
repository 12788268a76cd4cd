"""Kill-and-resume: a real `llmxmr run` subprocess over the scripted loopback stub is SIGKILLed by the stub
right after its K-th delivered response (once inside refinement, once inside writing), then resumed with
`llmxmr resume` against a NEW stub. The stubs' request logs prove that no request whose response had been
delivered before the kill is sent again, and the resumed article equals an uninterrupted run's.

How the kill point is made exact: the stub calls back after the K-th response body was written and flushed;
from then on it holds every new request (they are never answered, so never delivered), waits GRACE seconds
so the client can record what it received, and SIGKILLs the process. A response delivered less than the
client's store write (~ms) before the kill could in principle be re-sent: that window is inherent (a client
cannot record a response before receiving it) and the grace period keeps it out of this test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmxmr.testing.responder import stage_of
from llmxmr.testing.scripted_server import scripted_server

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "mini.jsonl"
SMALL = ["--set", "max_layers=1", "--set", "max_blocks=1", "--set", "refine_rounds=1", "--set", "best_of=2",
         "--set", "units=2", "--set", "max_concurrency=4"]
GRACE = 0.4
REFINE_STAGES = {"feedback", "judge", "merge_suggestions", "modify", "critique"}
WRITE_STAGES = {"write_section", "polish"}


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "GOOGLE_API_KEY")}
    env.update(OPENAI_API_KEY="x", LANGGRAPH_CLI_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    return env


def llmxmr(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmxmr.cli", *args]


def body_key(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)


def paid_twice(baseline: Counter, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """Stages of requests sent after the resume although a delivered response answered them already.

    A run sends no body twice (best-of candidates and the block-end re-scores carry their candidate index as
    the request's seed: tests/test_prompt_cache_layout.py); the check still counts, so that it holds for any
    run: delivered-before + sent-after of each body must not exceed its count in an uninterrupted run.
    """
    got = Counter(body_key(r["body"]) for r in before) + Counter(body_key(r["body"]) for r in after)
    return [stage_of(json.loads(b)["messages"]) for b, n in got.items() if n > baseline[b]]


def delivered(stub: Any) -> list[dict[str, Any]]:
    return [r for r in stub.chat_requests if r["written"]]


class KillAfter:
    """Stub hooks: after the K-th written response, hold new requests, wait GRACE, send `sig` to the process."""

    def __init__(self, k: int, sig: int = signal.SIGKILL) -> None:
        self.k, self.sig = k, sig
        self.count = 0
        self.pid: int | None = None
        self.frozen = threading.Event()
        self.lock = threading.Lock()
        self.kth: dict[str, Any] | None = None

    def fault(self, stage: str, request: dict[str, Any]) -> dict[str, Any] | None:
        if self.frozen.is_set():
            self.frozen.wait()
            threading.Event().wait(30)  # never answered: the process dies meanwhile
            return {"drop": True}
        return None

    def on_delivered(self, entry: dict[str, Any]) -> None:
        if not entry["path"].endswith("/chat/completions"):
            return
        with self.lock:
            self.count += 1
            if self.count != self.k:
                return
            self.kth = entry
            self.frozen.set()
        threading.Event().wait(GRACE)
        assert self.pid is not None
        os.kill(self.pid, self.sig)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted run (in-process: same CLI code, no interpreter start-up): its article, the
    request-index ranges of each stage and how often each request body was sent."""
    from llmxmr import cli

    out = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "x")
        with scripted_server() as stub:
            code = cli.main(["run", str(CORPUS), "-o", str(out), "--thread", "base", "-q",
                             "--model", "openai:scripted", "--base-url", stub.base_url, *SMALL])
            stages = [stage_of(r["body"]["messages"]) for r in stub.chat_requests]
            bodies = Counter(body_key(r["body"]) for r in stub.chat_requests)
    assert code == 0
    report = json.loads((out / "survey.json").read_text())
    refine = [i for i, s in enumerate(stages) if s in REFINE_STAGES]
    write = [i for i, s in enumerate(stages) if s in WRITE_STAGES]
    return {"content": report["content"], "stages": stages, "refine": refine, "write": write,
            "calls": len(stages), "bodies": bodies}


def run_killed(argv: list[str], k: int, sig: int) -> tuple[subprocess.Popen, str, KillAfter, Any]:
    """`llmxmr ARGV --base-url STUB` against a scripted server whose KillAfter sends `sig` once the k-th
    answer is delivered: the process, its stderr, the killer and the (stopped) server."""
    killer = KillAfter(k, sig)
    stub = scripted_server(fault=killer.fault)
    stub.on_delivered = killer.on_delivered
    with stub:
        proc = subprocess.Popen(llmxmr(*argv, "--base-url", stub.base_url), env=cli_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        killer.pid = proc.pid
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            killer.frozen.set()
            if proc.poll() is None:
                proc.kill()
    return proc, err, killer, stub


def _killed_then_resumed(tmp_path: Path, k: int, sig: int) -> tuple[Any, Any, KillAfter, Any, Any, Path]:
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    proc, err1, killer, stub1 = run_killed(["run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t1",
                                            "--model", "openai:scripted", *SMALL], k, sig)
    first = (proc.returncode, err1)
    with scripted_server() as stub2:  # a NEW server (new port): resume takes --base-url
        res = subprocess.run(llmxmr("resume", "t1", "--db", str(db), "-o", str(out), "-q",
                                    "--base-url", stub2.base_url),
                             env=cli_env(), capture_output=True, text=True, timeout=120)
    return first, res, killer, stub1, stub2, out


@pytest.mark.parametrize("where", ["refinement", "writing"])
def test_sigkill_then_resume_pays_nothing_twice(baseline: dict[str, Any], tmp_path: Path, where: str) -> None:
    indices = baseline["refine"] if where == "refinement" else baseline["write"]
    k = indices[len(indices) // 2] + 1  # the K-th response lies in the middle of the stage range
    (code1, err1), res, killer, stub1, stub2, out = _killed_then_resumed(tmp_path, k, signal.SIGKILL)
    assert code1 == -signal.SIGKILL, err1
    assert killer.kth is not None
    assert stage_of(killer.kth["body"]["messages"]) in (REFINE_STAGES if where == "refinement" else WRITE_STAGES)
    assert res.returncode == 0, res.stderr

    before = delivered(stub1)
    assert len(before) >= k
    again = paid_twice(baseline["bodies"], before, stub2.chat_requests)
    assert again == [], f"re-sent after resume: {again}"
    # Together the two runs paid for no more requests than one uninterrupted run (+ the held, undelivered ones).
    assert len(before) + len(stub2.chat_requests) <= baseline["calls"]
    report = json.loads((out / "survey.json").read_text())
    assert report["content"] == baseline["content"]


def test_ctrl_c_stops_cleanly_prints_resume_and_resume_finishes(baseline: dict[str, Any], tmp_path: Path) -> None:
    k = baseline["refine"][2] + 1
    (code1, err1), res, _, stub1, stub2, out = _killed_then_resumed(tmp_path, k, signal.SIGINT)
    assert code1 == 1, err1
    assert "Traceback" not in err1
    hint = re.search(r"llmxmr resume t1 --db (\S+) -o (\S+)", err1)
    assert hint, err1
    assert Path(hint.group(1)) == tmp_path / "runs.sqlite"
    assert res.returncode == 0, res.stderr
    assert paid_twice(baseline["bodies"], delivered(stub1), stub2.chat_requests) == []
    assert json.loads((out / "survey.json").read_text())["content"] == baseline["content"]
