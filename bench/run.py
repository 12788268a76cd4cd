"""The benchmark harness: `python bench/run.py [--quick] [--only PARTS] [--local]`.

Every measured run is a fresh subprocess (a "worker") that imports the project, opens a SQLite
checkpointer + store in a temp dir (`llmxmr.runs.open_database` + `graph_for`), and runs the whole graph
in-process through the real `ChatOpenAI` client over loopback HTTP against `bench/mock.py` (its own
process, so the mock's CPU is not charged to the pipeline). The worker streams `tasks` events (with
subgraphs) to learn LangGraph's supersteps and the model calls of every task, and reports wall time, CPU,
peak RSS, database size and the run report's usage per stage. The mock's request log gives the calls,
tokens, concurrency and over-long answers as the server saw them.

Parts (`--only a,b`): overhead, latency, decode, scale, local (`--local` = `--only local`).
Results merge into `bench/results/results.json`; BENCHMARKS.md and bench/results/*.png are rendered from it,
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

RESULTS_DIR = ROOT / "bench" / "results"
CAP = 20  # requests in flight: the reference's cap per model name
LAT = 1.0  # seconds per call for the latency-bound figures
PER_TOKEN = 0.005  # realistic decode: 5 ms per completion token
# The embedded demo's configuration (scripts/demo.sh).
DEMO_SET = {"max_blocks": 1, "max_layers": 1, "units": 2, "refine_rounds": 1, "best_of": 1}
SHAPE: str | None = None  # outline shape of the mock's drafts (None: S = 38); --quick makes it small
QUICK_SET = {"max_blocks": 1, "max_layers": 1, "units": 2, "refine_rounds": 1, "best_of": 1}


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
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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
                 shape: str | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix="requests-", suffix=".jsonl", dir=log_dir)
        os.close(fd)
        self.log = Path(name)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "mock.py"), "--latency", str(latency), "--per-token", str(per_token),
             "--max-inflight", str(cap), "--log", str(self.log), *(["--shape", shape] if shape else [])],
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


def run_worker(cfg: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)],
                          capture_output=True, text=True, env=_env(), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def log_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, dict[str, int]] = {}
    for e in entries:
        s = stages.setdefault(e["stage"], {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "over_limit": 0})
        s["calls"] += 1
        s["prompt_tokens"] += e["prompt_tokens"]
        s["completion_tokens"] += e["completion_tokens"]
        s["over_limit"] += int(bool(e.get("over_limit")))
    return {
        "calls": len(entries), "stages": stages,
        "prompt_tokens": sum(e["prompt_tokens"] for e in entries),
        "completion_tokens": sum(e["completion_tokens"] for e in entries),
        "max_inflight": max((e["inflight"] for e in entries), default=0),
        "mean_inflight": statistics.fmean([e["inflight"] for e in entries]) if entries else 0,
        "max_prompt_tokens": max((e["prompt_tokens"] for e in entries), default=0),
        "max_prompt_by_stage": {st: max(e["prompt_tokens"] for e in entries if e["stage"] == st) for st in stages},
        "over_limit": sum(int(bool(e.get("over_limit"))) for e in entries),
        "service_s": sum(e["ended"] - e["started"] for e in entries),
        "queued_s": sum(e["started"] - e["arrived"] for e in entries),
        "timeline": _timeline(entries),
    }


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
REFERENCE_AMPLIFICATION = 25.5  # the reference implementation at 60 × 3,000 (issue 5): 4.54 M prompt tokens


def method_formula(N: int, S: int, *, B: int = 1, layers: int = 6, units: int = 10, k: int = 3, top_k: int = 6,
                   rounds: int = 3, best_of: int = 3, charts: bool = True, map_calls: int = 0,
                   rescore: int = 0) -> dict[str, int]:
    """Per-stage calls of the reference's cost model (METHOD.md §5) for one survey."""
    G = math.ceil(N / 3)
    merges = modifies = judges = 0
    for _ in range(B):
        judges += 1 + G  # score O_b + layer 0
        modifies += G
        W = G
        for _layer in range(layers):
            if W / k > units:  # pooling
                n_units = math.ceil(W / k)
                sizes = [k] * (W // k) + ([W % k] if W % k else [])
                merges += sum(1 for s in sizes if s > 1)
                W = min(top_k, n_units)
            else:
                n_units = units
                merges += n_units if min(k, W) > 1 else 0
                W = min(top_k, W + n_units)
            modifies += n_units
            judges += n_units
        modifies += rounds * best_of
        judges += rounds * best_of
    stages = {
        "map": map_calls, "group": 1, "skeleton": math.ceil(G / 3), "merge_skeleton": 1, "digest": N * (B + 1),
        "feedback": G * B, "merge_suggestions": merges, "modify": modifies, "judge": judges + rescore,
        "critique": rounds * best_of * B, "write_section": S, "polish": S, "charts": 1 if charts else 0,
    }
    stages["total"] = sum(stages.values())
    return stages


# ======================================================================================================
# parts
# ======================================================================================================
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


def make_corpus(work: Path, n: int, tokens: int) -> tuple[Path, int]:
    from bench.corpus import corpus_tokens, write_corpus

    path = work / f"corpus-{n}x{tokens}.jsonl"
    if not path.exists():
        write_corpus(path, n, tokens, seed=0)
    return path, corpus_tokens(path)


def part_overhead(work: Path, quick: bool, repeats: int) -> dict[str, Any]:
    n, t = (3, 400) if quick else (60, 3000)
    corpus, ctoks = make_corpus(work, n, t)
    out = {}
    for mode in ("reference", "default"):
        print(f"[overhead] {mode} {n}x{t} at zero latency", flush=True)
        out[mode] = measure(f"overhead-{mode}", corpus=corpus, mode=mode, repeats=repeats, log_dir=work,
                            corpus_tokens=ctoks, sets=QUICK_SET if quick else None)
    return {"n": n, "tokens": t, "modes": out}


def part_latency(work: Path, quick: bool, repeats: int) -> dict[str, Any]:
    n, t = (3, 400) if quick else (60, 3000)
    lat = 0.05 if quick else LAT
    corpus, ctoks = make_corpus(work, n, t)
    out = {}
    for mode in ("reference", "default"):
        print(f"[latency] {mode} {n}x{t} at {lat} s per call, {CAP} in flight", flush=True)
        out[mode] = measure(f"latency-{mode}", corpus=corpus, mode=mode, latency=lat, repeats=repeats, log_dir=work,
                            corpus_tokens=ctoks, sets=QUICK_SET if quick else None)
    return {"n": n, "tokens": t, "latency": lat, "modes": out}


def part_decode(work: Path, quick: bool, repeats: int, modes: tuple[str, ...] = ("default",)) -> dict[str, Any]:
    n, t = (3, 400) if quick else (60, 3000)
    lat, per = (0.02, 0.0001) if quick else (LAT, PER_TOKEN)
    corpus, ctoks = make_corpus(work, n, t)
    out = {}
    for mode in modes:
        print(f"[decode] {mode} {n}x{t} at {lat} s + {per * 1000:g} ms/token", flush=True)
        out[mode] = measure(f"decode-{mode}", corpus=corpus, mode=mode, latency=lat, per_token=per, repeats=repeats,
                            log_dir=work, corpus_tokens=ctoks, sets=QUICK_SET if quick else None)
    return {"n": n, "tokens": t, "latency": lat, "per_token": per, "modes": out}


def part_scale(work: Path, quick: bool, sizes: list[int], mode: str = "default") -> dict[str, Any]:
    t = 400 if quick else 4000
    out = {}
    for n in sizes:
        corpus, ctoks = make_corpus(work, n, t)
        print(f"[scale] {mode} {n}x{t} ({ctoks} tokens) at zero latency", flush=True)
        out[str(n)] = measure(f"scale-{n}", corpus=corpus, mode=mode, log_dir=work, corpus_tokens=ctoks,
                              sets=QUICK_SET if quick else None, timeout=7200)
        out[str(n)]["corpus_bytes"] = corpus.stat().st_size
    return {"tokens": t, "mode": mode, "sizes": out}


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


# ======================================================================================================
# rendering
# ======================================================================================================
def _f(x: float | None, nd: int = 1) -> str:
    return "–" if x is None else f"{x:,.{nd}f}"


def _when(part: dict[str, Any]) -> str:
    m = part.get("machine") or {}
    return f"*Commit `{m.get('commit', '?')}`, {m.get('date', '?')}.*\n" if m else ""


def _i(x: int | float | None) -> str:
    return "–" if x is None else f"{int(x):,}"


STAGE_ORDER = ["map", "reduce_notes", "group", "skeleton", "merge_skeleton", "digest", "feedback", "merge_suggestions",
               "modify", "judge", "critique", "write_section", "polish", "charts"]


def stage_table(summary: dict[str, Any], formula: dict[str, int] | None) -> list[str]:
    usage = summary["run"]["usage"]
    log = summary["run"]["log"]["stages"]
    total_p = sum(u.get("prompt_tokens", 0) for u in usage.values()) or 1
    lines = ["| stage | calls | §5 formula | prompt tokens | share | completion tokens | largest prompt | over max_tokens |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    stages = [s for s in STAGE_ORDER if s in usage or s in log or (formula and formula.get(s))]
    for st in stages:
        u = usage.get(st, {})
        lg = log.get(st, {})
        lines.append(f"| {st} | {_i(u.get('calls', 0))} | {_i(formula.get(st)) if formula else '–'} | "
                     f"{_i(u.get('prompt_tokens', 0))} | {100 * u.get('prompt_tokens', 0) / total_p:.0f} % | "
                     f"{_i(u.get('completion_tokens', 0))} | "
                     f"{_i(summary['run']['log']['max_prompt_by_stage'].get(st))} | {_i(lg.get('over_limit', 0))} |")
    tc = sum(u.get("calls", 0) for u in usage.values())
    lines.append(f"| **total** | **{_i(tc)}** | {_i(formula['total']) if formula else '–'} | "
                 f"**{_i(sum(u.get('prompt_tokens', 0) for u in usage.values()))}** | | "
                 f"**{_i(sum(u.get('completion_tokens', 0) for u in usage.values()))}** | | "
                 f"{_i(summary['run']['log']['over_limit'])} |")
    return lines


def formula_for(summary: dict[str, Any]) -> dict[str, int]:
    run = summary["run"]
    N = run.get("n_docs") or 0
    S = run["sections"]
    sets = summary.get("sets") or {}
    if summary["mode"] == "reference":
        return method_formula(N, S, B=1, layers=sets.get("max_layers", 6), units=sets.get("units", 10),
                              rounds=sets.get("refine_rounds", 3), best_of=sets.get("best_of", 3))
    usage = run["usage"]
    blocks = round(usage.get("feedback", {}).get("calls", 0) / max(1, math.ceil(N / 3))) or 1  # blocks begun
    return method_formula(N, S, B=blocks, layers=sets.get("max_layers", 6),
                          units=sets.get("units", 10), rounds=sets.get("refine_rounds", 3),
                          best_of=sets.get("best_of", 3), charts=False,
                          map_calls=usage.get("map", {}).get("calls", 0))


def render(results: dict[str, Any], command: str) -> str:
    m = results.get("machine", {})
    L = ["# Benchmarks", "",
         "Measured by `bench/run.py` against `bench/mock.py`, a loopback OpenAI-compatible mock (the project's",
         "stub server with `disable_nagle_algorithm = True`, a latency model, a cap on requests in flight, tiktoken",
         "`usage` counts and scripted answers of realistic length per stage, S = 38 sections per outline).",
         "The pipeline runs in-process in a fresh worker process per run, through the real `ChatOpenAI` client,",
         "with the SQLite checkpointer and store of a CLI run (`llmxmr.runs.open_database`); the mock is its own",
         "process. Corpora come from `bench/corpus.py` (deterministic by seed).", "",
         f"Regenerate: `{command}` (parts: `--only overhead,latency,decode,scale,local`; `--quick` for the CI smoke run).",
         "", f"Machine: {m.get('nproc')} cores, {m.get('cpu')}, {m.get('mem')}, Python {m.get('python')}, "
         f"{m.get('platform')}; taken {m.get('date')}; each part below names the commit it measured. It is a",
         "shared VM: runs of one commit at zero latency spread by up to ±20 %, so noisy figures are medians of",
         "repeated runs (the repeat count is given).", ""]

    ov = results.get("overhead")
    if ov:
        L += ["## 1. Framework overhead (zero model latency)", "", _when(ov),
              f"{ov['n']} papers × {ov['tokens']} tokens, {CAP} requests in flight. Wall per call = run wall ÷ calls; "
              "CPU per call = the pipeline process's user+sys CPU ÷ calls (our code, LangGraph, checkpointing, the",
              "client; the mock's CPU is in its own process). Import = `llmxmr.runs` + `langchain_openai`; build = "
              "compiling the graph.", "",
              "| mode | runs | wall (median) | calls | wall / call | CPU / call | CPU total | import | build | peak RSS |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for mode, s in ov["modes"].items():
            L.append(f"| {mode} | {s['repeats']} | {_f(s['wall_median'], 2)} s | {_i(s['run']['log']['calls'])} | "
                     f"{_f(s['wall_per_call_ms'])} ms | {_f(s['cpu_per_call_ms'])} ms | {_f(s['cpu_median'], 1)} s | "
                     f"{_f(s['import_median'], 2)} s | {_f(s['build_median'], 3)} s | {_f(s['run']['peak_rss_mb'], 0)} MB |")
        ref = ov["modes"].get("reference")
        if ref:
            L += ["", f"Goal: zero-latency wall of `mode=reference` at 60 × 3,000 ≤ 5 s after imports: "
                  f"**{_f(ref['wall_median'], 1)} s** ({'met' if ref['wall_median'] <= 5 else 'missed'}; the reference: 45 s)."]
        L.append("")

    la = results.get("latency")
    if la:
        L += ["## 2. Latency-bound efficiency", "", _when(la),
              f"{la['n']} papers × {la['tokens']} tokens; every call takes {la['latency']} s; at most {CAP} requests in "
              f"flight (mock cap and `max_concurrency`). Bound = Σ over supersteps that call the model of (longest "
              f"chain of sequential calls in one task) × ⌈model-calling tasks ÷ {CAP}⌉ × {la['latency']} s.", "",
              "Method: the worker streams LangGraph `tasks` events with `subgraphs=True`. Per namespace (the writer",
              "subgraph has its own), every task of a superstep is announced before any finishes and the next",
              "superstep starts after all have finished, so a task start after a task end opens a new superstep.",
              "A task's chain = the `calls` in the usage update it returns (a node makes its calls one after another,",
              "repairs and retries included); the parent's `write` task is replaced by the subgraph's supersteps.",
              "The sum of task calls equals the mock's request count (checked: column `calls (tasks/mock)`).", "",
              "| mode | runs | wall (median, all runs) | bound | wall ÷ bound | calls (tasks/mock) | max in flight | mean in flight |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for mode, s in la["modes"].items():
            run = s["run"]
            L.append(f"| {mode} | {s['repeats']} | **{_f(s['wall_median'])} s** ({', '.join(_f(w) for w in s['walls'])}) | "
                     f"{_f(s['bound_s'])} s | **{_f(s['efficiency'], 2)}** | {_i(run['task_calls'])}/{_i(run['log']['calls'])} | "
                     f"{run['log']['max_inflight']} | {_f(run['log']['mean_inflight'])} |")
        ref = la["modes"].get("reference")
        if ref:
            L += ["", f"Goals for `mode=reference`: wall ≤ 55 s (the reference: 87 s) → **{_f(ref['wall_median'])} s, "
                  f"{'met' if ref['wall_median'] <= 55 else 'missed'}**; wall ÷ bound ≤ 1.15 → **{_f(ref['efficiency'], 2)}, "
                  f"{'met' if (ref['efficiency'] or 9) <= 1.15 else 'missed'}**."]
        for mode, s in la["modes"].items():
            L += ["", f"Supersteps of the median `{mode}` run (bound vs. measured wall per superstep):", "",
                  "| superstep (node) | model tasks | longest chain | calls | bound | wall |", "|---|---:|---:|---:|---:|---:|"]
            for r in s["run"]["critical_path"]["steps"]:
                L.append(f"| {r['node']}{' (writer)' if r['ns'] else ''} | {r['tasks']} | {r['chain']} | {r['calls']} | "
                         f"{_f(r['bound'] * la['latency'])} s | {_f(r['wall'])} s |")
        L.append("")

    de = results.get("decode")
    if de:
        L += ["### Realistic decode", "", _when(de),
              f"{de['n']} papers × {de['tokens']} tokens; every call takes {de['latency']} s + {de['per_token'] * 1000:g} ms "
              f"per completion token; {CAP} in flight.", "",
              "| mode | runs | wall (median) | calls | completion tokens | largest completion stage |", "|---|---:|---:|---:|---:|---|"]
        for mode, s in de["modes"].items():
            st = s["run"]["log"]["stages"]
            big = max(st.items(), key=lambda kv: kv[1]["completion_tokens"] / max(1, kv[1]["calls"]))[0] if st else "–"
            L.append(f"| {mode} | {s['repeats']} | **{_f(s['wall_median'])} s** | {_i(s['run']['log']['calls'])} | "
                     f"{_i(s['run']['log']['completion_tokens'])} | {big} |")
        d = de["modes"].get("default")
        if d:
            L += ["", f"Goal for the default mode: ≤ 260 s (the reference: 653 s) → **{_f(d['wall_median'])} s, "
                  f"{'met' if d['wall_median'] <= 260 else 'missed'}**."]
        r = de["modes"].get("reference")
        if r:
            L += ["", f"`mode=reference` under the same model: {_f(r['wall_median'])} s (the reference: 653 s); its whole-outline "
                  "answers (skeleton, merge, every modify: ~6.5 k tokens ≈ 33 s each) sit on the critical path of every layer "
                  "and refine round."]
        L.append("")

    src = results.get("latency") or results.get("overhead")
    if src:
        L += ["## 3. Calls and tokens per stage", "",
              f"{src['n']} papers × {src['tokens']} tokens (from the `{'latency' if results.get('latency') else 'overhead'}` "
              "runs; the answers are deterministic, so the counts do not depend on latency). §5 formula: METHOD.md §5 with "
              "N papers, G = ⌈N/3⌉, S = sections of the final outline, B = blocks run (for the default mode: plus its map",
              "calls, without charts; its layers may stop early, so the formula is an upper bound there). `over max_tokens`:",
              "answers longer than the request's `max_tokens` (the mock does not cut them; a real server would stop at the",
              "limit with `finish_reason=length`).", ""]
        amp = {}
        for mode, s in src["modes"].items():
            s["run"]["n_docs"] = src["n"]
            usage = s["run"]["usage"]
            p = sum(u.get("prompt_tokens", 0) for u in usage.values())
            amp[mode] = p / s["corpus_tokens"]
            L += [f"### `mode={mode}` (S = {s['run']['sections']}, blocks = {s['run'].get('blocks')}, stop: {s['run']['stop_reason']})", ""]
            L += stage_table(s, formula_for(s))
            L += ["", f"Prompt-token amplification (prompt tokens ÷ corpus tokens {s['corpus_tokens']:,}): **{amp[mode]:.1f}×**.", ""]
        if "reference" in amp and "default" in amp:
            # The goal: half the reference implementation's 4.54 M prompt tokens at 60 × 3,000 (25.5× its
            # corpus), i.e. <= 12×. Our mode=reference already sends less than that implementation (leaner prompts,
            # identical requests answered once), so its ratio is reported too.
            L += [f"Goal: the default mode ≤ half the reference implementation's prompt tokens (4.54 M = "
                  f"{REFERENCE_AMPLIFICATION:.1f}× its corpus, so ≤ 12×) → **{amp['default']:.1f}×** "
                  f"(**{'met' if amp['default'] <= 12 else 'missed'}**). Against this project's `mode=reference` "
                  f"({amp['reference']:.1f}×): {amp['default'] / amp['reference']:.0%} of its prompt tokens.", ""]

    sc = results.get("scale")
    if sc:
        L += ["## 4. Scale", "", _when(sc),
              f"N documents of ~{sc['tokens']} tokens, `mode={sc['mode']}`, zero latency, {CAP} in flight, one run each. "
              "Peak RSS of the worker process (`ru_maxrss`); DB = the run's SQLite file with its -wal/-shm "
              "(checkpoints + store), measured after the run closed it (closing folds the write-ahead log into the file).", "",
              "| N | corpus tokens | wall | calls | prompt tokens | completion tokens | prompt ÷ corpus | largest prompt | "
              "peak RSS | DB size | DB ÷ corpus bytes | checkpoints | store |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n, s in sc["sizes"].items():
            run = s["run"]
            bd = run["db_breakdown"]
            L.append(f"| {n} | {_i(s['corpus_tokens'])} | {_f(s['wall_median'])} s | {_i(run['log']['calls'])} | "
                     f"{_i(run['log']['prompt_tokens'])} | {_i(run['log']['completion_tokens'])} | "
                     f"{run['log']['prompt_tokens'] / s['corpus_tokens']:.1f}× | {_i(run['log']['max_prompt_tokens'])} | "
                     f"{_f(run['peak_rss_mb'], 0)} MB | {run['db_bytes'] / 1e6:.1f} MB | "
                     f"{run['db_bytes'] / s['corpus_bytes']:.1f}× | "
                     f"{(bd.get('checkpoints', 0) + bd.get('writes', 0)) / 1e6:.1f} MB | {bd.get('store', 0) / 1e6:.1f} MB |")
        L += ["", "Largest prompt per stage (tokens) by N (a stage whose largest prompt grows with N is not reduced hierarchically):", ""]
        ns = list(sc["sizes"])
        stages = sorted({st for s in sc["sizes"].values() for st in s["run"]["log"]["max_prompt_by_stage"]},
                        key=lambda x: STAGE_ORDER.index(x) if x in STAGE_ORDER else 99)
        L += ["| stage | " + " | ".join(f"N={n}" for n in ns) + " |", "|---|" + "---:|" * len(ns)]
        for st in stages:
            L.append(f"| {st} | " + " | ".join(_i(sc["sizes"][n]["run"]["log"]["max_prompt_by_stage"].get(st)) for n in ns) + " |")
        L += ["", "Calls per stage by N:", "", "| stage | " + " | ".join(f"N={n}" for n in ns) + " |", "|---|" + "---:|" * len(ns)]
        for st in stages:
            L.append(f"| {st} | " + " | ".join(_i(sc["sizes"][n]["run"]["log"]["stages"].get(st, {}).get("calls")) for n in ns) + " |")
        L += ["", "Store contents by kind at the largest N (bytes): " + ", ".join(
            f"{k} {v / 1e6:.1f} MB" for k, v in sorted((sc['sizes'][ns[-1]]['run']['db_breakdown'].get('store_by_kind') or {}).items(),
                                                        key=lambda kv: -kv[1])) + ".", ""]
        if (RESULTS_DIR / "scale.png").exists():
            L += ["![scale](bench/results/scale.png)", ""]

    lo = results.get("local")
    if lo and lo.get("error"):
        L += ["## 5. The embedded local model (demo)", "", _when(lo), f"`{lo['corpus']}` on `model=local` with the demo "
              f"configuration ({', '.join(f'{k}={v}' for k, v in lo['set'].items())}): **did not complete**. {lo['error']}", ""]
    elif lo:
        run = lo["run"]
        L += ["## 5. The embedded local model (demo)", "", _when(lo),
              f"`{lo['corpus']}` ({_i(lo['corpus_tokens'])} tokens) on `model=local` (SmolLM2-135M in the embedded "
              f"llama.cpp server, 2 slots) with the demo configuration of `scripts/demo.sh` ({', '.join(f'{k}={v}' for k, v in lo['set'].items())}); one run.", "",
              f"Wall **{_f(run['wall_s'] / 60, 1)} min** ({_f(run['wall_s'], 0)} s; import {_f(run['import_s'], 1)} s), "
              f"peak RSS {_f(run['peak_rss_mb'], 0)} MB, stop: {run['stop_reason']}, sections {run['sections']}, "
              f"failures: {', '.join(f'{k} {v}' for k, v in run['failures'].items()) or 'none'}.", "",
              "| stage | calls | prompt tokens | completion tokens | repairs | failures |", "|---|---:|---:|---:|---:|---:|"]
        for st in [s for s in STAGE_ORDER if s in run["usage"]]:
            u = run["usage"][st]
            L.append(f"| {st} | {_i(u.get('calls'))} | {_i(u.get('prompt_tokens'))} | {_i(u.get('completion_tokens'))} | "
                     f"{_i(u.get('repairs'))} | {_i(u.get('failures'))} |")
        tot = run["usage"].values()
        L.append(f"| **total** | **{_i(sum(u.get('calls', 0) for u in tot))}** | {_i(sum(u.get('prompt_tokens', 0) for u in tot))} | "
                 f"{_i(sum(u.get('completion_tokens', 0) for u in tot))} | | |")
        L.append("")
    if results.get("notes"):
        L += ["## Findings", "", results["notes"], ""]
    return "\n".join(L) + "\n"


def plot(results: dict[str, Any], outdir: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sc = results.get("scale")
    la = results.get("latency")
    panels = (1 if sc else 0) * 2 + (1 if la else 0)
    if not panels:
        return None
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    axes = list(axes) if panels > 1 else [axes]
    i = 0
    if sc:
        ns = [int(n) for n in sc["sizes"]]
        toks = [sc["sizes"][str(n)]["corpus_tokens"] / 1e6 for n in ns]
        ax = axes[i]
        ax.plot(toks, [sc["sizes"][str(n)]["wall_median"] for n in ns], "o-", label="wall (s)")
        ax.plot(toks, [sc["sizes"][str(n)]["run"]["log"]["calls"] / 10 for n in ns], "s--", label="calls / 10")
        ax.set_xlabel("corpus (M tokens)")
        ax.set_title("scale: wall and calls (zero latency)")
        ax.legend()
        ax = axes[i + 1]
        ax.plot(toks, [sc["sizes"][str(n)]["run"]["log"]["prompt_tokens"] / 1e6 for n in ns], "o-", label="prompt (M tokens)")
        ax.plot(toks, [sc["sizes"][str(n)]["run"]["peak_rss_mb"] / 100 for n in ns], "s--", label="peak RSS (100 MB)")
        ax.plot(toks, [sc["sizes"][str(n)]["run"]["db_bytes"] / 1e8 for n in ns], "^:", label="DB (100 MB)")
        ax.set_xlabel("corpus (M tokens)")
        ax.set_title("scale: tokens, memory, database")
        ax.legend()
        i += 2
    if la:
        ax = axes[i]
        for mode, s in la["modes"].items():
            tl = s["run"]["log"]["timeline"]
            ax.plot([t for t, _ in tl], [c for _, c in tl], label=f"{mode} ({_f(s['wall_median'], 0)} s)")
        ax.axhline(CAP, color="grey", lw=0.5)
        ax.set_xlabel("seconds")
        ax.set_ylabel("requests in flight")
        ax.set_title(f"{la['n']}×{la['tokens']} at {la['latency']} s/call")
        ax.legend()
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "scale.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ======================================================================================================
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="LLM×MapReduce-V2 benchmarks against a loopback mock LLM.")
    ap.add_argument("--quick", action="store_true", help="tiny corpus, tiny knobs, near-zero latency (CI smoke run)")
    ap.add_argument("--only", default="", help="comma-separated parts: overhead,latency,decode,scale,local")
    ap.add_argument("--local", action="store_true", help="run the embedded-model demo (same as --only local)")
    ap.add_argument("--local-corpus", default=str(ROOT / "examples" / "stdlib-concurrency.jsonl"))
    ap.add_argument("--repeats", type=int, default=None, help="runs per noisy figure (median reported)")
    ap.add_argument("--scale-sizes", default="10,30,100,250")
    ap.add_argument("--decode-modes", default="default", help="modes of the realistic-decode part")
    ap.add_argument("--out", default=None, help="results directory (default bench/results; --quick: a temp dir)")
    ap.add_argument("--benchmarks", default=None, help="markdown to write (default BENCHMARKS.md; --quick: OUT/BENCHMARKS.md)")
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
        parts = [p for p in (args.only or ("local" if args.local else "overhead,latency,decode,scale")).split(",") if p]
        repeats = args.repeats or 3
        sizes = [int(x) for x in args.scale_sizes.split(",") if x]
    if args.render:
        parts = []
    out.mkdir(parents=True, exist_ok=True)
    bench_md = Path(args.benchmarks) if args.benchmarks else (out / "BENCHMARKS.md" if args.quick else ROOT / "BENCHMARKS.md")
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
