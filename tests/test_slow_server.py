"""A slow model is not a failed model (issue 15): against a server that works on one request at a time,
each taking longer than a quarter of the client's time-out, a run whose max_concurrency would queue four
requests at the server completes. The in-flight limit drops, nothing is paid twice (every response the
server finished is in the run's record, none is finished twice), and survey.json and the summary show the
limit the run settled at.

The one-slot server runs in a process of its own (`scripted_server_process`): inside the test's process its
threads would share the interpreter lock with the pipeline's, and on a busy machine a reply it had finished
could wait there past the client's time-out, to be asked for again (seen once in a fresh clone run beside a
CPU-bound process: 43 distinct bodies among 44 finished)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmxmr import cli, run_store
from llmxmr.models import caller as caller_mod
from llmxmr.runs import open_database
from llmxmr.testing.scripted_server import scripted_server
from llmxmr.testing.server_process import scripted_server_process

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1",
        "--set", "verify_citations=false"]
TIMEOUT, WORK = 1.0, 0.4  # 2 queued at the server answer in 0.8 s, a 3rd would take 1.2 s: 0.2 s from the time-out either way

pytestmark = pytest.mark.usefixtures("offline_env")


def _body(entry: dict) -> str:
    return json.dumps(entry["body"], sort_keys=True)


@pytest.mark.timeout(180)
def test_one_slot_server_slower_than_a_quarter_of_the_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caller_mod, "BACKOFF_BASE", 0.05)
    out = tmp_path / "out"
    with scripted_server_process(slots=1, work=WORK) as server:
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url",
                         server.base_url, "--set", f"request_timeout={TIMEOUT}", "--set", "max_concurrency=4", *TINY])
        chats = server.chat_requests
    err = capsys.readouterr().err
    assert code == 0, err
    report = json.loads((out / "survey.json").read_text())
    limit = report["concurrency"]["openai:scripted"]
    assert limit["start"] == 4 and limit["max"] == 4
    assert limit["decreases"] >= 1 and limit["lowest"] <= 2  # time-outs lowered it
    assert 1 <= limit["settled"] <= 4
    assert f"in flight: openai:scripted settled at {limit['settled']} request(s) at once" in err
    assert any(r.get("cancelled") for r in chats)  # the scenario did time requests out
    assert "timed out" in err  # and each retry was logged as it happened

    finished = [r for r in chats if r.get("completed")]
    # Judge bodies may repeat by design: block end re-scores O_b with a fresh call (another candidate index).
    asked = [_body(r) for r in finished if not r["body"]["messages"][0]["content"].startswith("Task: judge")]
    assert asked and len(set(asked)) == len(asked)  # no request's work was finished twice
    with open_database(out / "runs.sqlite") as db:
        recorded = db.store.search(run_store.RESPONSES, limit=10_000)
    assert len(recorded) == len(finished)  # every finished (paid) response reached the run's record


@pytest.mark.timeout(120)
def test_a_server_that_reports_its_slots_sets_the_starting_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    with scripted_server(slots=1, work=0.02, report_slots=True) as server:  # llama.cpp: GET /props total_slots
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url",
                         server.base_url, "--set", "max_concurrency=8", "-q", *TINY])
        chats = server.chat_requests
    assert code == 0, capsys.readouterr().err
    limit = json.loads((out / "survey.json").read_text())["concurrency"]["openai:scripted"]
    assert limit == {"start": 1, "max": 1, "settled": 1, "lowest": 1, "decreases": 0, "increases": 0}
    assert not any(r.get("cancelled") for r in chats)
