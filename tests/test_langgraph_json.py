"""Every `langgraph.json` entry loads the way `langgraph dev` loads it (module:attr, absolute import) and
offers Studio usable schemas: compiled, no checkpointer or store (the server refuses both), input and output
forms with the documented keys, and a configuration form whose fields carry descriptions."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from langgraph.graph.state import CompiledStateGraph

ROOT = Path(__file__).resolve().parents[1]
CONFIG = json.loads((ROOT / "langgraph.json").read_text())


def load(spec: str):
    """What the server does with a module-form entry: import the module, take the attribute."""
    assert ":" in spec and not spec.split(":")[0].endswith(".py"), f"{spec}: use the module form (package.module:attr)"
    module, attr = spec.split(":", 1)
    obj = getattr(importlib.import_module(module), attr)
    return obj() if callable(obj) and not isinstance(obj, CompiledStateGraph) else obj


def test_config_names_the_graphs_and_installs_the_project():
    assert set(CONFIG["graphs"]) == {"llmxmr", "llmxmr_writer", "llmxmr_eval"}
    assert "." in CONFIG["dependencies"]
    assert CONFIG.get("python_version") == "3.11"


@pytest.mark.parametrize("name", sorted(CONFIG["graphs"]))
def test_entry_is_a_compiled_graph_without_checkpointer_or_store(name):
    graph = load(CONFIG["graphs"][name])
    assert isinstance(graph, CompiledStateGraph)
    assert graph.checkpointer is None, "langgraph dev refuses a graph compiled with a checkpointer"
    assert graph.store is None, "langgraph dev refuses a graph compiled with a store"
    assert graph.name == name
    # The drawing Studio shows must be computable (conditional edges list their targets).
    drawing = graph.get_graph()
    assert len(drawing.nodes) > 3


def _props(schema: dict) -> dict:
    return schema.get("properties", {})


def test_main_graph_input_form():
    graph = load(CONFIG["graphs"]["llmxmr"])
    schema = graph.get_input_jsonschema()
    props = _props(schema)
    assert {"corpus_path", "papers", "title"} <= set(props)
    # Nothing internal leaks into the form and nothing is mandatory (a path OR inline papers; `update` on a
    # finished thread).
    assert not set(props) - {"corpus_path", "papers", "title", "survey_index", "update"}
    assert not schema.get("required")
    assert schema.get("description")


def test_main_graph_output_schema():
    graph = load(CONFIG["graphs"]["llmxmr"])
    props = _props(graph.get_output_jsonschema())
    assert {"article", "outline", "references", "report"} <= set(props)
    assert not {"run_id", "settings", "results", "working_set", "usage", "failures"} & set(props)


def test_writer_graph_input_and_output():
    writer = load(CONFIG["graphs"]["llmxmr_writer"])
    props = _props(writer.get_input_jsonschema())
    assert {"final_key", "outline", "digests", "paper_refs"} <= set(props)
    out = _props(writer.get_output_jsonschema())
    assert set(out) == {"sections", "verification", "usage", "failures"}


@pytest.mark.parametrize("name", sorted(CONFIG["graphs"]))
def test_context_form_has_descriptions(name):
    graph = load(CONFIG["graphs"][name])
    if name in ("llmxmr_writer", "llmxmr_eval") and graph.get_context_jsonschema() is None:
        pytest.skip("the writer and the evaluator declare no context schema of their own")
    props = _props(graph.get_context_jsonschema())
    for field in ("model", "base_url", "mode"):
        assert field in props
        assert len(props[field].get("description", "")) > 15, f"{field} needs a description for Studio's form"
    undocumented = [k for k, v in props.items() if not v.get("description")]
    assert not undocumented, f"Context fields without a description: {undocumented}"
    # Studio fills the form with the defaults: they must be JSON values.
    json.dumps({k: v.get("default") for k, v in props.items()})


def test_studio_shows_the_cards_nodes_and_the_loop_through_entropy_scoring():
    """The design card: map, outline-digest, convolution and entropy-scoring nodes that loop until the entropy
    converges, and a section-writer subgraph."""
    drawing = load(CONFIG["graphs"]["llmxmr"]).get_graph(xray=1)
    nodes = set(drawing.nodes)
    assert {"map_chunk", "outline_digest", "conv_unit", "entropy_score", "write:write_section"} <= nodes
    edges = {(e.source, e.target) for e in drawing.edges}
    # Every candidate outline passes through entropy scoring on its way to the join that decides.
    assert {("conv_unit", "entropy_score"), ("refine_candidate", "entropy_score"), ("block_start", "entropy_score"),
            ("entropy_score", "layer_done"), ("entropy_score", "refine_done"), ("entropy_score", "feedback_done"),
            ("entropy_score", "block_end")} <= edges
    # The convergence decision closes the loop: another block or the final outline.
    assert {("outline_digest", "block_entropy"), ("block_entropy", "block_start"),
            ("block_entropy", "select_final")} <= edges
