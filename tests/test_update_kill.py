"""Kill-and-resume of an update: a real `llmxmr update` subprocess over the scripted loopback stub is
SIGKILLed by the stub right after its K-th delivered response, in the middle of the update's paid calls,
then finished by `llmxmr resume` against a NEW stub. The stubs' request logs prove that no request whose
response had been delivered before the kill is sent again, and the resumed version equals an uninterrupted
update's. The kill point is made exact as in tests/test_resume_kill.py (its KillAfter hooks)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_resume_kill import (
    CORPUS,
    body_key,
    cli_env,
    delivered,
    llmxmr,
    paid_twice,
    run_killed,
)
from test_update_cli import more_jsonl

from llmxmr.testing.responder import stage_of
from llmxmr.testing.scripted_server import scripted_server

SMALL = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1",
         "--set", "max_concurrency=4"]
UPDATE_STAGES = {"map", "digest", "write_section", "polish", "verify", "repair"}


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite run database (its WAL included)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished first run (its database kept as `finished`), then one uninterrupted update of it
    (in-process: the same CLI code): the update's request bodies, stages and resulting files."""
    from llmxmr import cli

    tmp = tmp_path_factory.mktemp("update-baseline")
    out, db = tmp / "out", tmp / "runs.sqlite"
    more = more_jsonl(tmp / "more.jsonl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "x")
        with scripted_server() as stub:
            model = ["--model", "openai:scripted", "--base-url", stub.base_url]
            assert cli.main(["run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t1", "-q", *model, *SMALL]) == 0
            copy_db(db, tmp / "finished.sqlite")
            start = len(stub.chat_requests)
            assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--add", str(more), "--refine", "never",
                             "-q", "--base-url", stub.base_url]) == 0
            update = stub.chat_requests[start:]
    return {"finished": tmp / "finished.sqlite", "more": more, "calls": len(update),
            "stages": [stage_of(r["body"]["messages"]) for r in update],
            "bodies": Counter(body_key(r["body"]) for r in update),
            "content": json.loads((out / "survey.json").read_text())["content"],
            "changelog": (out / "CHANGELOG.md").read_text()}


def test_an_update_killed_midway_is_finished_by_resume_paying_nothing_twice(baseline: dict[str, Any],
                                                                             tmp_path: Path) -> None:
    assert baseline["calls"] >= 6 and set(baseline["stages"]) <= UPDATE_STAGES
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    copy_db(baseline["finished"], db)
    k = baseline["calls"] // 2  # the K-th response lies in the middle of the update's calls
    proc, err1, killer, stub1 = run_killed(["update", "t1", "--db", str(db), "-o", str(out), "--add", str(baseline["more"]),
                                            "--refine", "never"], k, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, err1
    assert killer.kth is not None and not (out / "CHANGELOG.md").exists()
    before = delivered(stub1)
    assert k <= len(before) < baseline["calls"]  # killed midway: some of the update's calls paid, some not

    with scripted_server() as stub2:  # a NEW server (new port): resume takes --base-url
        res = subprocess.run(llmxmr("resume", "t1", "--db", str(db), "-o", str(out), "-q", "--base-url", stub2.base_url),
                             check=False, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    again = paid_twice(baseline["bodies"], before, stub2.chat_requests)
    assert again == [], f"re-sent after resume: {again}"
    assert stub2.chat_requests  # the resume paid for the rest...
    assert len(before) + len(stub2.chat_requests) <= baseline["calls"]  # ...and not more than one update in all
    assert json.loads((out / "survey.json").read_text())["content"] == baseline["content"]
    assert (out / "CHANGELOG.md").read_text() == baseline["changelog"]
