"""llmxmr: LLM×MapReduce-V2 (entropy-driven convolutional test-time scaling) as a LangGraph state machine.

    from llmxmr import build_graph, Context
    result = build_graph().invoke({"corpus_path": "examples/stdlib-concurrency.jsonl"}, context=Context())
    print(result["article"])
"""

from __future__ import annotations

from typing import Any

__all__ = ["Context", "Settings", "build_graph", "build_writer_graph", "resolve_settings"]


def __getattr__(name: str) -> Any:
    # Lazy: `import llmxmr` stays cheap and free of import cycles with the mapped subpackages.
    if name in ("build_graph", "build_writer_graph"):
        from llmxmr import graph

        return getattr(graph, name)
    if name in ("Context", "Settings", "resolve_settings"):
        from llmxmr.state import context

        return getattr(context, name)
    raise AttributeError(f"module 'llmxmr' has no attribute {name!r}")
