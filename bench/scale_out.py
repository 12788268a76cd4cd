"""Benchmarks of issue 12 (beyond one machine): `python bench/scale_out.py --only PARTS [--quick]`.

Parts (each a fresh worker subprocess per run, against bench/mock.py over loopback, like bench/run.py):
- `db`: SQLite vs PostgreSQL at 60 x 3,000 and at 250 x 4,000 (1M) tokens, zero latency: wall, peak RSS,
  calls, and database size / corpus size (PostgreSQL: the llmxmr tables' total relation size).
- `async`: sync `stream` vs async `astream` (AsyncPostgresSaver + AsyncPostgresStore) at zero latency on
  PostgreSQL, 60 x 3,000: the framework's overhead per call.
- `surveys`: 8 surveys of 60 x 3,000 at 1 s per call through the CLI: `--parallel-surveys 8` (in one process,
  and in two with `--processes 2`) vs one after
  another, and one survey alone (goal: parallel <= 1.3 x one survey, the request cap not binding). The mock
  runs without its prefix-cache accounting here (`--no-prefix-cache`: tokenising every prompt for it cost
  CPU on the cores the client under test shares, and this part reads no cached tokens).
- `ten`: ten million tokens (2,500 x 4,000) vs 1M (250 x 4,000) at zero latency on SQLite: completes, peak
  RSS, database / corpus, calls and wall ratios, and the largest prompt of each stage (must not grow with N).

Every result of `db` and `ten` records its calls per stage (`calls_by_stage`, from the mock's request log)
and the refinement's last block index (`last_block`, from the final state), and `ten` the ratio per stage,
so that the 1M -> 10M calls ratio can be split: map grows with the corpus alone, digest with the corpus
times the blocks run, the refinement stages with the blocks run before the stop rule fired.

PostgreSQL runs use a throw-away server (llmxmr.testing.postgres_server). Results go to
bench/results/scale_out.json (or --out); `--quick` shrinks every size for a smoke check. Wall-clock figures
are only meaningful on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.config import CAP, QUICK_SET, RESULTS_DIR
from bench.run import Mock, _env, log_summary, peak_rss_mb
from bench.run import run_worker as run_bench_worker

PG_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations", "store",
             "store_migrations")


# ------------------------------------------------------------------------------------------------ worker
def pg_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "AND c.relname = ANY(%s)", (list(PG_TABLES),)).fetchone()[0])


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """One pipeline run in this process: cfg {corpus, db ("sqlite" or a URL), async, base_url, set}."""
    from llmxmr.runs import (
        RECURSION_LIMIT,
        graph_for,
        open_async_database,
        open_database,
        stream_config,
    )
    from llmxmr.state.context import Context

    tmp = Path(tempfile.mkdtemp(prefix="llmxmr-scale-"))
    target = str(tmp / "runs.sqlite") if cfg["db"] == "sqlite" else cfg["db"]
    ctx = Context(mode="default", model="openai:mock", base_url=cfg["base_url"], max_concurrency=CAP,
                  **cfg.get("set", {}))
    config = {"configurable": {"thread_id": "bench"}, "max_concurrency": CAP, "recursion_limit": RECURSION_LIMIT}
    payload = {"corpus_path": cfg["corpus"]}

    async def run_async() -> tuple[float, dict[str, Any]]:
        async with open_async_database(target) as db:
            graph = graph_for(db)
            t = time.perf_counter()
            async for _ in graph.astream(payload, config, context=ctx, stream_mode="custom"):
                pass
            wall = time.perf_counter() - t
            return wall, (await graph.aget_state(config)).values

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    if cfg.get("async"):
        wall, values = asyncio.run(run_async())
    else:
        with open_database(target) as db:
            graph = graph_for(db)
            t = time.perf_counter()
            for _ in graph.stream(payload, stream_config(config), context=ctx, stream_mode="custom"):
                pass
            wall = time.perf_counter() - t
            values = graph.get_state(config).values
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    if cfg["db"] == "sqlite":
        db_bytes = sum(p.stat().st_size for p in tmp.iterdir() if p.name.startswith("runs.sqlite"))
    else:
        db_bytes = pg_bytes(target)
    report = values.get("report") or {}
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return {"wall_s": wall, "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
            "peak_rss_mb": peak_rss_mb(), "db_bytes": db_bytes,
            "stop_reason": report.get("stop_reason"), "last_block": values.get("block"),
            "article_chars": len(values.get("article") or "")}


def run_worker(cfg: dict[str, Any], timeout: float = 14400) -> dict[str, Any]:
    return run_bench_worker(cfg, timeout, script=Path(__file__).resolve())


# ------------------------------------------------------------------------------------------------ parts
def corpus(work: Path, n: int, tokens: int, surveys: int = 1) -> tuple[Path, int, int]:
    """(path, tokens of all documents, bytes of the file): `surveys` lines, each its own documents."""
    from bench.corpus import corpus_tokens, make_corpus

    path = work / f"corpus-{surveys}x{n}x{tokens}.jsonl"
    if not path.exists():
        lines = [json.dumps(make_corpus(n, tokens, seed=s, title=f"Survey {s + 1} of systems research"),
                            ensure_ascii=False) for s in range(surveys)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, corpus_tokens(path), path.stat().st_size


def measure(label: str, path: Path, *, db: str, latency: float = 0.0, use_async: bool = False,
            sets: dict[str, Any] | None = None, work: Path) -> dict[str, Any]:
    mock = Mock(latency=latency, cap=CAP, log_dir=work, shape="2,1" if sets else None)
    try:
        res = run_worker({"corpus": str(path), "db": db, "async": use_async, "base_url": mock.base_url,
                          "set": sets or {}})
    finally:
        entries = mock.stop()
    log = log_summary(entries)
    res.update(calls=log["calls"], calls_by_stage=calls_by_stage(log), max_prompt_by_stage=log["max_prompt_by_stage"],
               max_inflight=log["max_inflight"])
    print(f"  {label}: wall {res['wall_s']:.2f} s, calls {res['calls']}, rss {res['peak_rss_mb']:.0f} MB, "
          f"db {res['db_bytes'] / 1e6:.1f} MB", flush=True)
    return res


def calls_by_stage(log: dict[str, Any]) -> dict[str, int]:
    return {stage: v["calls"] for stage, v in log["stages"].items()}


def part_db(work: Path, quick: bool, pg: Any) -> dict[str, Any]:
    out = {}
    for n, t in ((3, 400), (6, 400)) if quick else ((60, 3000), (250, 4000)):
        path, toks, size = corpus(work, n, t)
        for kind in ("sqlite", "postgres"):
            db = "sqlite" if kind == "sqlite" else pg.new_database(f"db_{n}_{t}_{int(time.time())}")
            res = measure(f"db {kind} {n}x{t}", path, db=db, sets=QUICK_SET if quick else None, work=work)
            res.update(corpus_tokens=toks, corpus_bytes=size, db_over_corpus=res["db_bytes"] / size)
            out[f"{kind}-{n}x{t}"] = res
    return out


def part_async(work: Path, quick: bool, pg: Any) -> dict[str, Any]:
    n, t = (3, 400) if quick else (60, 3000)
    path, _, _ = corpus(work, n, t)
    out = {}
    for use_async in (False, True):
        db = pg.new_database(f"async_{int(use_async)}_{int(time.time())}")
        res = measure(f"{'async' if use_async else 'sync'} {n}x{t}", path, db=db, use_async=use_async,
                      sets=QUICK_SET if quick else None, work=work)
        res["wall_per_call_ms"] = 1000 * res["wall_s"] / max(1, res["calls"])
        out["async" if use_async else "sync"] = res
    return out


def cli_run(path: Path, out: Path, base_url: str, *extra: str) -> float:
    env = {**_env(), "OPENAI_API_KEY": "x"}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmxmr.cli", "run", str(path), "-o", str(out), "-q",
                           "--model", "openai:mock", "--base-url", base_url, *extra],
                          capture_output=True, text=True, env=env, timeout=14400, check=False)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"llmxmr run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall


def part_surveys(work: Path, quick: bool) -> dict[str, Any]:
    k = 8
    n, t, lat = (3, 400, 0.05) if quick else (60, 3000, 1.0)
    quick_sets = [x for key, v in QUICK_SET.items() for x in ("--set", f"{key}={v}")] if quick else []
    one, _, _ = corpus(work, n, t, surveys=1)
    many, toks, _ = corpus(work, n, t, surveys=k)
    out: dict[str, Any] = {"surveys": k, "n": n, "tokens": t, "latency": lat, "corpus_tokens": toks}
    runs = (("one survey", one, ["--set", f"max_concurrency={CAP}"]),
            ("sequential", many, ["--set", f"max_concurrency={CAP}", "--parallel-surveys", "1",
                                  "--max-in-flight", str(CAP)]),
            ("parallel", many, ["--set", f"max_concurrency={CAP}", "--parallel-surveys", str(k),
                                "--max-in-flight", str(CAP * k)]),
            # The same, the client's work on both cores: two processes with 4 surveys and 80 requests each.
            ("parallel, 2 processes", many, ["--set", f"max_concurrency={CAP}", "--parallel-surveys", str(k),
                                             "--max-in-flight", str(CAP * k), "--processes", "2"]))
    for label, path, extra in runs:
        cap = CAP * k if label.startswith("parallel") else CAP  # the server serves what the client may send
        mock = Mock(latency=lat, cap=cap, log_dir=work, shape="2,1" if quick else None, prefix_cache=False)
        try:
            wall = cli_run(path, work / f"out-{label.replace(' ', '-')}", mock.base_url, *extra, *quick_sets)
        finally:
            log = log_summary(mock.stop())
        out[label] = {"wall_s": wall, "calls": log["calls"], "max_inflight": log["max_inflight"]}
        print(f"  surveys {label}: wall {wall:.1f} s, calls {log['calls']}, max in flight {log['max_inflight']}",
              flush=True)
    out["parallel_over_one"] = out["parallel"]["wall_s"] / out["one survey"]["wall_s"]
    out["processes_over_one"] = out["parallel, 2 processes"]["wall_s"] / out["one survey"]["wall_s"]
    return out


def part_ten(work: Path, quick: bool) -> dict[str, Any]:
    sizes = (4, 40) if quick else (250, 2500)
    t = 400 if quick else 4000
    out: dict[str, Any] = {"tokens_per_doc": t}
    for n in sizes:
        path, toks, size = corpus(work, n, t)
        res = measure(f"{n}x{t} ({toks} tokens)", path, db="sqlite", sets=QUICK_SET if quick else None, work=work)
        res.update(corpus_tokens=toks, corpus_bytes=size, db_over_corpus=res["db_bytes"] / size)
        out[str(n)] = res
    small, big = out[str(sizes[0])], out[str(sizes[1])]
    out["ratios"] = {"tokens": big["corpus_tokens"] / small["corpus_tokens"], "calls": big["calls"] / small["calls"],
                     "wall": big["wall_s"] / small["wall_s"],
                     "calls_by_stage": {st: big["calls_by_stage"].get(st, 0) / v
                                        for st, v in small["calls_by_stage"].items() if v},
                     "max_prompt": {st: big["max_prompt_by_stage"].get(st, 0) / v
                                    for st, v in small["max_prompt_by_stage"].items() if v}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Issue 12 benchmarks: PostgreSQL, async, many surveys, 10M tokens.")
    ap.add_argument("--only", default="db,async,surveys,ten", help="comma-separated parts: db,async,surveys,ten")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check, not figures")
    ap.add_argument("--out", default=None, help="results file (default bench/results/scale_out.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    out_path = Path(args.out) if args.out else RESULTS_DIR / "scale_out.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    work = Path(tempfile.mkdtemp(prefix="llmxmr-scale-work-"))
    parts = [p for p in args.only.split(",") if p]
    with ExitStack() as stack:
        pg = None
        if {"db", "async"} & set(parts):
            from llmxmr.testing.postgres_server import postgres_server

            pg = stack.enter_context(postgres_server())
        for part in parts:
            print(f"[{part}]", flush=True)
            if part == "db":
                results["db"] = part_db(work, args.quick, pg)
            elif part == "async":
                results["async"] = part_async(work, args.quick, pg)
            elif part == "surveys":
                results["surveys"] = part_surveys(work, args.quick)
            elif part == "ten":
                results["ten"] = part_ten(work, args.quick)
            else:
                ap.error(f"unknown part {part!r}")
            results[part]["quick"] = args.quick
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=1))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
    sys.exit(main())
