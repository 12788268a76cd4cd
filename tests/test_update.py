"""`llmxmr update` from code: an update is a new input on a finished thread. The scripted model writes a
12-document survey; adding 3 documents re-writes only the sections their digests touch (and their
ancestors), removing one drops its citations and renumbers the references, and every earlier version stays
readable from the thread's history."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from graph_helpers import article_problems, judge_digit, papers, revisions, user_text
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from llmxmr import run_store
from llmxmr.citations import find_citations
from llmxmr.core.changes import refine_decision, render_changelog
from llmxmr.core.entropy import combine
from llmxmr.core.tree import iter_sections
from llmxmr.graph import build_graph
from llmxmr.models.errors import BudgetExceededError
from llmxmr.runs import versions
from llmxmr.state.context import Context, Settings
from llmxmr.state.records import Outline
from llmxmr.testing.fake_model import ScriptedChatModel
from llmxmr.testing.responder import DOC_RE, SECTION_RE
from llmxmr.updates import UpdateError

FAST = dict(mode="default", units=2, max_layers=1, refine_rounds=0, best_of=1, max_blocks=1)
THREAD = "living"
CONFIG = {"configurable": {"thread_id": THREAD}, "max_concurrency": 8}
CORPUS = papers(15)


class Thread:
    """One finished 12-document survey on a checkpointed thread, and its model."""

    def __init__(self, overrides: dict[str, Any] | None = None, **context: Any) -> None:
        self.model = ScriptedChatModel(overrides=overrides or {})
        self.store, self.saver = InMemoryStore(), InMemorySaver()
        self.graph = build_graph(models=self.model, store=self.store, checkpointer=self.saver)
        self.first = self.graph.invoke({"papers": CORPUS[:12], "title": "T"}, CONFIG, context=Context(**{**FAST, **context}))

    def values(self) -> dict[str, Any]:
        return self.graph.get_state(CONFIG).values

    def texts(self) -> dict[str, str]:
        """Section id -> its stored text (citations as [@id] markers), as the article is assembled from."""
        return {sid: run_store.get_section(self.store, THREAD, ref) for sid, ref in self.values()["sections"].items()}

    def update(self, **request: Any) -> dict[str, Any]:
        return self.graph.invoke({"update": request}, CONFIG)

    def calls(self) -> dict[str, int]:
        return dict(self.model.calls)


@pytest.fixture
def thread() -> Thread:
    return Thread()


def parents(outline: Outline) -> dict[str, str | None]:
    return {s.section_id: parent for s, _, parent in iter_sections(outline)}


def touched_by(store: InMemoryStore, key: str, paper_ids: list[str], outline: Outline) -> set[str]:
    """Sections some added paper's digest has content for, and their ancestors: read from the store."""
    touched = set()
    for pid in paper_ids:
        digest = run_store.get_digest(store, THREAD, key, pid)
        touched |= {sid for sid, text in digest.sections.items() if text.strip()}
    up = parents(outline)
    for sid in list(touched):
        while up[sid] is not None:
            sid = up[sid]
            touched.add(sid)
    return touched


def test_adding_three_documents_rewrites_only_the_sections_their_digests_touch(thread: Thread) -> None:
    before, calls_before = thread.texts(), thread.calls()
    key = thread.values()["final_key"]
    out = thread.update(add_papers=CORPUS[12:], refine="never")
    new_ids = [r["paper_id"] for r in out["report"]["papers"]["included"][12:]]
    assert len(new_ids) == 3 and out["version"] == 2
    outline = Outline(**out["outline"])
    expected = touched_by(thread.store, key, new_ids, outline)
    (entry,) = out["changelog"]
    rewritten = {s["section_id"] for s in entry["sections"]["rewritten"]}
    assert rewritten == expected
    after = thread.texts()
    kept = set(before) - rewritten
    assert kept and entry["sections"]["kept"] == len(kept)
    assert {sid: after[sid] for sid in kept} == {sid: before[sid] for sid in kept}  # byte-identical
    assert all(after[sid] != before[sid] for sid in rewritten)
    assert set(new_ids) <= {r["paper_id"] for r in out["references"]}  # the new documents are cited
    assert article_problems(out) == []
    # Paid for: the three documents read and digested, the rewritten sections written, polished, checked.
    paid = {stage: n - calls_before.get(stage, 0) for stage, n in thread.calls().items() if n - calls_before.get(stage, 0)}
    assert paid["map"] == 3 and paid["digest"] == 3
    assert paid["write_section"] == paid["polish"] == len(rewritten)
    assert not {"group", "skeleton", "feedback", "judge", "modify"} & set(paid)
    assert {k: v["calls"] + v["cached"] for k, v in out["report"]["usage"].items() if v["calls"]} == paid
    assert {d["paper_id"] for d in entry["documents"]["added"]} == set(new_ids)
    assert {r["paper_id"] for r in entry["references"]["added"]} == set(new_ids)
    text = render_changelog(out["changelog"])
    for sid in rewritten:
        assert re.search(rf"^- Section rewritten: {sid} .*\((evidence added from|parent of rewritten)", text, re.MULTILINE)
    for pid in new_ids:
        assert f"- Reference added: `{pid}`" in text and f"- Documents added: `{pid}`" in text
    assert "Outline: not refined (refine=never)" in text


def test_removing_a_document_removes_its_citations_and_renumbers_references(thread: Thread) -> None:
    first = thread.first
    gone = first["references"][0]["paper_id"]  # cited first: reference [1]
    citing = {sid for sid, text in thread.texts().items() if gone in find_citations(text)}
    out = thread.update(remove=[gone], refine="never")
    assert gone not in {r["paper_id"] for r in out["references"]}
    assert gone not in out["article"] and gone not in out["report"]["pandoc_markdown"]
    assert all(gone not in find_citations(t) for t in thread.texts().values())
    assert [r["n"] for r in out["references"]] == list(range(1, len(first["references"])))  # renumbered from 1
    assert article_problems(out) == []
    (entry,) = out["changelog"]
    rewritten = {s["section_id"]: s["reason"] for s in entry["sections"]["rewritten"]}
    assert citing <= set(rewritten)
    assert all(f"cited removed {gone}" in rewritten[sid] or "evidence dropped" in rewritten[sid] for sid in citing)
    assert entry["references"]["removed"] == [{"paper_id": gone, "title": first["references"][0]["title"],
                                               "reason": "document removed"}]
    assert gone not in {p["paper_id"] for p in out["report"]["papers"]["included"]}


def test_every_earlier_version_is_read_back_from_the_thread_history(thread: Thread) -> None:
    second = thread.update(add_papers=CORPUS[12:13], refine="never")
    third = thread.update(remove=[CORPUS_ID(thread, 0)], refine="never")
    found = versions(thread.graph, THREAD)
    assert [v.number for v in found] == [1, 2, 3]
    assert [v.values["article"] for v in found] == [thread.first["article"], second["article"], third["article"]]
    assert found[0].values["article"] != found[2].values["article"]
    assert [e["version"] for e in third["changelog"]] == [2, 3]
    assert not found[0].values.get("changelog")


def CORPUS_ID(thread: Thread, i: int) -> str:
    return thread.first["report"]["papers"]["included"][i]["paper_id"]


def test_refine_auto_goes_on_only_when_the_new_documents_suggestions_raise_the_entropy_score() -> None:
    flat = Thread(overrides={"judge": lambda messages, n: judge_digit(5)})  # every outline scores the same
    calls = flat.calls()
    out = flat.update(add_papers=CORPUS[12:], refine="auto")
    (entry,) = out["changelog"]
    assert entry["refine"].startswith("not refined: the new documents' suggestions move E")
    assert entry["probe"]["J_outline"] == entry["probe"]["J_suggested"]
    paid = {k: v - calls.get(k, 0) for k, v in flat.calls().items() if v - calls.get(k, 0)}
    # The probe: one feedback for the three new documents' group, its modify, two judge answers (the outline
    # itself, replayed from the response record: the first run asked the same; and the suggested one);
    # nothing more of the loop, and the outline stays.
    assert (paid["feedback"], paid["modify"], paid["judge"], paid["digest"]) == (1, 1, 1, 3)
    judge = out["report"]["usage"]["judge"]
    assert (judge["calls"], judge["cached"]) == (1, 1)
    assert not {"critique", "merge_suggestions"} & set(paid)
    assert out["outline"] == flat.first["outline"] and article_problems(out) == []

    keen = Thread(overrides={"judge": lambda messages, n: judge_digit(min(9, 1 + 2 * revisions(messages))),
                             "digest": stable_digest})
    out = keen.update(add_papers=CORPUS[12:], refine="auto")
    (entry,) = out["changelog"]
    settings = Settings(**run_store.get_settings(keen.store, THREAD))
    H, lam = entry["entropy"]["H"], settings.entropy_lambda
    assert entry["refine"] == refine_decision(combine(entry["probe"]["J_outline"], H, lam),
                                              combine(entry["probe"]["J_suggested"], H, lam), settings.epsilon)[1]
    assert entry["refine"].startswith("refined: ")
    assert out["outline"] != keen.first["outline"]  # the block went on and found a better outline
    assert article_problems(out) == []


def test_refine_always_runs_one_refinement_block() -> None:
    always = Thread()
    calls = always.calls()
    out = always.update(add_papers=CORPUS[12:], refine="always")
    (entry,) = out["changelog"]
    assert entry["refine"] == "refined (refine=always)" and entry["probe"] is None
    paid = {k: v - calls.get(k, 0) for k, v in always.calls().items()}
    assert paid["feedback"] == 1  # one group: the three added documents
    assert out["report"]["usage"]["judge"]["calls"] + out["report"]["usage"]["judge"]["cached"] >= 2
    assert article_problems(out) == []
    kept = entry["sections"]["kept"]
    assert kept + len(entry["sections"]["rewritten"]) + len(entry["sections"]["added"]) == len(
        list(iter_sections(Outline(**out["outline"]))))


def test_duplicates_are_ignored_and_reported(thread: Thread) -> None:
    calls = thread.calls()
    out = thread.update(add_papers=[CORPUS[0], CORPUS[12]], refine="never")
    (entry,) = out["changelog"]
    assert [d["paper_id"] for d in entry["documents"]["ignored"]] == [CORPUS_ID(thread, 0)]
    assert entry["documents"]["ignored"][0]["reason"] == "already in the run (same id)"
    assert len(entry["documents"]["added"]) == 1
    assert thread.calls()["map"] - calls["map"] == 1
    assert len(out["report"]["papers"]["included"]) == 13
    assert "Documents ignored" in render_changelog(out["changelog"])


def test_unknown_remove_id_and_empty_update_are_errors_listing_the_known_ids(thread: Thread) -> None:
    with pytest.raises(UpdateError, match=r"cannot remove nope: no document of this run has that id\. Known ids: paper-0"):
        thread.update(remove=["nope"])
    with pytest.raises(UpdateError, match="nothing to update: every added document is already in the run"):
        Thread().update(add_papers=CORPUS[:2])


def test_an_unfinished_thread_cannot_be_updated() -> None:
    graph = build_graph(models=ScriptedChatModel(), store=InMemoryStore(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "half"}, "max_concurrency": 8}
    with pytest.raises(BudgetExceededError):
        graph.invoke({"papers": CORPUS[:6], "title": "T"}, config, context=Context(**FAST, max_calls=3))
    with pytest.raises(UpdateError, match="has not finished its first version"):
        graph.invoke({"update": {"add_papers": CORPUS[12:]}}, config)


def test_an_update_stopped_midway_resumes_like_any_run(thread: Thread) -> None:
    saved = run_store.get_settings(thread.store, THREAD)
    run_store.put_settings(thread.store, THREAD, {**saved, "max_calls": 8})  # the update stops while writing
    calls = thread.calls()
    with pytest.raises(BudgetExceededError):
        thread.update(add_papers=CORPUS[12:], refine="never")
    assert thread.graph.get_state(CONFIG).next  # stopped inside the update
    assert thread.calls()["map"] - calls["map"] == 3
    run_store.put_settings(thread.store, THREAD, {**saved, "max_calls": None})
    out = thread.graph.invoke(None, CONFIG)
    assert out["version"] == 2 and out["changelog"][0]["version"] == 2
    paid = {k: v - calls.get(k, 0) for k, v in thread.calls().items()}
    assert paid["map"] == 3 and paid["digest"] == 3  # nothing read twice
    assert [v.number for v in versions(thread.graph, THREAD)] == [1, 2]
    assert article_problems(out) == []


def test_reference_mode_updates_digest_the_full_text_and_keep_the_other_sections() -> None:
    ref = Thread(mode="reference")
    before, calls = ref.texts(), ref.calls()
    out = ref.update(add_papers=CORPUS[12:], remove=[CORPUS_ID(ref, 1)], refine="never")
    (entry,) = out["changelog"]
    paid = {k: v - calls.get(k, 0) for k, v in ref.calls().items() if v - calls.get(k, 0)}
    assert "map" not in paid and paid["digest"] == 3  # the reference has no map pass
    kept = set(before) - {s["section_id"] for s in entry["sections"]["rewritten"]}
    assert kept and all(ref.texts()[sid] == before[sid] for sid in kept)
    assert CORPUS_ID(ref, 1) not in {r["paper_id"] for r in out["references"]}
    assert article_problems(out) == []


def stable_digest(messages: Any, n: int) -> str:
    """A digest that files a paper under the same two sections of any outline with the same section ids."""
    user = user_text(messages)
    pid = DOC_RE.search(user).group(1)
    ids = list(dict.fromkeys(SECTION_RE.findall(user.split("<document", 1)[0])))
    k = int(hashlib.sha256(pid.encode()).hexdigest(), 16)
    chosen = dict.fromkeys([ids[k % len(ids)], ids[(k // 7) % len(ids)]])
    return json.dumps({"sections": [{"section_id": s, "content": f"A finding [@{pid}]."} for s in chosen],
                       "suggestion": f"Cover its method in its own section [@{pid}]."})


def test_a_refined_outline_keeps_the_unchanged_sections_verbatim_under_its_new_key() -> None:
    # The judge prefers outlines the scripted modify has retitled more often: refinement finds a better one.
    better = Thread(overrides={"judge": lambda messages, n: judge_digit(min(9, 1 + 2 * revisions(messages))),
                               "digest": stable_digest})
    before, old_key = better.texts(), better.values()["final_key"]
    old_ids = {s.section_id for s, _, _ in iter_sections(Outline(**better.first["outline"]))}
    out = better.update(add_papers=CORPUS[12:], refine="always")
    new_key = better.values()["final_key"]
    assert new_key != old_key  # the refined outline won
    (entry,) = out["changelog"]
    changed = {s["section_id"] for s in entry["sections"]["rewritten"] + entry["sections"]["added"]}
    new_ids = {s.section_id for s, _, _ in iter_sections(Outline(**out["outline"]))}
    kept = new_ids - changed
    assert kept and entry["sections"]["kept"] == len(kept)
    assert {s["section_id"] for s in entry["sections"]["removed"]} == old_ids - new_ids
    after = better.texts()
    assert set(after) == new_ids and all(better.values()["sections"][sid] == f"{new_key}/{sid}" for sid in new_ids)
    assert {sid: after[sid] for sid in kept} == {sid: before[sid] for sid in kept}
    assert any("its outline entry changed" in s["reason"] for s in entry["sections"]["rewritten"])
    assert article_problems(out) == []
    # The kept sections' claim records moved to the new key with their counts and version.
    v = out["report"]["verification"]
    assert v["claims_checked"] == len(v["claims"]) and v["checked_sections"] == [s for s in v["checked_sections"] if s in changed]
    assert {c["version"] for c in v["claims"] if c["section_id"] in kept} == {1}


def test_an_updated_versions_verification_counts_cover_the_whole_article(thread: Thread) -> None:
    first = thread.first["report"]["verification"]
    out = thread.update(add_papers=CORPUS[12:], refine="never")
    v = out["report"]["verification"]
    (entry,) = out["changelog"]
    rewritten = {s["section_id"] for s in entry["sections"]["rewritten"]}
    order = [s.section_id for s, _, _ in iter_sections(Outline(**out["outline"]))]
    claims = v["claims"]
    assert rewritten and set(order) - rewritten  # some sections re-checked, some kept
    assert {c["section_id"] for c in claims} - rewritten  # the kept sections' claims are reported...
    # ... and counted: the counts describe the per-claim records of the whole article.
    assert v["claims_checked"] == len(claims) > thread.values()["verification"]["claims_checked"]
    assert v["pairs"] == sum(len(c["cited"]) for c in claims)
    for name, statuses in (("supported_after", ("supported", "partial")), ("unsupported", ("unsupported",)),
                           ("unchecked", ("unchecked",))):
        assert v[name] == sum(c["status"] in statuses for c in claims), name
    assert v["supported_before"] == sum(not c["repaired"] and all(k["verdict"] in ("supported", "partial") for k in c["checks"])
                                        for c in claims)
    # Which claims this version checked: the rewritten sections', stamped with version 2; the kept ones
    # carry their first version's records unchanged.
    assert v["checked_sections"] == [sid for sid in order if sid in rewritten]
    assert {c["version"] for c in claims if c["section_id"] in rewritten} == {2}
    kept_before = [c for c in first["claims"] if c["section_id"] not in rewritten]
    assert [c for c in claims if c["section_id"] not in rewritten] == kept_before
    assert kept_before and {c["version"] for c in kept_before} == {1}
    assert first["checked_sections"] == order  # a first run checks every section
