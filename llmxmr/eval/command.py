"""`llmxmr eval A/ B/ other.md --corpus corpus.jsonl -o EVALDIR`: one table, a column per system."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="score surveys (ours or another system's) against their corpus, side by side")
    ev.add_argument("articles", nargs="+",
                    help="an OUTDIR of ours (survey.json), a Markdown article with a reference list, or the reference "
                    "implementation's JSONL output")
    ev.add_argument("--corpus", required=True, help="the corpus the articles were written from (JSONL or a folder)")
    ev.add_argument("--survey-index", type=int, default=0, help="which survey of a multi-survey JSONL corpus")
    ev.add_argument("--name", action="append", default=[], help="a column name per article, in order (default: file names)")
    ev.add_argument("-o", "--out", required=True, help="output folder (eval.md, eval.json)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")


def cmd_eval(args: argparse.Namespace) -> int:
    from llmxmr.corpus import CorpusError
    from llmxmr.eval.compare import evaluate, load_corpus, write

    if args.name and len(args.name) != len(args.articles):
        print(f"error: {len(args.name)} --name for {len(args.articles)} articles", file=sys.stderr)
        return EXIT_USAGE
    try:
        corpus = load_corpus(args.corpus, args.survey_index)
        result = evaluate(args.articles, corpus, seed=args.seed, names=args.name or None)
    except (CorpusError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    md, js = write(result, args.out)
    print(f"wrote {md} and {js}")
    for s in result["systems"]:
        if s["unmapped_references"]:
            print(f"{s['system']}: {len(s['unmapped_references'])} of {s['references']} references not in the corpus",
                  file=sys.stderr)
    return EXIT_OK
