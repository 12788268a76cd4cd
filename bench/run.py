"""The benchmark harness: `python bench/run.py [--quick] [--only PARTS] [--local]`.

Every measured run is a fresh subprocess (a "worker") that imports the project, opens a SQLite
checkpointer + store in a temp dir (`llmxmr.runs.open_database` + `graph_for`), and runs the whole graph
in-process through the real `ChatOpenAI` client over loopback HTTP against `bench/mock.py` (its own
process, so the mock's CPU is not charged to the pipeline). The worker streams `tasks` events (with
subgraphs) to learn LangGraph's supersteps and the model calls of every task, and reports wall time, CPU,
peak RSS, database size and the run report's usage per stage. The mock's request log gives the calls,
tokens, concurrency and over-long answers as the server saw them.

Parts (`--only a,b`): overhead, latency, decode, scale, verify, update, cache, local (`--local` = `--only local`).
Results merge into `bench/results/results.json`; BENCHMARKS.md and bench/results/*.png are rendered from it
(`bench/report.py`),
so running one part refreshes its tables and keeps the others.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.config import (  # noqa: E402 - after sys.path
    CAP,
    DEMO_SET,
    LAT,
    ONE_BLOCK,
    PER_TOKEN,
    QUICK_SET,
    RESULTS_DIR,
    SAME_WORK,
)
from bench.report import plot, render  # noqa: E402

SHAPE: str | None = None  # outline shape of the mock's drafts (None: S = 38); --quick makes it small


# ======================================================================================================
# worker: one pipeline run in this process
# ======================================================================================================
def _writes_of(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    out: dict[str, Any] = {}
    for item in result or []:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            out[item[0]] = item[1]
    return out


def _calls_of(usage: Any) -> int:
    if not isinstance(usage, dict):
        return 0
    return sum(int(u.get("calls", 0)) for u in usage.values() if isinstance(u, dict))


def supersteps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LangGraph supersteps from `tasks` stream events, per namespace (the writer subgraph has its own).

    Every task of a superstep is announced (start) before any of them finishes, and the next superstep
    starts only after all have finished: a start after an end opens a new superstep. The parent's `write`
    task wraps the whole writer subgraph, whose own supersteps are counted instead.
    """
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_ns.setdefault(e["ns"], []).append(e)
    steps: list[dict[str, Any]] = []
    for ns, evs in by_ns.items():
        current: dict[str, Any] | None = None
        for e in evs:
            if e["kind"] == "start":
                if current is None or current["ended"]:
                    current = {"ns": ns, "t0": e["t"], "t1": e["t"], "tasks": {}, "names": {}, "ended": 0}
                    steps.append(current)
                current["tasks"].setdefault(e["id"], 0)
                current["names"][e["id"]] = e["name"]
            elif current is not None and e["id"] in current["tasks"]:
                current["tasks"][e["id"]] = e.get("calls", 0)
                current["ended"] += 1
                current["t1"] = max(current["t1"], e["t"])
    for s in steps:
        if s["ns"] == "":
            for tid, name in list(s["names"].items()):
                if name == "write" and any(x["ns"] for x in steps):
                    s["tasks"][tid] = 0  # the subgraph's own supersteps carry its calls
        s["node"] = ",".join(sorted(set(s["names"].values())))
        s["wall"] = s.pop("t1") - s["t0"]
        del s["ended"]
    steps.sort(key=lambda s: s["t0"])
    return steps


def critical_path(steps: list[dict[str, Any]], cap: int = CAP, latency: float = LAT) -> dict[str, Any]:
    """sum over supersteps that call the model of longest chain x ceil(model tasks / cap) x latency."""
    rows = []
    total = 0.0
    for s in steps:
        chains = [c for c in s["tasks"].values() if c > 0]
        if not chains:
            continue
        bound = max(chains) * math.ceil(len(chains) / cap) * latency
        total += bound
        rows.append({"ns": s["ns"][:12], "node": s["node"], "tasks": len(chains), "chain": max(chains),
                     "calls": sum(chains), "bound": bound, "wall": round(s["wall"], 3)})
    return {"bound": total, "steps": rows}


def _db_breakdown(path: Path) -> dict[str, int]:
    import sqlite3

    out: dict[str, int] = {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for table, expr in (("checkpoints", "length(checkpoint)+length(metadata)"), ("writes", "length(value)"),
                            ("store", "length(value)")):
            try:
                out[table] = int(conn.execute(f"SELECT coalesce(sum({expr}),0) FROM {table}").fetchone()[0])
                out[f"{table}_rows"] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            except sqlite3.Error:
                pass
        try:
            rows = conn.execute("SELECT prefix, sum(length(value)) FROM store GROUP BY prefix").fetchall()
            kinds: dict[str, int] = {}
            for prefix, size in rows:
                parts = str(prefix).split(".")
                kind = parts[2] if len(parts) > 2 else parts[-1]
                kinds[kind] = kinds.get(kind, 0) + int(size or 0)
            out["store_by_kind"] = kinds  # type: ignore[assignment]
        except sqlite3.Error:
            pass
    finally:
        conn.close()
    return out


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    import resource

    t0 = time.perf_counter()
    import langchain_openai  # noqa: F401  (the client of the measured path)

    from llmxmr.runs import RECURSION_LIMIT, graph_for, open_database, stream_config
    from llmxmr.state.context import Context

    t_import = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="llmxmr-bench-", dir=cfg.get("tmpdir")))
    db_path = tmp / "runs.sqlite"
    events: list[dict[str, Any]] = []
    with open_database(db_path) as db:
        t1 = time.perf_counter()
        graph = graph_for(db)
        t_build = time.perf_counter() - t1
        ctx = Context(mode=cfg["mode"], model=cfg.get("model", "openai:mock"), base_url=cfg.get("base_url"),
                      max_concurrency=cfg["max_concurrency"], **cfg.get("set", {}))
        config = {"configurable": {"thread_id": "bench"}, "max_concurrency": cfg["max_concurrency"],
                  "recursion_limit": RECURSION_LIMIT}
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t2 = time.perf_counter()
        # The CLI's stream config (llmxmr.runs.drive): `max_concurrency` nodes at once, plus the stream's waiter.
        for ns, mode, data in graph.stream({"corpus_path": cfg["corpus"]}, stream_config(config), context=ctx,
                                           stream_mode=["tasks"], subgraphs=True):
            t = time.perf_counter() - t2
            if mode != "tasks" or not isinstance(data, dict):
                continue
            ev = {"t": t, "ns": "|".join(ns), "id": data.get("id"), "name": data.get("name")}
            if "input" in data:
                ev["kind"] = "start"
            else:
                ev["kind"] = "end"
                ev["calls"] = _calls_of(_writes_of(data.get("result")).get("usage"))
                ev["error"] = bool(data.get("error"))
            events.append(ev)
        wall = time.perf_counter() - t2
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        values = graph.get_state(config).values
    # The database as a closed run leaves it on disk (closing folds the write-ahead log into the file).
    sizes = {p.name: p.stat().st_size for p in tmp.iterdir() if p.name.startswith("runs.sqlite")}
    breakdown = _db_breakdown(db_path)
    report = values.get("report") or {}
    steps = supersteps(events)
    outline = report.get("outline") or {}

    def count_sections(secs: list[dict]) -> int:
        return sum(1 + count_sections(s.get("children") or s.get("subsections") or []) for s in secs)

    result = {
        "import_s": t_import, "build_s": t_build, "wall_s": wall,
        "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "peak_rss_mb": peak_rss_mb(),
        "db_bytes": sum(sizes.values()), "db_files": sizes, "db_breakdown": breakdown,
        "usage": report.get("usage") or {}, "stop_reason": report.get("stop_reason"),
        "failures": _failure_summary(report.get("failures") or []),
        "sections": count_sections(outline.get("sections") or []),
        "entropy_history": [r for r in report.get("entropy_history") or [] if r.get("kind") in ("block", "final")],
        "blocks": max([r.get("block") or 0 for r in report.get("entropy_history") or [] if r.get("kind") == "block"] or [0]),
        "task_calls": sum(e.get("calls", 0) for e in events if e["kind"] == "end" and not (e["ns"] == "" and e["name"] == "write")),
        "critical_path": critical_path(steps, cfg.get("cap", CAP), 1.0),
        "article_chars": len(values.get("article") or ""),
    }
    import shutil

    keep = os.environ.get("LLMXMR_BENCH_KEEP")  # a folder: copy the run's database there for inspection
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for p in tmp.iterdir():
            shutil.copy2(p, Path(keep) / p.name)
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def _failure_summary(failures: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in failures:
        k = f"{f.get('stage')}:{f.get('kind')}"
        out[k] = out.get(k, 0) + 1
    return out


# ======================================================================================================
# orchestrator
# ======================================================================================================
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LANGSMITH", "LANGCHAIN_TRACING", "OPENAI_API", "GOOGLE_API", "GEMINI_API"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Mock:
    """bench/mock.py as a subprocess with its own request log."""

    def __init__(self, *, latency: float, per_token: float = 0.0, cap: int = CAP, log_dir: Path,
                 shape: str | None = None, prefix_cache: bool = True) -> None:
        fd, name = tempfile.mkstemp(prefix="requests-", suffix=".jsonl", dir=log_dir)
        os.close(fd)
        self.log = Path(name)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "mock.py"), "--latency", str(latency), "--per-token", str(per_token),
             "--max-inflight", str(cap), "--log", str(self.log), *(["--shape", shape] if shape else []),
             *([] if prefix_cache else ["--no-prefix-cache"])],
            stdout=subprocess.PIPE, text=True, env=_env())
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError("the mock did not start")
        self.base_url = json.loads(line)["base_url"]

    def stop(self) -> list[dict[str, Any]]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        entries = [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]
        self.log.unlink(missing_ok=True)
        return entries


def run_worker(cfg: dict[str, Any], timeout: float = 3600, script: Path | None = None) -> dict[str, Any]:
    """`script --worker CFG` (default: this file) in a fresh process; its last stdout line is the result."""
    proc = subprocess.run([sys.executable, str(script or Path(__file__).resolve()), "--worker", json.dumps(cfg)],
                          capture_output=True, text=True, env=_env(), timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def log_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, dict[str, int]] = {}
    for e in entries:
        s = stages.setdefault(e["stage"], {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "over_limit": 0,
                                           "cached_tokens": 0, "prompt_chars": 0, "completion_chars": 0})
        s["calls"] += 1
        s["prompt_tokens"] += e["prompt_tokens"]
        s["completion_tokens"] += e["completion_tokens"]
        s["over_limit"] += int(bool(e.get("over_limit")))
        for k in ("cached_tokens", "prompt_chars", "completion_chars"):  # the prefix cache and the chars/4 unit
            s[k] += int(e.get(k) or 0)
    return {
        "calls": len(entries), "stages": stages,
        "prompt_tokens": sum(e["prompt_tokens"] for e in entries),
        "completion_tokens": sum(e["completion_tokens"] for e in entries),
        "cached_tokens": sum(int(e.get("cached_tokens") or 0) for e in entries),
        "prompt_chars": sum(int(e.get("prompt_chars") or 0) for e in entries),
        "completion_chars": sum(int(e.get("completion_chars") or 0) for e in entries),
        "repeated_bodies": repeated_bodies(entries),
        "max_inflight": max((e["inflight"] for e in entries), default=0),
        "mean_inflight": statistics.fmean([e["inflight"] for e in entries]) if entries else 0,
        "max_prompt_tokens": max((e["prompt_tokens"] for e in entries), default=0),
        "max_prompt_by_stage": {st: max(e["prompt_tokens"] for e in entries if e["stage"] == st) for st in stages},
        "over_limit": sum(int(bool(e.get("over_limit"))) for e in entries),
        "service_s": sum(e["ended"] - e["started"] for e in entries),
        "queued_s": sum(e["started"] - e["arrived"] for e in entries),
        "timeline": _timeline(entries),
    }


def repeated_bodies(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Per stage, requests whose body (hashed by the mock) an earlier request of the run already sent."""
    seen: set[str] = set()
    repeats: dict[str, int] = {}
    for e in sorted(entries, key=lambda e: e["arrived"]):
        h = e.get("body_sha")
        if h is None:
            continue
        if h in seen:
            repeats[e["stage"]] = repeats.get(e["stage"], 0) + 1
        seen.add(h)
    return repeats


def _timeline(entries: list[dict[str, Any]], step: float = 0.5) -> list[tuple[float, int]]:
    if not entries:
        return []
    t0 = min(e["arrived"] for e in entries)
    end = max(e["ended"] for e in entries)
    out = []
    t = t0
    while t <= end:
        out.append((round(t - t0, 2), sum(1 for e in entries if e["started"] <= t < e["ended"])))
        t += step
    return out


def measure(label: str, *, corpus: Path, mode: str, latency: float = 0.0, per_token: float = 0.0,
            sets: dict[str, Any] | None = None, repeats: int = 1, cap: int = CAP, log_dir: Path,
            corpus_tokens: int, timeout: float = 3600) -> dict[str, Any]:
    runs = []
    for r in range(repeats):
        mock = Mock(latency=latency, per_token=per_token, cap=cap, log_dir=log_dir, shape=SHAPE)
        try:
            res = run_worker({"corpus": str(corpus), "mode": mode, "base_url": mock.base_url, "max_concurrency": cap,
                              "cap": cap, "set": sets or {}}, timeout=timeout)
        finally:
            entries = mock.stop()
        res["log"] = log_summary(entries)
        if latency > 0:
            res["critical_path"]["bound_at_latency"] = res["critical_path"]["bound"] * latency
        runs.append(res)
        print(f"  {label} run {r + 1}/{repeats}: wall {res['wall_s']:.2f} s, calls {res['log']['calls']}, "
              f"bound {res['critical_path']['bound']:.0f} rounds, rss {res['peak_rss_mb']:.0f} MB", flush=True)
    walls = [r["wall_s"] for r in runs]
    med = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    summary = {
        "label": label, "mode": mode, "latency": latency, "per_token": per_token, "cap": cap, "sets": sets or {},
        "repeats": repeats, "walls": walls, "wall_median": statistics.median(walls),
        "cpu_median": statistics.median(r["cpu_s"] for r in runs),
        "import_median": statistics.median(r["import_s"] for r in runs),
        "build_median": statistics.median(r["build_s"] for r in runs),
        "corpus_tokens": corpus_tokens, "run": {k: v for k, v in med.items()},
    }
    calls = med["log"]["calls"] or 1
    summary["wall_per_call_ms"] = 1000 * summary["wall_median"] / calls
    summary["cpu_per_call_ms"] = 1000 * summary["cpu_median"] / calls
    if latency > 0 and per_token == 0:
        summary["bound_s"] = med["critical_path"]["bound"] * latency
        summary["efficiency"] = summary["wall_median"] / summary["bound_s"] if summary["bound_s"] else None
    return summary


# -- METHOD.md §5 ---------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak resident memory, MB. /proc's VmHWM counts this program's own memory only;
    `ru_maxrss` does not: Linux keeps the high-water mark of the image a process replaced by exec, so a
    worker forked from a harness that had grown (it writes the corpora) reported the harness's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "cpu": cpu, "mem": mem, "commit": commit,
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M")}


# Corpora are sized in characters ÷ 4, the unit of the reference implementation's measurement, so that
# "60 × 3,000" means what it meant there; every table gives tokens in tiktoken o200k as well.
UNIT = "chars4"


def make_corpus(work: Path, n: int, tokens: int) -> tuple[Path, int]:
    """The corpus file and its size in o200k tokens (the unit of the run's usage)."""
    from bench.corpus import corpus_tokens, write_corpus

    path = work / f"corpus-{n}x{tokens}-{UNIT}.jsonl"
    if not path.exists():
        write_corpus(path, n, tokens, seed=0, unit=UNIT)
    return path, corpus_tokens(path)


def corpus_units(path: Path) -> dict[str, Any]:
    """A corpus's size in both units, for the report's headers."""
    from bench.corpus import corpus_tokens

    return {"unit": UNIT, "corpus_chars4": corpus_tokens(path, "chars4"), "corpus_o200k": corpus_tokens(path)}


def part_overhead(work: Path, quick: bool, repeats: int) -> dict[str, Any]:
    n, t = (3, 400) if quick else (60, 3000)
    corpus, ctoks = make_corpus(work, n, t)
    out = {}
    for mode in ("reference", "default"):
        print(f"[overhead] {mode} {n}x{t} at zero latency", flush=True)
        out[mode] = measure(f"overhead-{mode}", corpus=corpus, mode=mode, repeats=repeats, log_dir=work,
                            corpus_tokens=ctoks, sets=QUICK_SET if quick else None)
    return {"n": n, "tokens": t, **corpus_units(corpus), "modes": out}


def part_latency(work: Path, quick: bool, repeats: int) -> dict[str, Any]:
    n, t = (3, 400) if quick else (60, 3000)
    lat = 0.05 if quick else LAT
    corpus, ctoks = make_corpus(work, n, t)
    out = {}
    for mode in ("reference", "default"):
        print(f"[latency] {mode} {n}x{t} at {lat} s per call, {CAP} in flight", flush=True)
        out[mode] = measure(f"latency-{mode}", corpus=corpus, mode=mode, latency=lat, repeats=repeats, log_dir=work,
                            corpus_tokens=ctoks, sets=QUICK_SET if quick else None)
    return {"n": n, "tokens": t, **corpus_units(corpus), "latency": lat, "modes": out}


def part_decode(work: Path, quick: bool, repeats: int, modes: tuple[str, ...] = ("default",)) -> dict[str, Any]:
    n, t = (3, 400) if quick else (60, 3000)
    lat, per = (0.02, 0.0001) if quick else (LAT, PER_TOKEN)
    corpus, ctoks = make_corpus(work, n, t)
    out = {}
    for mode in modes:
        print(f"[decode] {mode} {n}x{t} at {lat} s + {per * 1000:g} ms/token", flush=True)
        out[mode] = measure(f"decode-{mode}", corpus=corpus, mode=mode, latency=lat, per_token=per, repeats=repeats,
                            log_dir=work, corpus_tokens=ctoks, sets=QUICK_SET if quick else None)
    return {"n": n, "tokens": t, **corpus_units(corpus), "latency": lat, "per_token": per, "modes": out}


def part_verify(work: Path, quick: bool) -> dict[str, Any]:
    """What the citation check costs: the default mode at 1 s per call with the check on and off."""
    n, t = (3, 400) if quick else (60, 3000)
    lat = 0.05 if quick else LAT
    corpus, ctoks = make_corpus(work, n, t)
    out = {}
    for label, on in (("off", False), ("on", True)):
        print(f"[verify] default {n}x{t} at {lat} s per call, citation check {label}", flush=True)
        sets = {**(QUICK_SET if quick else {}), "verify_citations": on}
        out[label] = measure(f"verify-{label}", corpus=corpus, mode="default", latency=lat, log_dir=work,
                             corpus_tokens=ctoks, sets=sets)
    return {"n": n, "tokens": t, **corpus_units(corpus), "latency": lat, "modes": out}


def part_cache(work: Path, quick: bool, sizes: list[tuple[int, int]] | None = None,
               modes: tuple[str, ...] = ("reference", "default")) -> dict[str, Any]:
    """Prompt tokens served from the mock's prefix cache (bench/prefix_cache.py), per mode at zero latency
    (counts only). Corpora are sized in characters ÷ 4 (the reference's unit): `n` documents x `t`."""
    from bench.corpus import corpus_tokens, write_corpus

    sizes = [(3, 400)] if quick else (sizes or [(60, 3000)])
    out: dict[str, Any] = {"unit": "chars4", "sizes": {}}
    for n, t in sizes:
        corpus = work / f"corpus-{n}x{t}-chars4.jsonl"
        if not corpus.exists():
            write_corpus(corpus, n, t, seed=0, unit="chars4")
        size: dict[str, Any] = {"n": n, "tokens": t, "corpus_chars4": corpus_tokens(corpus, "chars4"),
                                "corpus_o200k": corpus_tokens(corpus), "modes": {}}
        for mode in modes:
            print(f"[cache] {mode} {n}x{t} (characters ÷ 4) at zero latency", flush=True)
            size["modes"][mode] = measure(f"cache-{mode}-{n}", corpus=corpus, mode=mode, log_dir=work,
                                          corpus_tokens=size["corpus_o200k"], sets=QUICK_SET if quick else None,
                                          timeout=7200)
        if "default" in modes and "reference" in modes and not quick:
            # How many blocks the default mode runs depends on the mock's scores (a hash of each request), so any
            # prompt change may add or drop a block; mode=reference always runs one. Like with like: one block.
            print(f"[cache] default, one block {n}x{t} (characters ÷ 4) at zero latency", flush=True)
            size["modes"][ONE_BLOCK] = measure(f"cache-default1-{n}", corpus=corpus, mode="default", log_dir=work,
                                               corpus_tokens=size["corpus_o200k"], sets={"max_blocks": 1},
                                               timeout=7200)
            print(f"[cache] default, one block, no citation check {n}x{t} (characters ÷ 4) at zero latency", flush=True)
            size["modes"][SAME_WORK] = measure(f"cache-default1nc-{n}", corpus=corpus, mode="default", log_dir=work,
                                               corpus_tokens=size["corpus_o200k"],
                                               sets={"max_blocks": 1, "verify_citations": False}, timeout=7200)
        out["sizes"][f"{n}x{t}"] = size
    return out


def part_scale(work: Path, quick: bool, sizes: list[int], mode: str = "default") -> dict[str, Any]:
    t = 400 if quick else 4000
    out = {}
    for n in sizes:
        corpus, ctoks = make_corpus(work, n, t)
        print(f"[scale] {mode} {n}x{t} ({ctoks} tokens) at zero latency", flush=True)
        out[str(n)] = measure(f"scale-{n}", corpus=corpus, mode=mode, log_dir=work, corpus_tokens=ctoks,
                              sets=QUICK_SET if quick else None, timeout=7200)
        out[str(n)]["corpus_bytes"] = corpus.stat().st_size
        out[str(n)].update(corpus_units(corpus))
    return {"tokens": t, "unit": UNIT, "mode": mode, "sizes": out}


def part_local(work: Path, corpus: Path) -> dict[str, Any]:
    from bench.corpus import corpus_tokens

    print(f"[local] demo on the embedded model: {corpus.name} with {DEMO_SET}", flush=True)
    try:
        res = run_worker({"corpus": str(corpus), "mode": "default", "model": "local", "base_url": None,
                          "max_concurrency": 8, "cap": 8, "set": DEMO_SET}, timeout=7200)
    except RuntimeError as exc:  # recorded, so the other parts still render
        return {"corpus": str(corpus), "set": DEMO_SET, "error": str(exc).splitlines()[-2][:400]}
    return {"corpus": str(corpus.relative_to(ROOT)) if corpus.is_relative_to(ROOT) else str(corpus),
            "corpus_tokens": corpus_tokens(corpus), "set": DEMO_SET, "run": res}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="LLM×MapReduce-V2 benchmarks against a loopback mock LLM.")
    ap.add_argument("--quick", action="store_true", help="tiny corpus, tiny knobs, near-zero latency (CI smoke run)")
    ap.add_argument("--only", default="", help="comma-separated parts: overhead,latency,decode,scale,verify,update,cache,local")
    ap.add_argument("--local", action="store_true", help="run the embedded-model demo (same as --only local)")
    ap.add_argument("--local-corpus", default=str(ROOT / "examples" / "stdlib-concurrency.jsonl"))
    ap.add_argument("--repeats", type=int, default=None, help="runs per noisy figure (median reported)")
    ap.add_argument("--scale-sizes", default="10,30,100,250")
    ap.add_argument("--cache-sizes", default="60x3000,250x4000",
                    help="corpora of the cache part: DOCSxTOKENS (tokens in characters ÷ 4) separated by commas")
    ap.add_argument("--decode-modes", default="default", help="modes of the realistic-decode part")
    ap.add_argument("--out", default=None, help="results directory (default bench/results; --quick: a temp dir)")
    ap.add_argument("--benchmarks", default=None, help="markdown to write (default BENCHMARKS.md; with --out or --quick: OUT/BENCHMARKS.md)")
    ap.add_argument("--render", action="store_true", help="only re-render BENCHMARKS.md and the plot from results.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        res = worker(json.loads(args.worker))
        print(json.dumps(res))
        return 0

    if args.quick:
        global SHAPE
        SHAPE = "2,1"  # S = 5: a short writer phase
        out = Path(args.out or tempfile.mkdtemp(prefix="llmxmr-bench-quick-"))
        parts = [p for p in (args.only or "overhead").split(",") if p]
        repeats = args.repeats or 1
        sizes = [2, 4]
    else:
        out = Path(args.out) if args.out else RESULTS_DIR
        parts = [p for p in (args.only or ("local" if args.local else "overhead,latency,decode,scale,verify,update,cache")).split(",") if p]
        repeats = args.repeats or 3
        sizes = [int(x) for x in args.scale_sizes.split(",") if x]
    if args.render:
        parts = []
    out.mkdir(parents=True, exist_ok=True)
    # Results kept elsewhere (--out, --quick) render beside them: only the repository's results render into
    # the repository's BENCHMARKS.md.
    bench_md = Path(args.benchmarks) if args.benchmarks else (out / "BENCHMARKS.md" if args.quick or args.out else ROOT / "BENCHMARKS.md")
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if parts:
        results["machine"] = machine()
    work = Path(tempfile.mkdtemp(prefix="llmxmr-bench-work-"))
    t0 = time.perf_counter()
    try:
        for part in parts:
            if part == "overhead":
                results["overhead"] = part_overhead(work, args.quick, repeats)
            elif part == "latency":
                results["latency"] = part_latency(work, args.quick, repeats)
            elif part == "decode":
                results["decode"] = part_decode(work, args.quick, max(1, repeats - 1) if not args.quick else 1,
                                                tuple(args.decode_modes.split(",")))
            elif part == "scale":
                results["scale"] = part_scale(work, args.quick, sizes)
            elif part == "cache":
                results["cache"] = part_cache(work, args.quick, [tuple(int(v) for v in x.split("x"))  # type: ignore[misc]
                                                                 for x in args.cache_sizes.split(",") if x])
            elif part == "verify":
                results["verify"] = part_verify(work, args.quick)
            elif part == "update":
                from bench.update import measure as measure_update

                n, t, add = (6, 400, 2) if args.quick else (60, 3000, 5)
                results["update"] = measure_update(n, t, add, QUICK_SET if args.quick else {})
            elif part == "local":
                results["local"] = part_local(work, Path(args.local_corpus))
            else:
                ap.error(f"unknown part {part!r}")
            results[part]["machine"] = machine()
            results_path.write_text(json.dumps(results, indent=1))  # after each part: a crash keeps the rest
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    notes = ROOT / "bench" / "FINDINGS.md"
    if notes.exists() and not args.quick:
        results["notes"] = notes.read_text().strip()
    if not args.quick:
        plot(results, out)
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    bench_md.write_text(render(results, command))
    results_path.write_text(json.dumps(results, indent=1))
    print(f"wrote {results_path} and {bench_md} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
