"""CPU seconds per model call, of the pipeline process and of the mock: `python bench/cpu_per_call.py`.

One survey of `--docs` x `--tokens` (bench/scale_out.py's corpus, default mode, SQLite, 20 in flight) at zero
latency against bench/mock.py, `--repeats` times. For each run it reports the pipeline worker's user+sys CPU
over the graph run (`resource.getrusage`, as bench/scale_out.py's worker measures it, here after the costs
paid once per process: importing the client stack and loading the tokenizer, `warm_cpu_s`) and the mock's user+sys
CPU while it served (from /proc/PID/stat, after it started listening and before it is stopped), each divided
by the calls the mock logged. CPU seconds, not wall: other processes on a shared machine change the wall of
a run, hardly the CPU it needs. Medians over the repeats.

It also prints what must not change when the code is made cheaper: calls, prompt, completion and cached
tokens, and a digest of the multiset of request bodies the mock received (the mock hashes each body), so a
before/after pair shows the same requests were sent and the same answers counted.

    python bench/cpu_per_call.py --repeats 3 [--no-prefix-cache] [--docs 60 --tokens 3000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.config import CAP
from bench.run import Mock, log_summary
from bench.run import run_worker as run_bench_worker
from bench.scale_out import corpus


def process_cpu_s(pid: int) -> float:
    """user+sys CPU seconds of a live process (/proc/PID/stat fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bodies_digest(entries: list[dict[str, Any]]) -> str:
    """The multiset of request bodies (order-free: parallel requests arrive in any order)."""
    return hashlib.sha256("\n".join(sorted(e["body_sha"] for e in entries)).encode()).hexdigest()[:16]


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """bench/scale_out.py's worker after the costs paid once per process, which it would count as the run's:
    importing the client stack and loading the tokenizer's vocabulary (`warm_cpu_s`)."""
    import resource

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    import langchain_openai  # noqa: F401

    from llmxmr.models.tokens import count_tokens
    from llmxmr.runs import graph_for  # noqa: F401

    count_tokens("warm")
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    from bench.scale_out import worker as run

    res = run(cfg)
    res["warm_cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return res


def run_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    return run_bench_worker(cfg, script=Path(__file__).resolve())


def one_run(path: Path, work: Path, prefix_cache: bool) -> dict[str, Any]:
    mock = Mock(latency=0.0, cap=CAP, log_dir=work, prefix_cache=prefix_cache)
    try:
        mock_cpu0 = process_cpu_s(mock.proc.pid)  # after it listens: its imports and start are not serving
        res = run_worker({"corpus": str(path), "db": "sqlite", "base_url": mock.base_url})
        mock_cpu = process_cpu_s(mock.proc.pid) - mock_cpu0
    finally:
        entries = mock.stop()
    log = log_summary(entries)
    calls = log["calls"] or 1
    return {"calls": log["calls"], "pipeline_cpu_s": res["cpu_s"], "warm_cpu_s": res["warm_cpu_s"], "mock_cpu_s": mock_cpu,
            "pipeline_ms_per_call": 1000 * res["cpu_s"] / calls, "mock_ms_per_call": 1000 * mock_cpu / calls,
            "prompt_tokens": log["prompt_tokens"], "completion_tokens": log["completion_tokens"],
            "cached_tokens": log["cached_tokens"], "bodies": bodies_digest(entries),
            "article_chars": res["article_chars"], "stop_reason": res["stop_reason"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="CPU seconds per model call of the pipeline and of the mock.")
    ap.add_argument("--docs", type=int, default=60)
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-prefix-cache", action="store_true", help="the mock without its prefix-cache accounting")
    ap.add_argument("--out", help="write the runs and medians here as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    work = Path(tempfile.mkdtemp(prefix="llmxmr-cpu-"))
    path, _, _ = corpus(work, args.docs, args.tokens)
    runs = []
    for r in range(args.repeats):
        run = one_run(path, work, prefix_cache=not args.no_prefix_cache)
        runs.append(run)
        print(f"run {r + 1}/{args.repeats}: " + json.dumps(run), flush=True)
    keys = ("pipeline_cpu_s", "warm_cpu_s", "mock_cpu_s", "pipeline_ms_per_call", "mock_ms_per_call")
    medians = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    print("median: " + json.dumps(medians))
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": runs, "median": medians}, indent=1))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
