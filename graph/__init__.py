"""Wiring of the pipeline: `build_graph()`, the writer subgraph, and the module-level graphs for Studio."""

from llmxmr.graph.build import build_graph
from llmxmr.graph.evaluate import build_eval_graph
from llmxmr.graph.writer import build_writer_graph

# Module-level graphs (LangGraph Studio / `langgraph dev`): no checkpointer and no store, as the server
# refuses graphs compiled with either and provides its own.
graph = build_graph()
writer_graph = build_writer_graph()
eval_graph = build_eval_graph()

__all__ = ["build_eval_graph", "build_graph", "build_writer_graph", "eval_graph", "graph", "writer_graph"]
