"""`llmxmr run JOB --parallel-surveys K --processes P`: the shares of the limits, and a job of three surveys
worked by two processes on one SQLite database: every survey once, the same articles as one process."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from llmxmr import cli
from llmxmr.survey_processes import helper_argv, parse_slot, rotated, shares
from llmxmr.testing.scripted_server import scripted_server

pytestmark = [pytest.mark.usefixtures("offline_env"), pytest.mark.timeout(300)]

CORPUS = Path(__file__).parent.parent / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


def test_shares_add_up_to_the_limits_and_never_leave_a_process_without_work() -> None:
    assert shares(2, 8, 160) == [(4, 80), (4, 80)]
    assert shares(3, 8, 20) == [(3, 7), (3, 7), (2, 6)]
    assert shares(4, 2, 20) == [(1, 10), (1, 10)]  # two surveys at once: two processes
    assert shares(4, 8, 3) == [(3, 1), (3, 1), (2, 1)]  # three requests in flight: three processes
    assert shares(1, 5, 7) == [(5, 7)]
    for p, k, n in ((2, 3, 5), (5, 17, 33), (8, 8, 8)):
        plan = shares(p, k, n)
        assert sum(a for a, _ in plan) == k and sum(b for _, b in plan) == n and min(min(x) for x in plan) >= 1


def test_each_process_starts_at_a_different_survey() -> None:
    jobs = list("abcdefgh")
    assert [rotated(jobs, i, 2)[0] for i in range(2)] == ["a", "e"]
    assert rotated(jobs, 1, 3) == list("cdefghab")
    assert sorted(rotated(jobs, 2, 3)) == jobs


def test_a_helper_runs_the_users_command_with_its_shares_last() -> None:
    argv = helper_argv(["run", "job.jsonl", "-o", "out", "--parallel-surveys", "8", "--processes", "2"], 1, 2, 4, 80)
    tail = argv[argv.index("job.jsonl") - 1:]
    assert tail[:7] == ["run", "job.jsonl", "-o", "out", "--parallel-surveys", "8", "--processes"]
    parsed = cli.parser().parse_args(tail)  # the later flags win
    assert (parsed.processes, parsed.parallel_surveys, parsed.max_in_flight, parsed.quiet) == (1, 4, 80, True)
    assert parse_slot(parsed.worker_slot) == (1, 2)


def three_surveys(path: Path) -> Path:
    base = json.loads(CORPUS.read_text().splitlines()[0])
    lines = []
    for i in range(3):
        papers = [{**p, "title": f"{p['title']} ({i})", "txt": f"Survey {i}. {p['txt']}"} for p in base["papers"]]
        lines.append(json.dumps({**base, "title": f"{base['title']} {i}", "papers": papers}))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(corpus: Path, out: Path, base_url: str, *extra: str) -> int:
    return cli.main(["run", str(corpus), "-o", str(out), "--model", "openai:scripted", "--base-url", base_url,
                     *TINY, "--parallel-surveys", "3", *extra])


def slow(stage: str, request: dict[str, Any]) -> None:
    threading.Event().wait(0.1)  # each survey lasts longer than a helper takes to start


def test_two_processes_work_every_survey_once_with_the_articles_of_one(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    corpus = three_surveys(tmp_path / "job.jsonl")
    with scripted_server(fault=slow) as stub:
        assert run(corpus, tmp_path / "one", stub.base_url) == 0
        one_calls = len(stub.chat_requests)
    capsys.readouterr()
    with scripted_server(fault=slow) as stub:
        assert run(corpus, tmp_path / "two", stub.base_url, "--processes", "2") == 0
        two_calls = len(stub.chat_requests)
    parent_said = capsys.readouterr().err
    assert two_calls == one_calls  # no survey worked twice
    folders = sorted(p.parent.name for p in (tmp_path / "one").glob("*/survey.json"))
    assert len(folders) == 3
    for name in folders:  # every survey's outputs, in the folder the user named, as one process writes them
        one = json.loads((tmp_path / "one" / name / "survey.json").read_text())
        two = json.loads((tmp_path / "two" / name / "survey.json").read_text())
        assert two["content"] == one["content"]
    log = (tmp_path / "two" / "worker-1.log").read_text()
    by_helper = {name for name in folders if f"{name}/survey.md" in log}
    by_parent = {name for name in folders if f"{name}/survey.md" in parent_said}
    assert by_helper, log  # the helper process worked at least one survey itself
    assert by_helper | by_parent == set(folders) and not by_helper & by_parent  # each written once
    assert not (tmp_path / "two" / "worker-2.log").exists()
    # Run again: every survey is finished; their outputs are written again, once each, by this process.
    capsys.readouterr()
    with scripted_server() as stub:
        assert run(corpus, tmp_path / "two", stub.base_url, "--processes", "2") == 0
        assert stub.chat_requests == []
    again = capsys.readouterr().err
    assert all(f"{name}/survey.md" in again for name in folders), again
    assert "survey.md" not in (tmp_path / "two" / "worker-1.log").read_text()


def test_stopping_the_run_stops_its_helper_processes(tmp_path: Path) -> None:
    """SIGTERM to the command (a container stop, kill): its helpers stop with it, none works on unattended."""
    import os
    import signal
    import subprocess
    import sys
    import time

    corpus = three_surveys(tmp_path / "job.jsonl")
    out = tmp_path / "out"

    def slower(stage: str, request: dict[str, Any]) -> None:
        threading.Event().wait(0.5)

    with scripted_server(fault=slower) as stub:
        parent = subprocess.Popen([sys.executable, "-m", "llmxmr.cli", "run", str(corpus), "-o", str(out),
                                   "--model", "openai:scripted", "--base-url", stub.base_url, *TINY,
                                   "--parallel-surveys", "3", "--processes", "2"],
                                  env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120  # until both processes ask: three surveys' first requests
            while time.monotonic() < deadline and len(stub.chat_requests) < 12:
                time.sleep(0.2)
            assert (out / "worker-1.log").is_file() and len(stub.chat_requests) >= 12
            parent.send_signal(signal.SIGTERM)
            _, err = parent.communicate(timeout=60)
        finally:
            parent.kill()
        assert parent.returncode == 1 and "Resume with" in err, err
        time.sleep(1.5)  # answers in flight when it stopped may still arrive
        seen = len(stub.chat_requests)
        time.sleep(3)
        assert len(stub.chat_requests) == seen  # nothing asks any more: the helper stopped too


def test_surveys_run_at_once_report_their_progress_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three surveys share one console: every progress line names its survey (its folder), and each
    survey's counts are its own (three surveys of 4 documents: map 4/4 each, never 12/4)."""
    corpus = three_surveys(tmp_path / "job.jsonl")
    with scripted_server() as stub:
        code = cli.main(["run", str(corpus), "-o", str(tmp_path / "out"), "--model", "openai:scripted",
                         "--base-url", stub.base_url, *[a for a in TINY if a != "-q"], "--parallel-surveys", "3"])
    assert code == 0
    folders = sorted(p.parent.name for p in (tmp_path / "out").glob("*/survey.json"))
    assert len(folders) == 3
    lines = [ln for ln in capsys.readouterr().err.splitlines() if " done, " in ln]
    assert lines
    named = {ln.split("] ", 1)[1].split(" ", 1)[0] for ln in lines}
    assert named == set(folders), named  # every line names a survey, and every survey has lines
    papers = len(json.loads(CORPUS.read_text().splitlines()[0])["papers"])
    for name in folders:
        maps = [ln for ln in lines if f"] {name} map " in ln]
        assert maps and maps[-1].split(f"] {name} map ", 1)[1].startswith(f"{papers}/{papers} done"), maps
