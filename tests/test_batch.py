"""Issue 14: batch mode (`--batch map,digest`) against a loopback stub of the OpenAI files and batches
endpoints: one job per stage round, the job's id recorded durably, a run killed while it waits collects the
same job on resume, failed lines retried as ordinary calls, progress showing the job's status."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmxmr import cli
from llmxmr.state.context import SettingsError, resolve_settings
from llmxmr.testing.responder import DOC_RE, stage_of
from llmxmr.testing.scripted_server import scripted_server

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1"]
BATCH = ["--batch", "map,digest", "--set", "batch_poll_seconds=0.05"]

pytestmark = pytest.mark.usefixtures("offline_env")


def _chat_stages(stub: Any) -> Counter:
    return Counter(stage_of(r["body"]["messages"]) for r in stub.chat_requests)


def _batch_stages(stub: Any) -> list[str]:
    """The stage of every job submitted, from the lines of its input file."""
    out = []
    for r in stub.batch_requests:
        first = json.loads(stub.files[r["body"]["input_file_id"]].decode().splitlines()[0])
        out.append(stage_of(first["body"]["messages"]))
    return out


def test_batch_mode_sends_each_map_and_digest_round_as_one_job(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with scripted_server() as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url", stub.base_url,
                         "-v", "--price-in", "2", "--price-out", "8", *BATCH, *TINY])
        chat, jobs = _chat_stages(stub), _batch_stages(stub)
    err = capsys.readouterr().err
    assert code == 0, err
    assert chat["map"] == 0 and chat["digest"] == 0  # every answer came from a job
    assert jobs == ["map", "digest", "digest"]  # the map pass, the digest of O_0 and of the block's outline
    report = json.loads((out / "survey.json").read_text())
    papers = len(json.loads(CORPUS.read_text().splitlines()[0])["papers"])
    usage = report["usage"]
    assert usage["map"]["batched"] == usage["map"]["calls"] == papers
    assert usage["digest"]["batched"] == usage["digest"]["calls"] == 2 * papers
    assert usage["map"]["prompt_tokens"] > 0  # the tasks replayed the job's answers with their usage
    assert not [f for f in report["failures"] if f["stage"] in ("map", "digest")]
    assert re.search(r"batch map .*status=completed", err)  # progress shows the job's status
    # The bill: the jobs' answers at half the price, the rest at the ordinary price.
    total = {k: sum(u[k] for u in usage.values()) for k in ("prompt_tokens", "completion_tokens",
                                                            "batched_prompt_tokens", "batched_completion_tokens")}
    assert total["batched_prompt_tokens"] == usage["map"]["prompt_tokens"] + usage["digest"]["prompt_tokens"]
    billed = (2 * (total["prompt_tokens"] - total["batched_prompt_tokens"] / 2)
              + 8 * (total["completion_tokens"] - total["batched_completion_tokens"] / 2)) / 1e6
    assert f"cost: ${billed:.4f} (" in " ".join(err.split())


def test_failed_lines_of_a_job_are_asked_as_ordinary_calls(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first_paper: list[str] = []  # the paper of the first digest line: its line fails in every digest job
    failing: list[str] = []

    def fault(body: dict[str, Any]) -> int | None:
        if stage_of(body["messages"]) != "digest":
            return None
        pid = DOC_RE.findall(body["messages"][1]["content"])[0][0]
        first_paper[:] = first_paper or [pid]
        if pid != first_paper[0]:
            return None
        failing.append(pid)
        return 500

    with scripted_server() as stub:
        stub.batch_line_fault = fault
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url", stub.base_url,
                         "-q", *BATCH, *TINY])
        digests = [r for r in stub.chat_requests if stage_of(r["body"]["messages"]) == "digest"]
    assert code == 0
    assert len(failing) == 2  # the paper's line failed in both digest jobs ...
    assert len(digests) == 2 and all(first_paper[0] in DOC_RE.findall(r["body"]["messages"][1]["content"])[0]
                                     for r in digests)  # ... and was asked as an ordinary call each time
    report = json.loads((out / "survey.json").read_text())
    notes = [f for f in report["failures"] if f["kind"] == "batch_lines"]
    assert len(notes) == 2 and "1 of 4 lines failed" in notes[0]["message"]
    assert report["usage"]["digest"]["calls"] == 8 and report["usage"]["digest"]["batched"] == 6


def test_a_run_killed_while_its_job_waits_collects_it_on_resume(tmp_path: Path) -> None:
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN_TRACING"))}
    env.update(OPENAI_API_KEY="x", PYTHONUNBUFFERED="1")
    with scripted_server() as stub:
        stub.batch_hold.set()  # the job stays in_progress
        proc = subprocess.Popen([sys.executable, "-m", "llmxmr.cli", "run", str(CORPUS), "-o", str(out), "--db", str(db),
                                 "--thread", "t", "--model", "openai:scripted", "--base-url", stub.base_url, "-q",
                                 *BATCH, *TINY], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                polls = [r for r in stub.requests if "/batches/" in r["path"]]
                if len(polls) >= 2:  # submitted, and waiting
                    break
                time.sleep(0.05)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert _batch_stages(stub) == ["map"] and stub.batches["batch_stub_0"]["status"] == "in_progress"
        stub.batch_hold.clear()  # the job completes while nobody waits for it
        code = cli.main(["resume", "t", "--db", str(db), "-o", str(out), "-q"])
        chat, jobs = _chat_stages(stub), _batch_stages(stub)
    assert code == 0
    assert jobs == ["map", "digest", "digest"]  # the map job was collected, not submitted again
    assert chat["map"] == 0
    usage = json.loads((out / "survey.json").read_text())["usage"]
    assert usage["map"]["batched"] == 4


def test_a_server_without_the_batch_api_stops_with_the_fix_and_resumes_without_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    with scripted_server() as stub:
        stub.batch_api = False
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t", "-q",
                         "--model", "openai:scripted", "--base-url", stub.base_url, *BATCH, *TINY])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 1
        assert "batch mode: the Batch API of model openai:scripted (stage map) failed" in err
        assert "resume with --set batch= to make ordinary calls" in err and "Traceback" not in err
        code = cli.main(["resume", "t", "--db", str(db), "-o", str(out), "-q", "--set", "batch="])
        chat = _chat_stages(stub)
    assert code == 0
    assert chat["map"] == 4 and chat["digest"] == 8  # ordinary calls


def test_batch_mode_needs_an_openai_reader_and_known_stages() -> None:
    assert resolve_settings({"model": "openai:m", "batch": "map,digest"}).batch_stages == {"map", "digest"}
    with pytest.raises(SettingsError, match="openai: reader model"):
        resolve_settings({"model": "local", "batch": "digest"})
    with pytest.raises(SettingsError, match="unknown stage"):
        resolve_settings({"model": "openai:m", "batch": "map,judge"})
    with pytest.raises(SettingsError, match="no map stage"):
        resolve_settings({"model": "openai:m", "mode": "reference", "batch": "map"})
