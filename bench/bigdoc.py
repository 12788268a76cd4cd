"""One huge document (issue 16 §5): peak RSS and wall of `llmxmr plan` and of a run on a corpus of one
document of `--mb` megabytes, against the benchmark mock at zero latency.

    python bench/bigdoc.py --mb 200 [--work DIR] [--context-window 128000]

Each command runs in its own process through the CLI, as a user runs it; its peak RSS is that process's
`ru_maxrss` (os.wait4), the mock's own memory is not counted. Prints one JSON line per command and a summary.
The goal is RSS <= 1 GB for 200 MB (it was 6 GB for `plan` and 6.5 GB for the run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/bigdoc.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Mock, _env

VOCAB = ("lock", "queue", "thread", "scheduler", "latency", "throughput", "fairness", "kernel", "process",
         "signal", "pipe", "buffer", "cache", "memory", "page", "fault", "interrupt", "epoch", "barrier", "mutex")
# Settings that keep the call count small: the subject is the document's size, not refinement.
SMALL = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1"]


def write_document(path: Path, megabytes: float) -> int:
    """An ASCII text of paragraphs of sentences, written in pieces (the generator holds one paragraph)."""
    target, size, i = int(megabytes * 1_000_000), 0, 0
    with path.open("w", encoding="ascii") as f:
        f.write("# Scheduling under contention: a very long report\n\n")
        while size < target:
            words = [VOCAB[(i * 7 + k * 3) % len(VOCAB)] + str((i + k) % 97) for k in range(80)]
            para = ". ".join(" ".join(words[j:j + 16]).capitalize() for j in range(0, 80, 16)) + ".\n\n"
            f.write(para)
            size += len(para)
            i += 1
    return path.stat().st_size


def measured(cmd: list[str]) -> dict[str, float | int]:
    """Run `cmd`; its exit code, wall seconds and peak RSS in MB (this child only)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    out: dict[str, float | int] = {"exit": code, "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}
    if code not in (0, 3):
        print(err[-2000:], file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200.0, help="size of the one document in MB (default 200)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the corpus and the run (default: a temp folder)")
    ap.add_argument("--context-window", type=int, default=None, help="the mock model's context window (default: the provider's)")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="llmxmr-bigdoc-"))
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    doc_bytes = write_document(corpus / "report.md", args.mb)
    window = ["--set", f"context_window={args.context_window}"] if args.context_window else []
    cli = [sys.executable, "-m", "llmxmr.cli"]
    results = {"document_bytes": doc_bytes}
    results["plan"] = measured([*cli, "plan", str(corpus), *SMALL, *window])
    print(json.dumps({"plan": results["plan"]}), flush=True)
    mock = Mock(latency=0.0, log_dir=work)
    try:
        results["run"] = measured([*cli, "run", str(corpus), "-o", str(work / "out"), "--model", "openai:mock",
                                   "--base-url", mock.base_url, "-q", *SMALL, *window])
    finally:
        calls = len(mock.stop())
    results["run"]["calls"] = calls
    db = work / "out" / "runs.sqlite"
    results["run"]["db_mb"] = round(db.stat().st_size / 1e6, 1) if db.exists() else None
    print(json.dumps({"run": results["run"]}), flush=True)
    print(json.dumps(results))
    return 0 if all(results[k]["exit"] in (0, 3) for k in ("plan", "run")) else 1


if __name__ == "__main__":
    sys.exit(main())
