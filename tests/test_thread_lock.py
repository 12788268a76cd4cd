"""One process per thread (issue 16 §1): two `llmxmr run` processes on one database and corpus never both
work the thread, and a SIGKILLed holder leaves no lock behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from llmxmr import cli
from llmxmr.testing.scripted_server import scripted_server
from llmxmr.thread_lock import ThreadBusyError, hold_thread, lock_path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "GOOGLE_API_KEY")}
    env.update(OPENAI_API_KEY="x", PYTHONUNBUFFERED="1")
    return env


def llmxmr(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmxmr.cli", *args]


class HoldFirst:
    """Fault hook: the first request is held until `release` (the run holding the thread is mid-work)."""

    def __init__(self) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.seen = False

    def fault(self, stage: str, request: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            first, self.seen = not self.seen, True
        if first:
            self.arrived.set()
            self.release.wait(60)
        return None


pytestmark = pytest.mark.usefixtures("offline_env")


def one_run_calls(tmp_path: Path) -> int:
    with scripted_server() as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(tmp_path / "base"), "--model", "openai:scripted",
                         "--base-url", stub.base_url, *TINY])
        assert code == 0
        return len(stub.chat_requests)


def test_two_processes_on_one_thread_only_one_works_it(tmp_path: Path) -> None:
    expected = one_run_calls(tmp_path)
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    hold = HoldFirst()
    with scripted_server(fault=hold.fault) as stub:
        cmd = ["run", str(CORPUS), "-o", str(out), "--db", str(db), "--model", "openai:scripted",
               "--base-url", stub.base_url, *TINY]
        first = subprocess.Popen(llmxmr(*cmd), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        try:
            assert hold.arrived.wait(60), "the first run never called the model"
            second = subprocess.run(llmxmr(*cmd), env=cli_env(), capture_output=True, text=True, timeout=60, check=False)
            waiter = subprocess.Popen(llmxmr(*cmd, "--wait"), env=cli_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        finally:
            hold.release.set()
        _, err1 = first.communicate(timeout=120)
        _, err3 = waiter.communicate(timeout=120)
        calls = len(stub.chat_requests)
    assert first.returncode == 0, err1
    assert second.returncode == 2, second.stderr
    message = " ".join(second.stderr.split())
    assert f"process {first.pid} on {socket.gethostname()} since" in message
    assert "Traceback" not in second.stderr
    assert waiter.returncode == 0, err3  # waited, then found the thread finished: outputs only
    assert calls == expected  # exactly one run's answers between the three processes
    assert (out / "survey.md").is_file()


def test_sigkilled_holder_leaves_no_lock_that_blocks_resume(tmp_path: Path) -> None:
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    hold = HoldFirst()
    with scripted_server(fault=hold.fault) as stub:
        proc = subprocess.Popen(llmxmr("run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t1",
                                       "--model", "openai:scripted", "--base-url", stub.base_url, *TINY),
                                env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert hold.arrived.wait(60)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            hold.release.set()
    assert proc.returncode == -signal.SIGKILL
    assert lock_path(db, "t1").exists()  # the file stays; its lock died with the process
    with scripted_server() as healthy:
        code = cli.main(["resume", "t1", "--db", str(db), "-o", str(out), "-q", "--base-url", healthy.base_url])
    assert code == 0
    assert (out / "survey.md").is_file()


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    with hold_thread(db, "a.b"):
        with pytest.raises(ThreadBusyError, match=f"process {os.getpid()} on"):
            with hold_thread(db, "a.b"):
                pass
        with hold_thread(db, "a_b"):  # another thread of the same database is free
            pass
    with hold_thread(db, "a.b"):
        pass


def test_surveys_opening_a_new_database_together_do_not_race(tmp_path: Path) -> None:
    """--parallel-surveys opens one new SQLite file from several threads at once: LangGraph's table
    migrations must run one at a time (before the setup lock: duplicate column, UNIQUE failed, locked)."""
    from llmxmr.runs import open_database

    errors: list[str] = []

    def open_it(path: Path) -> None:
        try:
            with open_database(path) as db:
                db.store.put(("t",), "k", {"v": 1})
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc))

    for trial in range(10):
        path = tmp_path / f"t{trial}" / "runs.sqlite"
        threads = [threading.Thread(target=open_it, args=(path,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
