"""How many threads the embedded llama.cpp server should use on a machine that is busy with something else.

`python bench/local_threads.py [--busy K] [--threads 1,2] [--rounds 3]` starts the embedded server (the bundled
SmolLM2-135M, 2 slots as in a run) once per thread count, in a fresh process, and sends `--rounds` rounds of
two requests at once, each a demo-sized prompt (a digest: an outline and one document, ~1,500 tokens) with a
200-token answer. With `--busy K`, K CPU-bound processes (`while True: pass`) run beside it the whole time,
standing in for the user's other work. It prints the wall per round and llama.cpp's own prompt and decode
speeds (the `timings` of its answers), as JSON on the last line.

llama.cpp splits every matrix product across its threads and waits for all of them at each step, so a
thread that the OS deschedules for another process stalls the others: the number of threads matters most
when a core is taken. Never run this beside another benchmark.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROMPT_WORDS = 700  # ~1,500 SmolLM2 tokens: an outline and one document of the demo corpus
ANSWER_TOKENS = 200


def _spin() -> None:
    while True:
        pass


def _prompt(i: int) -> list[dict[str, str]]:
    examples = (ROOT / "examples" / "stdlib-concurrency.jsonl").read_text(encoding="utf-8")
    words = examples.split()
    start = (i * 397) % max(1, len(words) - PROMPT_WORDS)
    text = " ".join(words[start:start + PROMPT_WORDS])
    return [{"role": "system", "content": "Summarise the document under the outline's sections."},
            {"role": "user", "content": f"Document {i}:\n{text}\n\nWrite the summary."}]


def serve_and_measure(threads: int, rounds: int) -> dict[str, Any]:
    """In this process: start the server with `threads`, run the rounds, return the figures."""
    import httpx

    from llmxmr.models.local_server import bundled_weights_path, local_base_url

    base = local_base_url(bundled_weights_path(), n_ctx=2 * 4096, n_parallel=2, threads=threads)
    client = httpx.Client(timeout=None)

    def ask(i: int) -> dict[str, Any]:
        body = {"model": "m", "messages": _prompt(i), "max_tokens": ANSWER_TOKENS, "temperature": 0,
                "ignore_eos": True}
        resp = client.post(f"{base}/chat/completions", json=body)
        resp.raise_for_status()
        return resp.json().get("timings") or {}

    ask(99)  # warm-up: loads the weights into the cache
    walls, prompt_tps, decode_tps = [], [], []
    with ThreadPoolExecutor(2) as pool:
        for r in range(rounds):
            t0 = time.perf_counter()
            timings = list(pool.map(ask, (2 * r, 2 * r + 1)))
            walls.append(time.perf_counter() - t0)
            prompt_tps += [t.get("prompt_per_second", 0.0) for t in timings]
            decode_tps += [t.get("predicted_per_second", 0.0) for t in timings]
    return {"threads": threads, "round_walls_s": [round(w, 2) for w in walls],
            "round_wall_median_s": round(statistics.median(walls), 2),
            "prompt_tok_per_s_median": round(statistics.median(prompt_tps), 1),
            "decode_tok_per_s_median": round(statistics.median(decode_tps), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, default=0, help="CPU-bound processes beside the server")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(serve_and_measure(args.worker, args.rounds)))
        return 0
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    results = []
    try:
        for threads in (int(x) for x in args.threads.split(",")):
            out = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--rounds", str(args.rounds)],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"threads {threads}, {args.busy} busy: round {res['round_wall_median_s']} s, prompt "
                  f"{res['prompt_tok_per_s_median']} tok/s, decode {res['decode_tok_per_s_median']} tok/s", flush=True)
            results.append(res)
    finally:
        for p in spinners:
            p.terminate()
    print(json.dumps({"busy": args.busy, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
