"""`llmxmr plan --update THREAD`: what an update with refine=never would cost, before paying. The pure
parts (core.changes.expected_rewrites, plan.estimate_update) against their inputs, and the command against
a finished run over the scripted loopback server: it pays nothing, changes nothing, and its counts of the
added documents' calls are the update's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_update_cli import CORPUS, TINY, more_jsonl

from llmxmr import cli
from llmxmr.core.changes import expected_rewrites
from llmxmr.plan import check_calls, estimate_update
from llmxmr.state.context import resolve_settings
from llmxmr.state.records import Outline, Section
from llmxmr.testing.responder import stage_of
from llmxmr.testing.scripted_server import scripted_server


def section(sid: str, *children: Section) -> Section:
    return Section(section_id=sid, title=sid, construction="c", analysis="a", children=list(children))


# Two chapters of two leaves each: 6 sections, 2 levels.
OUTLINE = Outline(title="T", sections=[section("a", section("a1"), section("a2")), section("b", section("b1"), section("b2"))])
EVIDENCE = {"a1": {"p1": "x", "p2": "y"}, "a2": {"p2": "z"}, "b1": {"p3": "w"}}


def test_a_removal_rewrites_exactly_its_sections_and_their_ancestors() -> None:
    assert expected_rewrites(OUTLINE, EVIDENCE, {}, ["p1"], 0, 2.0) == 2  # a1 (evidence dropped), a
    assert expected_rewrites(OUTLINE, EVIDENCE, {"b2": ["p1"]}, ["p1"], 0, 2.0) == 4  # and b2 cited it, b
    assert expected_rewrites(OUTLINE, EVIDENCE, {}, [], 0, 2.0) == 0


def test_additions_count_the_runs_sections_per_digest_with_an_ancestor_each_at_most_every_section() -> None:
    assert expected_rewrites(OUTLINE, EVIDENCE, {}, [], 1, 1.5) == 2 + 2  # 2 sections, 2 ancestors
    assert expected_rewrites(OUTLINE, EVIDENCE, {}, ["p3"], 5, 2.0) == 6


def test_the_update_estimate_reads_and_digests_the_added_documents_once_and_writes_the_rewritten_sections() -> None:
    settings = resolve_settings({"mode": "default", "max_concurrency": 4})
    plan = estimate_update(settings, [3000, 1000, 500], [2, 1, 1], 20, 12, 5)
    assert (plan.stages["map"].calls, plan.stages["reduce_notes"].calls, plan.stages["digest"].calls) == (4, 1, 3)
    assert plan.stages["write_section"].calls == plan.stages["polish"].calls == 5
    first, repair, again = check_calls(settings, 5)
    assert (plan.stages["verify"].calls, plan.stages["repair"].calls) == (first + again, repair)
    assert not {"group", "skeleton", "feedback", "judge", "modify", "charts"} & set(plan.stages)
    removal = estimate_update(settings, [], None, 19, 12, 2)
    assert not {"map", "digest"} & set(removal.stages) and removal.stages["write_section"].calls == 2
    assert estimate_update(settings, [], None, 19, 12, 0).calls == 0


def rows(text: str) -> dict[str, int]:
    """Stage -> calls, from the plan's table."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\W*(\w+)\s*\W\s*(\d+)\s*\W", text, re.MULTILINE)}


@pytest.mark.usefixtures("offline_env")
def test_plan_update_pays_nothing_and_counts_the_added_documents_calls(tmp_path: Path, capsys) -> None:
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    more = str(more_jsonl(tmp_path / "more.jsonl"))
    with scripted_server() as server:
        model = ["--model", "openai:scripted", "--base-url", server.base_url]
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--db", str(db), "--thread", "t1", *model, *TINY]) == 0
        capsys.readouterr()
        paid, before = len(server.chat_requests), db.read_bytes()
        assert cli.main(["plan", "--update", "t1", "--db", str(db), "--add", more]) == 0
        captured = capsys.readouterr()
        text = captured.out + captured.err
        planned = rows(text)
        assert len(server.chat_requests) == paid and db.read_bytes() == before  # nothing paid, nothing written
        assert "already in the run (same id)" in text
        assert "update of thread t1 to version 2 (2 added, 0 removed" in " ".join(text.split())
        assert cli.main(["update", "t1", "--db", str(db), "-o", str(out), "--add", more, "--refine", "never", "-q"]) == 0
        done = [stage_of(r["body"]["messages"]) for r in server.chat_requests[paid:]]
    assert (planned["map"], planned["digest"]) == (done.count("map"), done.count("digest")) == (2, 2)
    # The sections to rewrite are estimated (the added digests are not made yet): here 8 for the 6 written.
    assert planned["write_section"] == planned["polish"] >= done.count("write_section") == done.count("polish") >= 1
    assert planned["total"] == sum(v for k, v in planned.items() if k != "total")

    assert cli.main(["plan", "--update", "t1", "--db", str(db), "--remove", "nope"]) == 2
    assert "cannot remove nope" in capsys.readouterr().err
    assert cli.main(["plan", "--update", "t1", "--db", str(db), "--add", more, "--set", "mode=reference"]) == 2
    assert "was made with mode='default'" in capsys.readouterr().err
    assert cli.main(["plan", str(CORPUS), "--update", "t1", "--db", str(db)]) == 2
    assert cli.main(["plan"]) == 2
