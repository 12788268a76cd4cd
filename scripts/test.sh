#!/usr/bin/env bash
# Set up, then run the whole test suite (offline: sockets are limited to loopback by pytest-socket).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="test,pdf,studio,notebooks,export,postgres" bash scripts/setup.sh
export LANGSMITH_TRACING=false LANGCHAIN_TRACING_V2=false LANGGRAPH_CLI_NO_ANALYTICS=1
exec .venv/bin/python -m pytest -q "$@"
