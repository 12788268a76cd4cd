"""The benchmark's fixed knobs, shared by the harness (bench/run.py) and the report (bench/report.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CAP = 20  # requests in flight: the reference's cap per model name
LAT = 1.0  # seconds per call for the latency-bound figures
PER_TOKEN = 0.005  # realistic decode: 5 ms per completion token
# The embedded demo's configuration: the `--set` flags of scripts/demo.sh (a test holds the two together).
DEMO_SET = {"max_blocks": 1, "max_layers": 1, "units": 2, "refine_rounds": 1, "best_of": 1, "max_output_tokens": 400}
QUICK_SET = {"max_blocks": 1, "max_layers": 1, "units": 2, "refine_rounds": 1, "best_of": 1}
ONE_BLOCK = "default, one block"  # the cache part's default-mode run held to mode=reference's one block
# ... and without the citation check, which mode=reference (like the reference implementation) does not make:
# the same work as mode=reference, for the prompt-token goal like with like.
SAME_WORK = "default, one block, no citation check"
