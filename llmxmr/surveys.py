"""Several surveys of one corpus file: K at once in this process, and any number of worker processes (on one
machine or many) on the same job and database without two of them ever working the same survey.

Each survey is a thread of the database, worked only while its lock is held (llmxmr.thread_lock: a file lock
on SQLite, an advisory lock on PostgreSQL). A worker that finds a survey held by another goes on with the
others and comes back to it at the end, then waiting for the lock: by then the other worker has finished it
(its outputs are written again from the database, no model call) or has died, and this worker resumes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUSY = -1  # a job's code when another worker holds its thread
FATAL = (1, 2)  # stopped by an error, bad input: jobs not yet started are not started
SKIPPED = None


@dataclass(frozen=True)
class SurveyJob:
    thread: str
    out: Path
    start: dict[str, Any] = field(default_factory=dict)


def run_surveys(jobs: list[SurveyJob], work: Callable[[SurveyJob, bool], int], *, parallel: int = 1,
                wait: bool = False, come_back: bool = True) -> int:
    """Run `work(job, wait)` for every job, `parallel` at once; the worst exit code (a fatal one wins).

    `work` returns BUSY when another worker holds the job's thread (only asked when `wait` is False); those
    jobs are worked again after the rest with `wait=True`, unless `come_back` is False (a helper process of
    `--processes`, whose parent comes back to them)."""
    stop = threading.Event()

    def one(job: SurveyJob, wait_now: bool) -> int | None:
        if stop.is_set():
            return SKIPPED
        code = work(job, wait_now)
        if code in FATAL:
            stop.set()
        return code

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="survey") as pool:
        codes = list(pool.map(lambda job: one(job, wait), jobs))
        deferred = [job for job, code in zip(jobs, codes, strict=True) if code == BUSY and come_back]
        codes = [c for c in codes if c != BUSY]
        codes += list(pool.map(lambda job: one(job, True), deferred))
    return worst(codes)


def worst(codes: list[int | None]) -> int:
    done = [c for c in codes if c is not SKIPPED]
    fatal = [c for c in done if c in FATAL]
    if fatal:
        return fatal[0]
    return max(done, default=0)
