"""block_end (default mode): the fresh re-scores of C and O_b run together, and decide the block."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from graph_helpers import judge_digit
from langgraph.store.memory import InMemoryStore

from llmxmr.core.tree import outline_key
from llmxmr.nodes import storage
from llmxmr.nodes.env import Env
from llmxmr.nodes.loop import make_block_end
from llmxmr.state.context import resolve_settings
from llmxmr.state.models import Outline, Section
from llmxmr.testing.fake_model import ScriptedChatModel


def _outline(title: str) -> Outline:
    return Outline(title="T", sections=[Section(section_id="s1", title=title)], next_id=2)


def _block_end(scores: dict[str, int]) -> dict:
    store, run_id = InMemoryStore(), "r1"
    storage.put_settings(store, run_id, resolve_settings({"mode": "default"}).model_dump())
    c, b = _outline("Candidate C"), _outline("Base O_b")
    for o in (c, b):
        storage.put_outline(store, run_id, outline_key(o), o)
    both_asked = threading.Barrier(2, timeout=10)

    def judge(messages, n):
        both_asked.wait()  # raises BrokenBarrierError when the second call only starts after the first ends
        text = messages[-1].content
        return judge_digit(scores["C"] if "Candidate C" in text else scores["B"])

    node = make_block_end(Env(ScriptedChatModel(overrides={"judge": judge})))
    state = {"run_id": run_id, "block": 0, "stop_reason": "", "base_key": outline_key(b),
             "best": {"outline_key": outline_key(c), "J": 9.0, "rationale": ""}}
    return node(state, SimpleNamespace(store=store)), outline_key(c)


def test_rescores_run_concurrently_and_a_better_C_goes_on_to_be_digested():
    update, key_c = _block_end({"C": 8, "B": 5})
    assert "stop_reason" not in update
    assert update["outline_key"] == key_c and update["phase"] == "block_end"
    assert update["best"]["J"] == 8 * 10 / 9, "C keeps its fresh score, not the layer's best"
    assert update["usage"]["judge"]["calls"] == 2 and not update["failures"]


def test_a_C_no_better_than_O_b_on_fresh_scores_stops():
    update, _ = _block_end({"C": 5, "B": 6})
    assert update["stop_reason"] == "converged: no better outline"
