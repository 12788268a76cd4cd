"""What an update costs (`llmxmr update`): add documents to a finished run and count the model calls and
prompt tokens it pays, against a fresh run of the whole grown corpus. Counts, not timing.

    python bench/update.py                      # 60 x 3,000 tokens + 5 documents, refine=never, auto, always
    python bench/update.py --n 6 --tokens 400 --add 2 --quick   # a small check that it runs

Every run is in this process, through the scripted benchmark responder (`bench/mock.py`'s BenchResponder,
answers of realistic length) as an injected chat model, with a SQLite checkpointer and store per run as the
CLI has them. The base run's database is copied before each update so both updates start from the same
finished version. It prints a Markdown table; `python bench/run.py --only update` measures the same and puts
it in BENCHMARKS.md (section 6).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.config import QUICK_SET  # noqa: E402 - after sys.path
from bench.corpus import make_corpus  # noqa: E402
from bench.mock import BenchResponder  # noqa: E402

THREAD = "bench-update"
REFINES = ("never", "auto", "always")  # always: what auto costs when it decides to refine


def _totals(report: dict[str, Any]) -> dict[str, int]:
    usage = report.get("usage") or {}
    return {"calls": sum(u["calls"] for u in usage.values()), "cached": sum(u["cached"] for u in usage.values()),
            "prompt_tokens": sum(u["prompt_tokens"] for u in usage.values()),
            "completion_tokens": sum(u["completion_tokens"] for u in usage.values()),
            "per_stage": {k: u["calls"] for k, u in usage.items() if u["calls"]}}


def _run(db_path: Path, payload: dict[str, Any], settings: dict[str, Any] | None) -> dict[str, Any]:
    from llmxmr.runs import RECURSION_LIMIT, graph_for, open_database
    from llmxmr.state.context import Context
    from llmxmr.testing.fake_model import ScriptedChatModel

    model = ScriptedChatModel(responder=BenchResponder())
    config = {"configurable": {"thread_id": THREAD}, "max_concurrency": 8, "recursion_limit": RECURSION_LIMIT}
    with open_database(db_path) as db:
        graph = graph_for(db, models=model)
        context = Context(**settings) if settings is not None else None
        graph.invoke(payload, config, context=context)
        return graph.get_state(config).values


def measure(n: int, tokens: int, add: int, sets: dict[str, Any]) -> dict[str, Any]:
    corpus = make_corpus(n + add, tokens)
    base_papers, added = corpus["papers"][:n], corpus["papers"][n:]
    # The model string only sets the provider defaults (context window, output cap) of the benchmark's mock:
    # the answers come from the injected responder.
    settings = {"mode": "default", "model": "openai:mock", **sets}
    work = Path(tempfile.mkdtemp(prefix="llmxmr-bench-update-"))
    try:
        print(f"[update] fresh run of {n + add} x {tokens}", flush=True)
        fresh = _run(work / "fresh.sqlite", {"papers": corpus["papers"], "title": corpus["title"]}, settings)
        print(f"[update] base run of {n} x {tokens}", flush=True)
        base = _run(work / "base.sqlite", {"papers": base_papers, "title": corpus["title"]}, settings)
        out: dict[str, Any] = {"n": n, "tokens": tokens, "add": add, "set": sets,
                               "fresh": _totals(fresh["report"]), "base": _totals(base["report"]),
                               "sections": len(base["sections"])}
        for refine in REFINES:
            db = work / f"update-{refine}.sqlite"
            shutil.copy2(work / "base.sqlite", db)
            print(f"[update] add {add} documents, refine={refine}", flush=True)
            values = _run(db, {"update": {"add_papers": added, "refine": refine}}, None)
            entry = values["changelog"][-1]
            totals = _totals(values["report"])
            out[refine] = {**totals, "refine": entry["refine"],
                           "rewritten": len(entry["sections"]["rewritten"]) + len(entry["sections"]["added"]),
                           "kept": entry["sections"]["kept"],
                           "calls_vs_fresh": totals["calls"] / out["fresh"]["calls"],
                           "prompt_vs_fresh": totals["prompt_tokens"] / out["fresh"]["prompt_tokens"]}
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(r: dict[str, Any]) -> str:
    rows = [f"Adding {r['add']} documents to a finished {r['n']} x {r['tokens']:,} run (default mode, S = "
            f"{r['sections']} sections) vs a fresh run of all {r['n'] + r['add']}:", "",
            "| run | model calls | prompt tokens | vs fresh: calls | vs fresh: prompt tokens | sections re-written | outline |",
            "|---|---:|---:|---:|---:|---:|---|",
            f"| fresh run, {r['n'] + r['add']} documents | {r['fresh']['calls']:,} | {r['fresh']['prompt_tokens']:,} "
            "| 100 % | 100 % | all | built |"]
    for refine in REFINES:
        u = r[refine]
        rows.append(f"| update, `refine={refine}` | {u['calls']:,} | {u['prompt_tokens']:,} | "
                    f"{100 * u['calls_vs_fresh']:.1f} % | {100 * u['prompt_vs_fresh']:.1f} % | "
                    f"{u['rewritten']} of {u['rewritten'] + u['kept']} | {u['refine']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="documents of the finished run")
    ap.add_argument("--tokens", type=int, default=3000, help="tokens per document")
    ap.add_argument("--add", type=int, default=5, help="documents the update adds")
    ap.add_argument("--quick", action="store_true", help="the small refinement settings of `bench/run.py --quick`")
    args = ap.parse_args(argv)
    from llmxmr.models.tokens import ensure_tiktoken_offline

    ensure_tiktoken_offline()
    result = measure(args.n, args.tokens, args.add, QUICK_SET if args.quick else {})
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
