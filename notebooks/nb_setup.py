"""Shared set-up of the notebooks: which model, which corpus, small settings.

`LLMXMR_NOTEBOOK_MODEL` chooses the model:
- unset or `local`: the embedded SmolLM2 (bundled weights, CPU, offline; a few minutes per notebook);
- `stub`: the scripted responder behind a loopback OpenAI-compatible server (seconds; what CI runs);
- anything else: a model name, e.g. `openai:gpt-4o-mini` (with OPENAI_API_KEY) or `gguf:/path/model.gguf`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "examples" / "mini.jsonl").is_file())
MINI = ROOT / "examples" / "mini.jsonl"
MODEL = os.environ.get("LLMXMR_NOTEBOOK_MODEL", "local").strip() or "local"
STUB = MODEL == "stub"

# Small enough for the embedded CPU model: one block of layer 0 only (no sampling layers, no self-refine).
# About a minute for 01_quickstart on 2 CPU cores with SmolLM2 (measured: 40 s).
TINY: dict[str, Any] = dict(max_blocks=1, max_layers=0, units=1, refine_rounds=0, best_of=1, group_size=2,
                            max_output_tokens=500)
# The refinement loop notebook: more of the loop on the stub (fast), still small on a real model.
LOOP: dict[str, Any] = (dict(max_blocks=2, max_layers=3, units=3, refine_rounds=1, best_of=2, group_size=2)
                        if STUB else dict(TINY))  # one sampling layer took over 15 min on a busy 2-core box

_stub = None


def model_settings() -> dict[str, Any]:
    """The Context fields that choose the model."""
    global _stub
    if STUB:
        from llmxmr.testing.scripted_server import scripted_server

        if _stub is None:
            _stub = scripted_server().start()
        os.environ.setdefault("OPENAI_API_KEY", "not-needed")
        return {"model": "openai:scripted", "base_url": _stub.base_url}
    return {"model": MODEL}
