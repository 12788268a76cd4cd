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


def test_a_changed_title_is_a_new_run_not_the_old_article(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, topic in enumerate(("locks guard shared state", "queues pass work between threads")):
        (folder / f"d{i}.md").write_text(f"# Doc {i}\n\nThis document explains how {topic}.\n")
    out = tmp_path / "out"
    with scripted_server() as server:
        for title in ("Concurrency primitives", "Threads in practice"):
            assert cli.main(["run", str(folder), "-o", str(out), "--title", title, "--model", "openai:scripted",
                             "--base-url", server.base_url, *TINY]) == 0
            assert (out / "survey.md").read_text().startswith(f"# {title}")
    assert "already complete" not in capsys.readouterr().err


def test_plan_prints_to_stdout_and_lists_skipped_files(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.md").write_text("One document about locks.\n")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "notes.xyz").write_text("x")
    assert cli.main(["plan", str(tmp_path), "--title", "T"]) == 0
    captured = capsys.readouterr()
    assert "plan: T (1 paper," in captured.out and "1 papers" not in captured.out
    assert "skipped empty.md: empty document" in captured.out and "skipped notes.xyz" in captured.out
    assert captured.err == ""


def test_settings_shows_every_default_per_mode(capsys) -> None:
    from llmxmr.state.context import CONTEXT_FIELDS, effective_defaults

    rows = effective_defaults()
    assert [r[0] for r in rows] == list(CONTEXT_FIELDS)
    assert all(value and value != "None" for _, *values, _ in rows for value in values)
    assert ("max_blocks", "3", "1") == rows[CONTEXT_FIELDS.index("max_blocks")][:3]
    assert cli.main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "mode=reference" in out and "unlimited" in out and "= model" in out
