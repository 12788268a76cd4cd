"""`llmxmr eval A/ B/ other.md --corpus corpus.jsonl -o EVALDIR`: one table, a column per system.

With `--judge-model`, a judge also rates each article (structure, relevance), each section (language,
criticalness) and each cited claim against its sources (faithfulness), `--seeds K` times. The judge's calls
are durable like the pipeline's: EVALDIR/eval.sqlite keeps the eval's checkpoints and every answer, so an
interrupted eval resumes, and a repeated one pays for nothing it already asked."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_ERROR = 0, 2, 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="score surveys (ours or another system's) against their corpus, side by side")
    ev.add_argument("articles", nargs="+",
                    help="an OUTDIR of ours (survey.json), a Markdown article with a reference list, or the reference "
                    "implementation's JSONL output")
    ev.add_argument("--corpus", required=True, help="the corpus the articles were written from (JSONL or a folder)")
    ev.add_argument("--survey-index", type=int, default=0, help="which survey of a multi-survey JSONL corpus")
    ev.add_argument("--name", action="append", default=[], help="a column name per article, in order (default: file names)")
    ev.add_argument("-o", "--out", required=True, help="output folder (eval.md, eval.json, eval.sqlite)")
    ev.add_argument("--db", help="SQLite file or postgresql:// URL of the eval's checkpoints and answers "
                                 "(default EVALDIR/eval.sqlite)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    ev.add_argument("--judge-model", help="also rate the articles with this model (any model string `run` accepts)")
    ev.add_argument("--base-url", help="OpenAI-compatible server of an openai: judge model")
    ev.add_argument("--seeds", type=int, default=1, help="judging passes (above 1: at the candidate temperature)")
    ev.add_argument("--price-in", type=float, help="$ per million prompt tokens (the eval's own cost)")
    ev.add_argument("--price-out", type=float, help="$ per million completion tokens")


def cmd_eval(args: argparse.Namespace) -> int:
    from llmxmr.corpus import CorpusError
    from llmxmr.eval.compare import load_corpus
    from llmxmr.models.errors import BudgetExceededError, ModelSetupError, ProviderError
    from llmxmr.postgres import DatabaseError
    from llmxmr.state.context import Context, SettingsError

    if args.name and len(args.name) != len(args.articles):
        return _usage(f"{len(args.name)} --name for {len(args.articles)} articles")
    if args.seeds < 1:
        return _usage(f"--seeds must be at least 1, not {args.seeds}")
    try:
        load_corpus(args.corpus, args.survey_index)  # a bad corpus is a usage error before anything runs
        for path in args.articles:
            if not Path(path).exists():
                raise FileNotFoundError(f"{path}: no such file or folder")
        context = Context(model=args.judge_model or "local", base_url=args.base_url)
        payload = {"articles": [str(Path(p).resolve()) for p in args.articles], "corpus_path": str(Path(args.corpus).resolve()),
                   "names": args.name or None, "survey_index": args.survey_index, "seed": args.seed,
                   "judge": bool(args.judge_model), "seeds": args.seeds, "price_in": args.price_in,
                   "price_out": args.price_out}
        values = run_eval(payload, context, Path(args.out), db=getattr(args, "db", None))
    except (CorpusError, FileNotFoundError, ValueError, SettingsError, ModelSetupError, DatabaseError) as exc:
        return _usage(str(exc))
    except (ProviderError, BudgetExceededError) as exc:
        print(f"error: {exc}\nRe-run the same command to resume: answers already received are not paid again.",
              file=sys.stderr)
        return EXIT_ERROR
    from llmxmr.eval.compare import write

    md, js = write(values["result"], args.out)
    print(f"wrote {md} and {js}")
    for s in values["result"]["systems"]:
        if s["unmapped_references"]:
            print(f"{s['system']}: {len(s['unmapped_references'])} of {s['references']} references not in the corpus",
                  file=sys.stderr)
    return EXIT_OK


def run_eval(payload: dict, context, out: Path, *, models=None, db: str | None = None) -> dict:
    """The eval graph on EVALDIR/eval.sqlite (or `db`: a file or a postgresql:// URL); an unfinished thread of
    the same inputs resumes. `models`: an injected judge (tests)."""
    from llmxmr.graph.evaluate import build_eval_graph
    from llmxmr.runs import RECURSION_LIMIT, db_target, open_database

    out.mkdir(parents=True, exist_ok=True)
    thread = "eval-" + hashlib.sha256(json.dumps([payload, context.model, context.base_url], sort_keys=True)
                                      .encode()).hexdigest()[:12]
    config = {"configurable": {"thread_id": thread}, "recursion_limit": RECURSION_LIMIT,
              "max_concurrency": context.max_concurrency}
    with open_database(db_target(db) if db else out / "eval.sqlite") as database:
        graph = build_eval_graph(models=models, checkpointer=database.checkpointer, store=database.store)
        snapshot = graph.get_state(config)
        pending = bool(snapshot.next)
        return graph.invoke(None if pending else payload, config, context=context)


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE
