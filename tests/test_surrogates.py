"""Lone surrogates (issue 16 §3): a "\\ud83d" in a model's answer or in a survey title does not crash a run,
and the paid answer is recorded (a resume does not pay for it again). Also §8: an answer far beyond its
output budget is cut and the cut recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmxmr import cli
from llmxmr.testing.responder import Responder
from llmxmr.testing.scripted_server import scripted_reply, scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


pytestmark = pytest.mark.usefixtures("offline_env")


def run(corpus: Path, out: Path, base_url: str, *extra: str) -> int:
    return cli.main(["run", str(corpus), "-o", str(out), "--model", "openai:scripted", "--base-url", base_url,
                     *TINY, *extra])


def spiked(stage: str, spike: str):
    responder = Responder()

    def fault(s: str, request: dict[str, Any]) -> dict[str, Any] | None:
        if s != stage:
            return None
        reply = scripted_reply(responder, request)
        return {**reply, "content": reply["content"] + spike}

    return fault


def test_a_lone_surrogate_in_an_answer_is_recorded_and_does_not_crash(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted_server(fault=spiked("write_section", "\ud83d")) as stub:
        assert run(CORPUS, out, stub.base_url) == 0
        calls = len(stub.chat_requests)
    assert calls > 0
    md = (out / "survey.md").read_text(encoding="utf-8")
    assert "\ufffd" in md
    with scripted_server() as again:  # the thread is finished: nothing is paid again
        assert run(CORPUS, out, again.base_url) == 0
        assert again.chat_requests == []


def test_a_lone_surrogate_in_a_survey_title_does_not_crash(tmp_path: Path) -> None:
    line = json.loads(CORPUS.read_text().splitlines()[0])
    line["title"] = "Cheaper \ud83d inference"
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps(line) + "\n")  # json.dumps writes the surrogate as the escape "\ud83d"
    with scripted_server() as stub:
        assert run(corpus, tmp_path / "a", stub.base_url) == 0
    assert "Cheaper \ufffd inference" in (tmp_path / "a" / "survey.md").read_text(encoding="utf-8")


def test_a_lone_surrogate_in_the_title_flag_does_not_crash(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, paper in enumerate(json.loads(CORPUS.read_text().splitlines()[0])["papers"][:3]):
        (folder / f"p{i}.md").write_text(f"# {paper['title']}\n\n{paper['txt']}\n")
    with scripted_server() as stub:  # an undecodable byte in argv arrives as a lone surrogate
        assert run(folder, tmp_path / "b", stub.base_url, "--title", "Locks \udcff and queues") == 0


def test_an_answer_far_beyond_its_budget_is_cut_and_the_cut_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted_server(fault=spiked("write_section", " word." * 400_000)) as stub:
        assert run(CORPUS, out, stub.base_url) == 0
    assert (out / "survey.md").stat().st_size < 1_000_000
    report = json.loads((out / "survey.json").read_text())
    notes = [f for f in report["failures"] if f["kind"] == "truncated" and "cut to" in f["message"]]
    assert notes, report["failures"]
