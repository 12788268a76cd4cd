"""Re-running the same `llmxmr run` command resumes an unfinished thread, with the connection settings of
the new command (here a new base URL), and reports a finished one without any model call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmxmr import cli
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


pytestmark = pytest.mark.usefixtures("offline_env")


def test_rerun_resumes_on_the_new_base_url_then_reports_the_finished_thread(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    gone = {"status": 404, "body": {"error": {"message": "model not found"}}}

    def run(base_url: str) -> int:
        return cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url", base_url, *TINY])

    with scripted_server(fault=lambda stage, req: gone if stage == "feedback" else None) as broken:
        assert run(broken.base_url) == 1  # stopped at feedback, progress saved
        # Judge bodies may repeat by design: block end re-scores O_b with a fresh call (another candidate index).
        delivered = {json.dumps(r["body"]["messages"], sort_keys=True) for r in broken.chat_requests
                     if not r["body"]["messages"][0]["content"].startswith(("Task: feedback", "Task: judge"))}
    assert "llmxmr resume" in capsys.readouterr().err

    with scripted_server() as healthy:
        assert run(healthy.base_url) == 0
        resumed = [json.dumps(r["body"]["messages"], sort_keys=True) for r in healthy.chat_requests]
    assert delivered and resumed
    assert not delivered & set(resumed)  # nothing answered before the stop is paid again
    assert any('"Task: feedback' in body for body in resumed)  # the failed stage went to the new server
    assert (out / "survey.md").is_file()

    with scripted_server() as idle:  # finished: its outputs are written again without a model call
        assert run(idle.base_url) == 0
        assert idle.chat_requests == []
