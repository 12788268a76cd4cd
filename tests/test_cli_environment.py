"""The environment's faults through the CLI (issue 15): an output folder or database that cannot be used,
a database locked by another process or that is not one, a disk that fills up mid-run. Each is one line
naming the problem and the fix with its documented exit code, never a traceback; a full disk is resumable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmxmr import cli, runs
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]

pytestmark = pytest.mark.usefixtures("offline_env")


def _run(out: Path, *extra: str, base_url: str = "http://127.0.0.1:9/v1") -> int:
    return cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url", base_url,
                     *TINY, *extra])


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "Fix:" in err, err
    return err


def test_out_is_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert _run(tmp_path / "f") == 2
    assert "-o " + str(tmp_path / "f") + " is an existing file, not a folder" in _one_line(capsys)


def test_out_lies_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert _run(tmp_path / "f" / "out") == 2
    assert f"lies under {tmp_path / 'f'}, which is a file" in _one_line(capsys)


def test_out_cannot_be_created(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(Path("/proc/llmxmr-test-out")) == 2  # /proc takes no new folders, not even from root
    assert "cannot write to the output folder -o /proc/llmxmr-test-out" in _one_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_is_read_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    assert _run(folder) == 2
    assert "cannot write to the output folder" in _one_line(capsys)


def test_db_folder_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path / "out", "--db", "/proc/llmxmr-test/runs.sqlite") == 2
    assert "cannot write to the folder of --db /proc/llmxmr-test/runs.sqlite" in _one_line(capsys)


def test_db_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path / "out", "--db", str(tmp_path)) == 2
    assert f"--db {tmp_path} is a folder, not a file" in _one_line(capsys)


def test_db_is_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "notes.sqlite"
    db.write_text("these are my notes, not a database\n" * 50)
    assert _run(tmp_path / "out", "--db", str(db)) == 2
    assert f"{db} is not an llmxmr run database" in _one_line(capsys)
    assert db.read_text().startswith("these are my notes")  # left as it was


def test_db_locked_by_another_process(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "runs.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE'); c.execute('CREATE TABLE t(x)')\n"
        "print('locked', flush=True); sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(runs, "BUSY_TIMEOUT_MS", 200)
        assert _run(tmp_path / "out", "--db", str(db)) == 2
        assert f"the run database {db} is locked by another process" in _one_line(capsys)
    finally:
        holder.communicate("")


def test_disk_full_mid_run_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A real SQLITE_FULL: the database may not grow past 60 pages (a finished run of this corpus needs ~130).
    connect = runs._connect

    def small_disk(path: Path):
        conn = connect(path)
        conn.execute("PRAGMA max_page_count=60")
        return conn

    out = tmp_path / "out"
    with scripted_server() as server:
        monkeypatch.setattr(runs, "_connect", small_disk)
        assert _run(out, base_url=server.base_url) == 1
        first = len(server.chat_requests)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[0] == (f"error: the disk is full (writing {out / 'runs.sqlite'} or the output files). "
                                   "Fix: free some space, then run the same command again: it resumes where it stopped")
    assert "llmxmr resume" in err
    monkeypatch.setattr(runs, "_connect", connect)  # space freed
    with scripted_server() as server:
        assert _run(out, base_url=server.base_url) == 0
        second = len(server.chat_requests)
    assert (out / "survey.md").is_file()
    with scripted_server() as server:  # a whole run from scratch, for comparison
        assert _run(tmp_path / "fresh", base_url=server.base_url) == 0
        whole = len(server.chat_requests)
    assert first > 0 and second < whole  # the re-run resumed: what was recorded was not asked again
