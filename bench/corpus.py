"""Deterministic benchmark corpora: N documents of ~T tokens each, written as a reference-format JSONL line

    {"title": str, "papers": [{"title": str, "abstract": str, "txt": str, "url": str}]}

    python bench/corpus.py --n 60 --tokens 3000 --seed 0 -o /tmp/c60.jsonl

The same (n, tokens, seed) always gives byte-identical output. Documents fall into a handful of topics so a
grouping step has something to group; the text is synthetic technical prose (~1.3 tokens per word).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOPICS = ["scheduling", "caching", "consensus", "compilers", "storage", "networking", "verification", "learning"]
VOCAB = (
    "system latency throughput model method result benchmark workload queue thread process kernel memory "
    "cache disk network packet protocol replica leader quorum failure recovery checkpoint log index tree "
    "hash table graph vertex edge path search heuristic bound proof invariant type compiler optimizer pass "
    "register loop vector tensor gradient loss training inference accuracy precision recall dataset sample "
    "batch epoch layer attention encoder decoder token sequence alignment evaluation baseline ablation error "
    "variance estimator policy reward agent environment simulation trace profile overhead speedup scaling "
    "partition shard consistency isolation transaction lock contention fairness priority deadline energy"
).split()
CONNECTIVES = ["however", "moreover", "in contrast", "as a result", "in particular", "for example", "overall"]


def _sentence(rng: random.Random, topic: str) -> str:
    words = [rng.choice(VOCAB) for _ in range(rng.randint(10, 22))]
    words.insert(rng.randrange(len(words)), topic)
    if rng.random() < 0.3:
        words.insert(0, rng.choice(CONNECTIVES) + ",")
    if rng.random() < 0.25:
        words.append(f"by {rng.randint(2, 97)}.{rng.randint(0, 9)}%")
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def chars4(text: str) -> int:
    """The reference's unit of corpus size: characters ÷ 4."""
    return len(text) // 4


def _text(rng: random.Random, topic: str, tokens: int, unit: str = "o200k") -> str:
    """Paragraphs of sentences until ~`tokens` tokens, counted in o200k (the project's tokenizer) or in
    characters ÷ 4 (`unit="chars4"`, the reference's measurement)."""
    from llmxmr.models.tokens import count_tokens, ensure_tiktoken_offline

    ensure_tiktoken_offline()
    count = count_tokens if unit == "o200k" else chars4
    paras: list[str] = []
    total = 0
    while total < tokens:
        para = " ".join(_sentence(rng, topic) for _ in range(rng.randint(4, 8)))
        n = count(para) + 1
        if total + n > tokens * 1.02 and paras:
            break
        paras.append(para)
        total += n
    return "\n\n".join(paras)


def make_corpus(n: int, tokens: int, seed: int = 0, *, title: str | None = None, unit: str = "o200k") -> dict:
    rng = random.Random(f"llmxmr-bench:{n}:{tokens}:{seed}")
    papers = []
    for i in range(n):
        topic = TOPICS[rng.randrange(len(TOPICS))]
        head = " ".join(rng.choice(VOCAB) for _ in range(3))
        ptitle = f"{head.title()} for {topic.title()}: Study {i + 1}"
        abstract = " ".join(_sentence(rng, topic) for _ in range(4))
        papers.append({"title": ptitle, "abstract": abstract, "txt": _text(rng, topic, tokens, unit),
                       "url": f"https://example.org/bench/{seed}/{i + 1}"})
    return {"title": title or f"A Survey of Systems Research ({n} documents)", "papers": papers}


def write_corpus(path: str | Path, n: int, tokens: int, seed: int = 0, unit: str = "o200k") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(make_corpus(n, tokens, seed, unit=unit), ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def corpus_tokens(path: str | Path, unit: str = "o200k") -> int:
    """Tokens of every document's text in a reference-format JSONL file (o200k, or characters ÷ 4)."""
    from llmxmr.models.tokens import count_tokens, ensure_tiktoken_offline

    ensure_tiktoken_offline()
    count = count_tokens if unit == "o200k" else chars4
    total = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            total += sum(count(p.get("txt") or "") for p in json.loads(line)["papers"])
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a deterministic benchmark corpus (reference JSONL).")
    ap.add_argument("--n", type=int, required=True, help="documents")
    ap.add_argument("--tokens", type=int, default=3000, help="tokens per document (approximately)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args(argv)
    path = write_corpus(args.out, args.n, args.tokens, args.seed)
    print(f"{path}: {args.n} documents, {corpus_tokens(path)} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
