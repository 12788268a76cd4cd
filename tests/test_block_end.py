"""The block's end (default mode): the fresh re-scores of C and O_b are two `entropy_score` tasks of one
superstep (one round of latency), and `block_end` decides the block from them."""

from __future__ import annotations

from types import SimpleNamespace

from graph_helpers import judge_digit
from langgraph.store.memory import InMemoryStore

from llmxmr import run_store
from llmxmr.core.tree import outline_key
from llmxmr.graph import routes
from llmxmr.graph.adapter import StepAdapter
from llmxmr.nodes.loop import RESCORE_CANDIDATE, block_end
from llmxmr.nodes.scoring import entropy_score
from llmxmr.state.context import resolve_settings
from llmxmr.state.records import Outline, Section
from llmxmr.testing.fake_model import ScriptedChatModel


def _outline(title: str) -> Outline:
    return Outline(title="T", sections=[Section(section_id="s1", title=title)], next_id=2)


def _block_end(scores: dict[str, int]) -> tuple[dict, str, list]:
    store, run_id = InMemoryStore(), "r1"
    run_store.put_settings(store, run_id, resolve_settings({"mode": "default"}).model_dump())
    c, b = _outline("Candidate C"), _outline("Base O_b")
    for o in (c, b):
        run_store.put_outline(store, run_id, outline_key(o), o)

    def judge(messages, n):
        return judge_digit(scores["C"] if "Candidate C" in messages[-1].content else scores["B"])

    adapter = StepAdapter(ScriptedChatModel(overrides={"judge": judge}))
    runtime = SimpleNamespace(store=store, stream_writer=None)
    state = {"run_id": run_id, "block": 2, "stop_reason": "", "base_key": outline_key(b), "round": 0,
             "rescore_keys": [outline_key(c), outline_key(b)],
             "best": {"outline_key": outline_key(c), "J": 9.0, "rationale": ""}}
    sends = routes.refine_or_end(state)
    commands = [adapter.node(entropy_score)(s.arg, runtime) for s in sends]
    state["scores"] = [r for cmd in commands for r in cmd.update["scores"]]
    return adapter.node(block_end)(state, runtime), outline_key(c), sends


def test_the_two_rescores_are_one_fan_out_with_a_fresh_candidate_index():
    _, key_c, sends = _block_end({"C": 8, "B": 5})
    assert [s.node for s in sends] == ["entropy_score", "entropy_score"]
    assert [s.arg["unit"] for s in sends] == ["b2:rescore_C", "b2:rescore_Ob"]
    assert {s.arg["candidate"] for s in sends} == {RESCORE_CANDIDATE + 2}, "never a replay of a layer's judge call"
    assert all(s.arg["then"] == "block_end" for s in sends)


def test_a_better_C_on_fresh_scores_goes_on_to_be_digested():
    update, key_c, _ = _block_end({"C": 8, "B": 5})
    assert "stop_reason" not in update
    assert update["outline_key"] == key_c
    assert update["best"]["J"] == 8 * 10 / 9, "C keeps its fresh score, not the layer's best"


def test_a_C_no_better_than_O_b_on_fresh_scores_stops():
    update, _, _ = _block_end({"C": 5, "B": 6})
    assert update["stop_reason"] == "converged: no better outline"


def test_when_C_is_O_b_nothing_is_rescored():
    state = {"run_id": "r", "block": 0, "round": 0, "rescore_keys": [], "best": {"outline_key": "k"}}
    assert routes.refine_or_end(state) == "block_end"
