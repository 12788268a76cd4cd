"""Default mode, end to end with the scripted model: units per layer, the layer stop by patience/epsilon,
the block stop rules (no better outline, entropy gain < epsilon, max_blocks), keep-if-better self-refine,
the final outline's entropy, and seeded reproducibility (METHOD.md §2.5, §4)."""

from __future__ import annotations

import json
import math
import re
import threading

from graph_helpers import (
    Recorder,
    article_problems,
    judge_digit,
    layer_records,
    papers,
    records,
    revisions,
    run,
    stage_totals,
    user_text,
)

from llmxmr.core.tree import outline_key
from llmxmr.state.records import Outline
from llmxmr.testing.fake_model import ScriptedChatModel

N = 9
G = math.ceil(N / 3)
DIGIT = 10 / 9
FAST = dict(mode="default", units=4, max_layers=2, refine_rounds=1, best_of=2, max_blocks=1)


def judge_by_revisions(score_of):
    """A judge override scoring an outline by how many sections the scripted modify retitled."""
    return {"judge": lambda messages, n: judge_digit(score_of(revisions(messages)))}


def block_E(out) -> list[float]:
    return [r["best"] for r in records(out, "block")]


def final_record(out):
    (final,) = records(out, "final")
    return final


def assert_final_is_highest_E(out):
    """The final outline is the highest-E outline among O_0..O_last: never below O_0."""
    Es = block_E(out)
    final = final_record(out)
    assert final["best"] == max(Es)
    assert final["best"] >= Es[0]
    assert final["block"] == Es.index(max(Es))
    assert final["parts"]["outline_key"] == outline_key(Outline(**out["outline"]))


def outline_revisions(out) -> int:
    return sum(1 for t in _titles(out["outline"]["sections"]) if t.startswith("Revised:"))


def _titles(sections):
    for s in sections:
        yield s["title"]
        yield from _titles(s["children"])


def test_layer0_has_one_unit_per_feedback_and_sampling_layers_have_units_units():
    model = ScriptedChatModel(overrides=judge_by_revisions(lambda r: 5))
    out = run(model, papers(N), **{**FAST, "units": 4, "max_layers": 3, "patience": 10, "epsilon": 0.0})
    layers = layer_records(out)
    assert [r["layer"] for r in layers] == [0, 1, 2, 3]
    assert [r["parts"]["units"] for r in layers] == [G, 4, 4, 4]
    assert [r["parts"]["plan"] for r in layers] == ["layer0", "sampling", "sampling", "sampling"]
    assert all(r["parts"]["failed"] == 0 for r in layers)
    totals = stage_totals(out)
    assert totals["map"] == N and totals["digest"] == N
    assert totals["feedback"] == G
    # layer 0 modifies once per feedback; every sampling unit merges 3 suggestions, modifies and scores
    assert totals["modify"] == G + 3 * 4 + 1 * 2
    assert totals["merge_suggestions"] == 3 * 4
    assert totals["judge"] == 1 + G + 3 * 4 + 1 * 2
    assert totals["critique"] == 2
    # every score equal: nothing beats O_b, so the block stops without re-scoring or re-digesting
    assert out["report"]["stop_reason"] == "converged: no better outline"
    assert article_problems(out) == []


def test_layers_stop_after_patience_layers_without_epsilon_gain():
    for patience in (1, 2):
        model = ScriptedChatModel(overrides=judge_by_revisions(lambda r: 5))
        out = run(model, papers(N), **{**FAST, "max_layers": 6, "patience": patience, "epsilon": 0.1})
        layers = layer_records(out)
        assert [r["layer"] for r in layers] == list(range(patience + 1)), patience
        totals = stage_totals(out)
        assert totals["modify"] == G + patience * 4 + 2
        assert totals["merge_suggestions"] == patience * 4


def test_layers_continue_while_scores_improve():
    """Each layer's outlines score higher than the previous layer's: the layers run to max_layers."""
    def modify(messages, n):  # the n-th modify call retitles s1 with its own version number
        return json.dumps({"edits": [{"op": "retitle", "section_id": "s1", "title": f"Revised: v{n}"}]})

    def judge(messages, n):
        m = re.search(r"Revised: v(\d+)", user_text(messages))
        return judge_digit(min(9, 1 + int(m.group(1)) // 4) if m else 1)

    model = ScriptedChatModel(overrides={"modify": modify, "judge": judge})
    out = run(model, papers(N), **{**FAST, "units": 4, "max_layers": 3, "patience": 1, "epsilon": 0.5})
    layers = layer_records(out)
    assert [r["layer"] for r in layers] == [0, 1, 2, 3]
    bests = [r["best"] for r in layers]
    assert all(b2 - b1 >= 0.5 for b1, b2 in zip(bests, bests[1:])), bests


def test_no_better_outline_stops_and_keeps_O0():
    # every modified outline scores below O_b
    model = ScriptedChatModel(overrides=judge_by_revisions(lambda r: 2 if r else 8))
    out = run(model, papers(N), **{**FAST, "refine_rounds": 2, "max_blocks": 3})
    report = out["report"]
    assert report["stop_reason"] == "converged: no better outline"
    # self-refine never replaced O_b by a worse candidate
    refine = records(out, "refine")
    assert len(refine) == 2
    for r in refine:
        assert math.isclose(r["best"], 8 * DIGIT)
        assert r["mean"] < r["best"]
    assert outline_revisions(out) == 0  # the final outline is O_0
    assert len(block_E(out)) == 1
    assert final_record(out)["block"] == 0
    totals = stage_totals(out)
    assert totals["digest"] == N  # no second digest pass
    assert totals["feedback"] == G  # no second block
    assert_final_is_highest_E(out)
    assert article_problems(out) == []


def test_self_refine_keeps_the_best_when_candidates_are_worse():
    # one retitle (any layer unit) scores 8; a second retitle (a refine candidate) is worse
    def modify(messages, n):  # always retitle a section not retitled yet: every candidate adds one
        fresh = re.findall(r"\[(s\d+)\] [\d.]+ (?!Revised:)", user_text(messages).split("Suggestion:")[0])
        return json.dumps({"edits": [{"op": "retitle", "section_id": fresh[0], "title": f"Revised: {n}"}]})

    overrides = {**judge_by_revisions(lambda r: {0: 5, 1: 8}.get(r, 3)), "modify": modify}
    model = ScriptedChatModel(overrides=overrides)
    out = run(model, papers(N), **{**FAST, "refine_rounds": 3, "best_of": 3, "entropy_lambda": 1.0})
    layer_best = max(r["best"] for r in layer_records(out))
    assert math.isclose(layer_best, 8 * DIGIT)
    refine = records(out, "refine")
    assert len(refine) == 3
    assert all(math.isclose(r["best"], layer_best) for r in refine)
    assert any(r["mean"] is not None and r["mean"] < r["best"] for r in refine)
    # C is a layer unit's outline (one retitle), re-scored above O_b: the block goes on to digest it
    assert outline_revisions(out) == 1
    assert stage_totals(out)["digest"] == 2 * N
    assert_final_is_highest_E(out)


def test_entropy_gain_below_epsilon_stops_and_final_is_the_higher_E():
    # C beats O_b by one digit (1.11 on 0-10), less than epsilon = 2: stop after the first block
    model = ScriptedChatModel(overrides=judge_by_revisions(lambda r: 6 if r else 5))
    out = run(model, papers(N), **{**FAST, "entropy_lambda": 1.0, "epsilon": 2.0, "max_blocks": 3})
    assert out["report"]["stop_reason"] == "converged: entropy gain < epsilon"
    Es = block_E(out)
    assert len(Es) == 2
    assert math.isclose(Es[0], 5 * DIGIT) and math.isclose(Es[1], 6 * DIGIT)
    assert final_record(out)["block"] == 1  # the higher E wins, although the gain was too small to go on
    assert outline_revisions(out) >= 1
    assert stage_totals(out)["digest"] == 2 * N
    assert_final_is_highest_E(out)


def test_lower_E_after_a_block_falls_back_to_O0():
    """C wins within the block but its fresh re-score (and so E_1) is lower than E_0: O_0 is final."""
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def judge(messages, n):
        text = user_text(messages)
        with lock:
            seen[text] = seen.get(text, 0) + 1
            first = seen[text] == 1
        if revisions(messages):
            return judge_digit(8 if first else 3)
        return judge_digit(5 if first else 2)

    model = ScriptedChatModel(overrides={"judge": judge})
    out = run(model, papers(N), **{**FAST, "entropy_lambda": 1.0, "epsilon": 0.1, "max_blocks": 3})
    assert out["report"]["stop_reason"] == "converged: entropy gain < epsilon"
    Es = block_E(out)
    assert len(Es) == 2 and Es[1] < Es[0]
    assert math.isclose(Es[0], 5 * DIGIT) and math.isclose(Es[1], 3 * DIGIT)
    assert final_record(out)["block"] == 0
    assert outline_revisions(out) == 0
    assert_final_is_highest_E(out)
    assert article_problems(out) == []


def test_max_blocks_stops_a_run_that_keeps_improving():
    model = ScriptedChatModel(overrides=judge_by_revisions(lambda r: min(9, 1 + r)))
    out = run(model, papers(N), **{**FAST, "entropy_lambda": 1.0, "epsilon": 0.1, "max_blocks": 2})
    assert out["report"]["stop_reason"] == "max_blocks reached (2)"
    Es = block_E(out)
    assert len(Es) == 3 and Es[0] < Es[1] < Es[2]
    totals = stage_totals(out)
    assert totals["digest"] == 3 * N and totals["feedback"] == 2 * G
    assert totals["map"] == N  # the map pass runs once, not per block
    assert final_record(out)["block"] == 2
    assert_final_is_highest_E(out)
    assert article_problems(out) == []


def test_same_seed_same_article_and_another_seed_draws_other_groups():
    def one(seed):
        rec = Recorder()
        model = ScriptedChatModel(overrides=rec.all_stages())
        out = run(model, papers(15), seed=seed, **{**FAST, "units": 3, "max_layers": 1, "patience": 5})
        return out, rec

    a, rec_a = one(3)
    b, _ = one(3)
    assert a["article"] == b["article"]
    assert a["outline"] == b["outline"]
    assert a["report"]["entropy_history"] == b["report"]["entropy_history"]
    c0, rec0 = one(0)
    c1, rec1 = one(1)
    # the block's inputs are identical across seeds; the sampled groups of layer 1 are not
    assert sorted(user_text(m) for m in rec0.of("feedback")) == sorted(user_text(m) for m in rec1.of("feedback"))
    merges0 = sorted(user_text(m) for m in rec0.of("merge_suggestions"))
    merges1 = sorted(user_text(m) for m in rec1.of("merge_suggestions"))
    assert len(merges0) == len(merges1) == 3
    assert merges0 != merges1


def test_a_unit_never_merges_a_suggestion_with_itself():
    """With |W| < kernel_width a sampling group is |W| draws with replacement; core.sampling leaves the
    de-duplication to its caller, so a group like [a, a] must reach the unit as the single suggestion a
    (no merge call), never as a merge of a with itself."""
    for seed in range(2):
        rec = Recorder()
        model = ScriptedChatModel(overrides=rec.all_stages())
        out = run(model, papers(6), seed=seed, **{**FAST, "units": 3, "max_layers": 1, "patience": 5})
        assert [r["parts"]["units"] for r in layer_records(out)] == [2, 3]  # G = 2 < kernel_width = 3
        feedbacks = [json.loads(text)["suggestion"] for stage, text in model.log if stage == "feedback"]
        assert len(feedbacks) == 2
        for messages in rec.of("merge_suggestions"):
            text = user_text(messages)
            counts = [text.count(f) for f in feedbacks]
            assert max(counts) == 1, (seed, counts)


def test_modify_sees_in_full_only_the_sections_its_suggestion_names():
    """Default-mode modify: descriptions of the named sections, titles for the rest; reference mode: all."""
    rec = Recorder()
    suggestion = json.dumps({"suggestion": "Split [s2] by method and retitle s3 [@x]."})
    model = ScriptedChatModel(overrides=rec.all_stages(feedback=lambda m, n: suggestion,
                                                       critique=lambda m, n: suggestion))
    run(model, papers(6), **{**FAST, "max_layers": 0})
    modify = [user_text(m) for m in rec.of("modify")]
    assert modify
    for text in modify:
        outline = text.split("Suggestion:")[0]
        described = re.findall(r"\[(s\d+)\][^\n]*\n\s+(?:construction|analysis):", outline)
        assert set(described) <= {"s2", "s3"} and described, outline
        assert len(re.findall(r"\[s\d+\]", outline)) > 2, "every section is still listed by id and title"
    judge = [user_text(m) for m in rec.of("judge")]
    assert all(t.count("construction:") > 2 for t in judge), "the judge still sees every description"

    # A suggestion that names no section could touch any: modify then sees every description.
    rec = Recorder()
    vague = json.dumps({"suggestion": "Restructure around the main trade-offs [@x]."})
    model = ScriptedChatModel(overrides=rec.all_stages(feedback=lambda m, n: vague, critique=lambda m, n: vague))
    run(model, papers(6), **{**FAST, "max_layers": 0})
    outlines = [user_text(m).split("Suggestion:")[0] for m in rec.of("modify")]
    assert outlines and all(t.count("construction:") == len(re.findall(r"\[s\d+\]", t)) for t in outlines)
