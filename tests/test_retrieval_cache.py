"""The per-process cache of passage indexes (llmxmr.retrieval): surveys run at once in one process
(`--parallel-surveys`) must not evict each other's indexes, or every claim check rebuilds one."""

from __future__ import annotations

import pytest

from llmxmr import retrieval
from llmxmr.retrieval import INDEX_CACHE, index_for


@pytest.fixture(autouse=True)
def empty_cache():
    retrieval.forget_all()
    yield
    retrieval.forget_all()


def counting_loader(built: list[tuple[str, str]], run: str, pid: str):
    def load() -> tuple[str, list[tuple[int, int]]]:
        built.append((run, pid))
        text = f"paper {pid} of {run} reports caches and queues"
        return text, [(0, len(text))]

    return load


def test_interleaved_runs_keep_their_own_indexes() -> None:
    built: list[tuple[str, str]] = []
    papers = [f"p{i}" for i in range(INDEX_CACHE)]  # each run's papers fill one run's room exactly
    for _ in range(3):  # three rounds of checks, the runs' claims interleaved as parallel surveys do
        for pid in papers:
            for run in ("run-a", "run-b", "run-c"):
                index_for(run, pid, counting_loader(built, run, pid))
    assert len(built) == 3 * INDEX_CACHE  # each paper of each run indexed once


def test_one_run_is_still_bounded() -> None:
    built: list[tuple[str, str]] = []
    for i in range(INDEX_CACHE + 1):
        index_for("run", f"p{i}", counting_loader(built, "run", f"p{i}"))
    index_for("run", "p0", counting_loader(built, "run", "p0"))  # the least recently used went
    assert built.count(("run", "p0")) == 2
    index_for("run", f"p{INDEX_CACHE}", counting_loader(built, "run", f"p{INDEX_CACHE}"))
    assert built.count(("run", f"p{INDEX_CACHE}")) == 1


def test_the_number_of_runs_kept_is_bounded_and_a_finished_run_is_forgotten() -> None:
    built: list[tuple[str, str]] = []
    for r in range(retrieval.INDEX_RUNS + 1):
        index_for(f"run{r}", "p", counting_loader(built, f"run{r}", "p"))
    index_for("run0", "p", counting_loader(built, "run0", "p"))  # the least recently used run went
    assert built.count(("run0", "p")) == 2
    last = f"run{retrieval.INDEX_RUNS}"  # the most recently used run: kept until it is forgotten
    index_for(last, "p", counting_loader(built, last, "p"))
    assert built.count((last, "p")) == 1
    retrieval.forget(last)
    index_for(last, "p", counting_loader(built, last, "p"))
    assert built.count((last, "p")) == 2
