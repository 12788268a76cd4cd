"""Human in the loop: with `review_outline` on, the run pauses before writing (a LangGraph interrupt in a node
of its own) with the outline as a dict and markdown; `Command(resume=...)` keeps it, takes a retitle (no new
digests) or a structural edit (digested again before writing), and an invalid edit comes back with its
problems in a new interrupt."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from llmxmr.core.tree import section_ids
from llmxmr.graph import build_graph
from llmxmr.nodes.review import parse_edit, structure
from llmxmr.review_cli import REVIEW_JSON, REVIEW_MD
from llmxmr.state.context import Context
from llmxmr.state.records import Outline
from llmxmr.testing.fake_model import ScriptedChatModel
from llmxmr.testing.scripted_server import scripted_server

FAST = dict(mode="default", units=2, max_layers=1, refine_rounds=1, best_of=2, max_blocks=1)
N_PAPERS = 3


def papers(n: int) -> list[dict[str, str]]:
    return [{"title": f"Paper {i}: study of topic {i % 2}",
             "txt": f"Body of paper {i} about topic {i % 2}. " + " ".join(f"w{i}x{j}" for j in range(80)),
             "url": f"https://example.org/p/{i}"} for i in range(n)]


class Session:
    def __init__(self, thread: str = "review-1", **context: Any) -> None:
        self.model = ScriptedChatModel()
        self.graph = build_graph(models=self.model, checkpointer=InMemorySaver(), store=InMemoryStore())
        self.config = {"configurable": {"thread_id": thread}}
        self.context = Context(**{**FAST, "review_outline": True, **context})

    def start(self) -> dict[str, Any]:
        return self.graph.invoke({"papers": papers(N_PAPERS), "title": "Reviewed survey"}, self.config,
                                 context=self.context)

    def resume(self, value: Any) -> dict[str, Any]:
        return self.graph.invoke(Command(resume=value), self.config, context=self.context)

    def pending(self) -> dict[str, Any] | None:
        snap = self.graph.get_state(self.config)
        interrupts = [i for t in snap.tasks for i in t.interrupts]
        return interrupts[0].value if interrupts else None


def headings(article: str) -> list[str]:
    return [line for line in article.splitlines() if line.startswith("#")]


@pytest.fixture
def paused() -> tuple[Session, dict[str, Any]]:
    s = Session()
    out = s.start()
    assert "__interrupt__" in out, "the run should pause before writing"
    payload = out["__interrupt__"][0].value
    return s, payload


def test_pauses_before_writing_with_the_outline(paused):
    s, payload = paused
    assert payload["kind"] == "review_outline"
    outline = Outline(**payload["outline"])
    assert section_ids(outline)
    assert payload["markdown"].startswith("# ")
    assert all(sec.title in payload["markdown"] for sec in outline.sections)
    assert payload["problems"] == []
    assert s.model.calls["write_section"] == 0, "nothing is written before the review"
    assert s.graph.get_state(s.config).next == ("review_outline",)
    assert s.pending() == payload


def test_resume_with_true_writes_the_outline_as_it_is(paused):
    s, payload = paused
    digests = s.model.calls["digest"]
    out = s.resume(True)  # Command(resume=None) means 'no resume' to LangGraph
    assert out["outline"] == payload["outline"]
    assert s.model.calls["digest"] == digests
    assert s.model.calls["write_section"] == len(section_ids(Outline(**payload["outline"])))


def test_a_retitle_keeps_the_digests_and_lands_in_the_article(paused):
    s, payload = paused
    edited = copy.deepcopy(payload["outline"])
    edited["sections"][0]["title"] = "Hand-picked chapter title"
    edited["title"] = "A person's survey"
    digests = s.model.calls["digest"]
    out = s.resume(edited)
    assert s.model.calls["digest"] == digests, "a retitle needs no new digests"
    assert out["outline"]["sections"][0]["title"] == "Hand-picked chapter title"
    assert any("Hand-picked chapter title" in h for h in headings(out["article"]))
    # The writer still had its evidence: citations survive the retitle.
    assert out["references"]
    assert out["report"]["outline"]["sections"][0]["title"] == "Hand-picked chapter title"


def test_a_structural_edit_is_digested_again_before_writing(paused):
    s, payload = paused
    edited = copy.deepcopy(payload["outline"])
    removed = edited["sections"].pop()  # remove the last top-level section (and its subtree)
    edited["sections"].append({"section_id": "", "title": "Open problems added by hand",
                               "construction": "Extract open problems.", "analysis": "Compare open problems.",
                               "children": []})
    digests = s.model.calls["digest"]
    out = s.resume(edited)
    assert s.model.calls["digest"] == digests + N_PAPERS, "every paper is digested against the new structure"
    final = Outline(**out["outline"])
    titles = [sec.title for sec in final.sections]
    assert titles[-1] == "Open problems added by hand"
    assert removed["title"] not in titles
    new_id = final.sections[-1].section_id
    assert new_id not in section_ids(Outline(**payload["outline"])), "an added section gets a fresh id"
    assert final.next_id > int(new_id[1:])
    assert any("Open problems added by hand" in h for h in headings(out["article"]))
    assert not any(removed["title"] in h for h in headings(out["article"]))
    assert s.model.calls["write_section"] == len(section_ids(final))
    assert s.graph.get_state(s.config).next == ()


def test_an_invalid_edit_comes_back_with_its_problems_then_a_fix_finishes(paused):
    s, payload = paused
    bad = copy.deepcopy(payload["outline"])
    bad["sections"][0]["title"] = "   "
    bad["sections"].append(copy.deepcopy(bad["sections"][0]))  # a duplicate id
    bad["sections"][-1]["title"] = "Copy"
    out = s.resume(bad)
    assert "__interrupt__" in out
    again = out["__interrupt__"][0].value
    problems = " | ".join(again["problems"])
    assert "empty title" in problems and "duplicate section id" in problems
    assert again["attempt"] == 1
    assert again["outline"]["sections"][-1]["title"] == "Copy", "the person sees their own edit with its problems"
    assert s.model.calls["write_section"] == 0
    # Not an outline at all: a clear message, still paused.
    out = s.resume("{not json")
    assert "not valid JSON" in " ".join(out["__interrupt__"][0].value["problems"])
    fixed = copy.deepcopy(payload["outline"])
    fixed["sections"][0]["title"] = "Fixed title"
    out = s.resume(fixed)
    assert "__interrupt__" not in out
    assert out["outline"]["sections"][0]["title"] == "Fixed title"


def test_off_by_default_no_pause():
    s = Session(thread="review-off", review_outline=False)
    out = s.start()
    assert "__interrupt__" not in out and out["article"]


def test_parse_edit_rules():
    current = Outline(title="T", sections=[{"section_id": "s1", "title": "A", "children": [
        {"section_id": "s2", "title": "B"}]}], next_id=3)
    assert parse_edit(None, current) == (None, [])
    assert parse_edit(True, current) == (None, [])
    edited, problems = parse_edit({"outline": current.model_dump()}, current)
    assert edited == current and problems == []
    # next_id is fixed up, missing ids are assigned, the title defaults to the current one.
    edited, problems = parse_edit({"sections": [{"section_id": "s7", "title": "A"}, {"title": "New"}], "next_id": 1},
                                  current)
    assert problems == [] and [s.section_id for s in edited.sections] == ["s7", "s8"] and edited.next_id == 9
    assert edited.title == "T"
    _, problems = parse_edit({"sections": [{"section_id": "x1", "title": "A"}]}, current)
    assert any("s<number>" in p for p in problems)
    _, problems = parse_edit({"sections": "nope"}, current)
    assert problems and "sections" in problems[0]
    _, problems = parse_edit([1, 2], current)
    assert problems
    deep = {"section_id": "s1", "title": "1", "children": [{"section_id": "s2", "title": "2", "children": [
        {"section_id": "s3", "title": "3", "children": [{"section_id": "s4", "title": "4"}]}]}]}
    _, problems = parse_edit({"sections": [deep]}, current)
    assert any("depth" in p for p in problems)
    moved = Outline(title="T", sections=[{"section_id": "s1", "title": "A"}, {"section_id": "s2", "title": "B"}], next_id=3)
    assert structure(moved) != structure(current)


# ---------------------------------------------------------------- the CLI: llmxmr run/resume --review-outline

ROOT = Path(__file__).resolve().parents[1]
CLI_SETTINGS = ["--set", "max_blocks=1", "--set", "max_layers=1", "--set", "units=2", "--set", "refine_rounds=1",
                "--set", "best_of=1"]
CLEARED = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")


def _retitle_file(out: Path, title: str) -> None:
    path = out / REVIEW_JSON
    outline = json.loads(path.read_text())
    outline["sections"][0]["title"] = title
    path.write_text(json.dumps(outline, indent=2))


def test_cli_without_a_terminal_stops_with_the_resume_command_which_reads_the_edit(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(OPENAI_API_KEY="x", LANGGRAPH_CLI_NO_ANALYTICS="1")
    with scripted_server() as stub:
        base = [sys.executable, "-m", "llmxmr.cli"]
        model = ["--model", "openai:scripted", "--base-url", stub.base_url]
        first = subprocess.run([*base, "run", str(ROOT / "examples" / "mini.jsonl"), "-o", str(out), *model,
                                "--review-outline", *CLI_SETTINGS],
                               env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert first.returncode == 1, first.stderr
        assert (out / REVIEW_JSON).is_file() and (out / REVIEW_MD).is_file()
        assert not (out / "survey.md").exists()
        # The run's artifacts are already there for a person following it.
        # (how many blocks run depends on the scripted scores, which follow the prompts' text: every block's file)
        history = json.loads((out / "entropy.json").read_text())
        assert history[-1]["kind"] == "final"
        blocks = {r["block"] for r in history if isinstance(r.get("block"), int)}
        assert 0 in blocks and all((out / f"outline-b{b}.md").is_file() for b in blocks)
        match = re.search(r"^\s*(llmxmr resume \S+ --db \S+ -o \S+)\s*$", first.stderr, re.M)
        assert match, first.stderr
        _retitle_file(out, "Edited on disk")
        args = shlex.split(match.group(1))[1:]
        second = subprocess.run([*base, *args, *model], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=120)
    assert second.returncode in (0, 3), second.stderr
    article = (out / "survey.md").read_text()
    assert any("Edited on disk" in h for h in headings(article))


def test_cli_on_a_terminal_waits_for_enter_and_asks_again_after_an_invalid_edit(tmp_path, monkeypatch):
    from llmxmr import cli, review_cli

    out = tmp_path / "out"
    prompts: list[str] = []

    def person(prompt: str) -> str:
        prompts.append(prompt)
        path = out / REVIEW_JSON
        if len(prompts) == 1:
            outline = json.loads(path.read_text())
            outline["sections"][0]["title"] = ""  # invalid: asked again with the problem
            path.write_text(json.dumps(outline))
        else:
            assert "empty title" in (out / "outline-review-problems.txt").read_text()
            _retitle_file(out, "Edited at the prompt")
        return ""

    monkeypatch.setenv("OPENAI_API_KEY", "x")
    monkeypatch.setattr(review_cli, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", person)
    with scripted_server() as stub:
        code = cli.main(["run", str(ROOT / "examples" / "mini.jsonl"), "-o", str(out), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--review-outline", "-q", *CLI_SETTINGS])
    assert code in (0, 3)
    assert len(prompts) == 2
    assert any("Edited at the prompt" in h for h in headings((out / "survey.md").read_text()))
    assert not (out / "outline-review-problems.txt").exists()
