#!/usr/bin/env bash
# Set up, then write a survey of the example corpus on the embedded model (no API key, no internet).
# A deliberately small configuration so the 135M CPU model finishes in minutes; see README for real models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/llmxmr run examples/stdlib-concurrency.jsonl -o "${1:-out/demo}" \
  --set max_blocks=1 --set max_layers=1 --set units=2 --set refine_rounds=1 --set best_of=1 \
  --set max_output_tokens=400 "${@:2}"
