"""`llmxmr run JOB --parallel-surveys K --processes P`: the surveys of one job worked by P processes of this
machine instead of K threads of one.

Why: a survey's client work (the model client library, LangGraph, checkpoints) is Python and holds the GIL,
so K surveys in one process share one core; on a machine with several cores, their wall grows with K even
when the model answers at once. P processes give the client P cores.

How: this process starts P - 1 helper processes running the same command, each with its share of the K
surveys at once and of the request limit (the shares add up to K and to the limit, so the limit holds
across the processes), and works its own share. Every survey is still worked by one process at a time
(the thread lock of llmxmr.thread_lock, as for workers started by hand). A helper leaves the surveys
another process holds; this process comes back to them at the end, as it does for any worker's, and
writes their outputs from the database (or resumes one whose helper died). A helper's output goes to
OUT/worker-N.log; its errors are shown when it fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def shares(processes: int, parallel: int, in_flight: int) -> list[tuple[int, int]]:
    """(surveys at once, requests in flight) for each process, index 0 being this one: as even as they come,
    summing to `parallel` and `in_flight`. No more processes than either allows (each needs one of both)."""
    p = max(1, min(processes, parallel, in_flight))
    return [(parallel // p + (i < parallel % p), in_flight // p + (i < in_flight % p)) for i in range(p)]


def rotated(jobs: Sequence[T], index: int, processes: int) -> list[T]:
    """The job list as process `index` of `processes` walks it: each starts at a different survey, so that
    they do not all reach for the first ones."""
    start = index * len(jobs) // max(1, processes)
    return [*jobs[start:], *jobs[:start]]


def helper_argv(argv: Sequence[str], index: int, processes: int, parallel: int, in_flight: int) -> list[str]:
    """The command line of helper `index`: the user's, with its shares (later flags override earlier ones)."""
    return [sys.executable, "-m", "llmxmr.cli", *argv, "--processes", "1", "--worker-slot", f"{index}/{processes}",
            "--parallel-surveys", str(parallel), "--max-in-flight", str(in_flight), "-q"]


def parse_slot(text: str) -> tuple[int, int]:
    """"I/P" (helper I of P processes) as (I, P)."""
    index, _, processes = text.partition("/")
    return int(index), int(processes)


@dataclass
class Helper:
    index: int
    proc: subprocess.Popen
    log: Path


class Helpers:
    """The helper processes of one run: started together, stopped with this process, waited for at the end."""

    def __init__(self) -> None:
        self.started: list[Helper] = []

    def start(self, argv: Sequence[str], out: Path, plan: list[tuple[int, int]]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        for index, (parallel, in_flight) in enumerate(plan[1:], start=1):
            log = out / f"worker-{index}.log"
            with log.open("w", encoding="utf-8") as sink:  # the child keeps its own descriptor
                proc = subprocess.Popen(helper_argv(argv, index, len(plan), parallel, in_flight), stdin=subprocess.DEVNULL,
                                        stdout=sink, stderr=subprocess.STDOUT)
            self.started.append(Helper(index, proc, log))

    def stop(self) -> None:
        """Stop every helper still running (this process is stopping: they would work on unattended)."""
        for h in self.started:
            if h.proc.poll() is None:
                h.proc.terminate()
        for h in self.started:
            try:
                h.proc.wait(30)
            except subprocess.TimeoutExpired:
                h.proc.kill()

    def wait(self) -> list[tuple[Helper, int]]:
        return [(h, h.proc.wait()) for h in self.started]


def failure_text(helper: Helper, code: int, lines: int = 5) -> str:
    """What a failed helper said last, for this process's error output."""
    try:
        tail = helper.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
    except OSError:
        tail = []
    said = "\n  ".join(tail) if tail else "(nothing)"
    return f"worker process {helper.index} exited {code}; its last lines ({helper.log}):\n  {said}"
