"""The section-writer subgraph on its own (as Studio runs it): an inline outline, digests and paper refs in;
every section written by height (children before parents), evidence-only citations, charts when enabled."""

from __future__ import annotations

import re

import pytest
from graph_helpers import Recorder, user_text
from langgraph.store.memory import InMemoryStore

from llmxmr import run_store
from llmxmr.citations import find_citations
from llmxmr.graph import build_writer_graph
from llmxmr.state.context import Context
from llmxmr.testing.fake_model import ScriptedChatModel


def sec(sid, title, children=(), analysis=""):
    return {"section_id": sid, "title": title, "construction": f"Extract {title.lower()}.",
            "analysis": analysis or f"Compare {title.lower()} across papers.", "children": list(children)}


# s1 (height 2) > s2 (leaf), s3 (height 1) > s4, s5 (leaves); s6 is a top-level leaf.
OUTLINE = {
    "title": "Concurrency survey",
    "sections": [
        sec("s1", "Foundations", [
            sec("s2", "Queues", analysis="Contrast queue designs, as [@p-b] also does."),
            sec("s3", "Locks", [sec("s4", "Spin locks"), sec("s5", "Mutexes")]),
        ]),
        sec("s6", "Outlook"),
    ],
    "next_id": 7,
}
NUMBERS = {"s1": "1", "s2": "1.1", "s3": "1.2", "s4": "1.2.1", "s5": "1.2.2", "s6": "2"}
PARENTS = {"s2": "s1", "s3": "s1", "s4": "s3", "s5": "s3"}
DIGESTS = [
    {"paper_id": "p-a", "outline_key": "", "sections": {"s2": "Lock-free queues scale [@p-a].",
                                                         "s4": "Spinning wastes cycles under contention [@p-a]."}},
    {"paper_id": "p-b", "outline_key": "", "sections": {"s5": "Futex-based mutexes sleep cheaply [@p-b].",
                                                         "s6": "Transactional memory may replace locks [@p-b]."}},
    {"paper_id": "p-c", "outline_key": "", "sections": {"s1": "A taxonomy of synchronisation [@p-c]."}},
]
REFS = [{"paper_id": "p-a", "title": "Queues"}, {"paper_id": "p-b", "title": "Mutexes"}, {"paper_id": "p-c", "title": "Taxonomy"}]


def cite_outside_evidence(messages, n):
    """For s2 the model also cites p-b, a paper outside s2's evidence (the others answer as scripted)."""
    if user_text(messages).startswith("Section 1.1 "):
        return "Queues trade memory for latency [@p-a], unlike mutexes [@p-b]."
    return None


def write(charts: bool, run_id: str = "writer-test"):
    rec = Recorder()
    model = ScriptedChatModel(overrides=rec.all_stages(write_section=cite_outside_evidence))
    store = InMemoryStore()
    graph = build_writer_graph(models=model, store=store)
    out = graph.invoke({"run_id": run_id, "final_key": "", "title": "Concurrency", "outline": OUTLINE,
                        "digests": DIGESTS, "paper_refs": REFS},
                       context=Context(charts=charts), config={"max_concurrency": 8})
    texts = {sid: run_store.get_section(store, run_id, ref) for sid, ref in out["sections"].items()}
    return out, texts, rec, model


def section_of(messages) -> str:
    first = user_text(messages).splitlines()[0]
    number = re.match(r"Section (\S+) ", first).group(1)
    return {v: k for k, v in NUMBERS.items()}[number]


@pytest.fixture(scope="module")
def with_charts():
    return write(charts=True)


def test_every_section_is_written_once(with_charts):
    out, texts, rec, model = with_charts
    assert set(out["sections"]) == set(NUMBERS)
    assert all(texts[sid].strip() for sid in NUMBERS)
    assert model.calls["write_section"] == 6 and model.calls["polish"] == 6
    assert sorted(section_of(m) for m in rec.of("write_section")) == sorted(NUMBERS)
    assert out["usage"]["write_section"]["calls"] == 6


def test_parents_are_written_after_their_children(with_charts):
    _, texts, rec, _ = with_charts
    order = [section_of(m) for m in rec.of("write_section")]
    position = {sid: i for i, sid in enumerate(order)}
    for child, parent in PARENTS.items():
        assert position[child] < position[parent], order
    # height steps: every leaf before s3 (height 1), s3 before s1 (height 2)
    assert {order[i] for i in range(4)} == {"s2", "s4", "s5", "s6"}
    assert order[4:] == ["s3", "s1"]
    # a parent's prompt carries its children's finished text
    prompts = {section_of(m): user_text(m) for m in rec.of("write_section")}
    for child, parent in PARENTS.items():
        body = texts[child].split("```mermaid")[0].strip()
        assert "already written" in prompts[parent]
        assert body[:40] in prompts[parent]
    assert "already written" not in prompts["s2"]


def test_sections_cite_only_their_evidence(with_charts):
    out, texts, _, _ = with_charts
    assert set(find_citations(texts["s2"])) == {"p-a"}  # p-b is not s2's evidence: removed
    assert set(find_citations(texts["s6"])) == {"p-b"}
    assert set(find_citations(texts["s3"])) <= {"p-a", "p-b"}  # from its children
    assert "p-c" in find_citations(texts["s1"])  # its own digest
    removed = [f for f in out["failures"] if f["kind"] == "citation" and f["unit"] == "s2"]
    assert removed and "p-b" in removed[0]["message"]


def test_charts_are_appended_when_enabled(with_charts):
    out, texts, rec, model = with_charts
    assert model.calls["charts"] == 1
    assert "s1" in user_text(rec.of("charts")[0])
    with_mermaid = [sid for sid, t in texts.items() if "```mermaid" in t]
    assert with_mermaid == ["s1"]  # the scripted charts answer names the first section
    assert texts["s1"].rstrip().endswith("*Overview*")


def test_no_charts_call_when_disabled():
    out, texts, _, model = write(charts=False, run_id="writer-no-charts")
    assert model.calls["charts"] == 0
    assert "charts" not in out["usage"]
    assert not any("```mermaid" in t for t in texts.values())
    assert set(out["sections"]) == set(NUMBERS)
