"""Issue 14: prompts laid out for prefix caching, and no request sent twice in a run.

Asserted from the request log of the scripted loopback server over whole runs (both modes, with layers,
self-refine rounds, best-of candidates and two blocks, so every loop stage is called several times)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from llmxmr import cli
from llmxmr.core.tree import describe_sections, outline_to_prompt_text
from llmxmr.prompts import convolve, digest, judge
from llmxmr.state.records import Outline, Section
from llmxmr.testing.responder import DOC_RE, SECTION_RE, Responder, stage_of
from llmxmr.testing.scripted_server import scripted_server

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "mini.jsonl"
LOOP = ["--set", "max_blocks=2", "--set", "max_layers=1", "--set", "units=2", "--set", "refine_rounds=2",
        "--set", "best_of=2", "--set", "patience=5", "-q"]
# Stages whose user message starts with the outline (the part many calls of a pass share).
OUTLINE_FIRST = ("digest", "feedback", "merge_suggestions", "modify", "judge", "critique", "charts")


class NamingResponder(Responder):
    """Suggestions that name two sections by id, as the prompts ask (a default-mode modify then shows
    those two with their descriptions)."""

    def _suggestion(self, user: str, seed: int) -> str:
        ids = list(dict.fromkeys(SECTION_RE.findall(user.split("\n\n", 1)[0]))) or ["s1"]
        return json.dumps({"suggestion": f"Merge [{ids[seed % len(ids)]}] into [{ids[(seed // 3) % len(ids)]}]."})


def _run(tmp: Path, mode: str) -> list[dict[str, Any]]:
    with scripted_server(NamingResponder()) as stub:
        code = cli.main(["run", str(CORPUS), "-o", str(tmp / mode), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--mode", mode, *LOOP])
        bodies = [r["body"] for r in stub.chat_requests]
    assert code == 0
    return bodies


@pytest.fixture(scope="module", params=["default", "reference"])
def run_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", "x")
    try:
        return request.param, _run(tmp_path_factory.mktemp("cache"), request.param)
    finally:
        mp.undo()


def _by_stage(bodies: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for b in bodies:
        out.setdefault(stage_of(b["messages"]), []).append(b)
    return out


def _system(body: dict) -> str:
    return body["messages"][0]["content"]


def _user(body: dict) -> str:
    return body["messages"][1]["content"]


def test_every_stage_sends_one_byte_identical_system_message(run_log):
    mode, bodies = run_log
    stages = _by_stage(bodies)
    assert {"digest", "judge", "modify", "critique"} <= set(stages), sorted(stages)
    for stage, calls in stages.items():
        systems = {_system(b) for b in calls}
        assert len(systems) == 1, f"{mode}/{stage}: {len(systems)} different system messages in {len(calls)} calls"


def test_fixed_text_is_in_the_system_message_only(run_log):
    """Instructions and the answer's format are the stage's fixed text: the system message (shared by every
    call) holds them; the user message, after the shared outline, holds only the call's material."""
    mode, bodies = run_log
    for stage, calls in _by_stage(bodies).items():
        system = _system(calls[0])
        assert "Answer with one JSON object only" in system or stage in ("write_section", "polish"), stage
        for b in calls:
            assert "Answer with one JSON object only" not in _user(b), f"{mode}/{stage}: format in the user message"


def test_outline_comes_first_and_the_per_call_part_last(run_log):
    mode, bodies = run_log
    stages = _by_stage(bodies)
    for stage in OUTLINE_FIRST:
        # The default-mode judge names its first outline: the block's start outline (next test).
        first = f"{judge.BASE_HEAD}\nTitle: " if (mode, stage) == ("default", "judge") else "Outline:\nTitle: "
        for b in stages.get(stage, []):
            assert _user(b).startswith(first), f"{mode}/{stage}: {_user(b)[:80]!r}"
    # A digest pass: every paper's prompt is the same system message and outline, then its paper.
    passes: dict[str, set[str]] = {}
    for b in stages["digest"]:
        user = _user(b)
        outline, rest = user.split("\n\n<document", 1)
        pid = DOC_RE.search(user).group(1)
        assert pid not in _system(b)  # the paper id only after the shared part
        assert rest.rstrip().split("\n")[-1] == f"Cite this paper as [@{pid}]."  # the call's part ends it
        passes.setdefault(outline, set()).add(pid)
    papers = {DOC_RE.search(_user(b)).group(1) for b in stages["digest"]}
    assert max(len(p) for p in passes.values()) == len(papers)  # one shared prefix per pass, all papers


def test_default_judge_calls_of_a_block_share_its_start_outline(run_log):
    """Every judge call of a block shows the block's start outline O_b first, byte for byte, then the outline
    to rate by id and title in its own order, with descriptions only where it differs from O_b."""
    mode, bodies = run_log
    if mode != "default":
        pytest.skip("reference mode shows the judge each outline in full, as the reference does")
    calls = _by_stage(bodies)["judge"]
    bases: dict[str, list[str]] = {}
    for b in calls:
        base, rated = _user(b).split(f"\n\n{judge.RATE_REVISION_HEAD}\n", 1)
        bases.setdefault(base, []).append(rated)
        ids = re.findall(r"^\s*\[(s\d+)\]", rated, re.MULTILINE)
        assert ids and len(ids) == len(set(ids)), rated  # every section of the rated outline, once
        described = re.findall(r"^\s*\[(s\d+)\][^\n]*\n\s+(?:construction|analysis):", rated, re.MULTILINE)
        assert len(described) <= len(ids) / 2, "only the revised sections carry descriptions"
    assert len(bases) == 2, "one start outline per block (the run refines two blocks)"
    assert all(len(rated) >= 3 for rated in bases.values()), {k[:60]: len(v) for k, v in bases.items()}
    assert any(re.search(r"\n\s+(?:construction|analysis):", r) for v in bases.values() for r in v), \
        "a candidate's revised sections are shown with their descriptions"


def test_default_modifies_of_a_layer_share_the_titles_outline(run_log):
    mode, bodies = run_log
    if mode != "default":
        pytest.skip("reference mode rewrites the whole outline: it shows every description")
    modifies = _by_stage(bodies)["modify"]
    named = [b for b in modifies if "\n\nSections the suggestion names:\n" in _user(b)]
    assert named, "no modify named its sections"
    heads = {}
    for b in named:
        head = _user(b).split("\n\nSections the suggestion names:\n", 1)[0]
        assert "construction:" not in head and "analysis:" not in head  # titles only: shared by the layer
        heads.setdefault(head, 0)
        heads[head] += 1
    assert max(heads.values()) >= 2  # calls on one base outline share it byte for byte


def test_no_request_body_is_sent_twice_and_samples_carry_a_seed(run_log):
    mode, bodies = run_log
    seen: dict[str, int] = {}
    for i, b in enumerate(bodies):
        h = hashlib.sha256(json.dumps(b, sort_keys=True).encode()).hexdigest()
        assert h not in seen, f"{mode}: request {i} ({stage_of(b['messages'])}) repeats request {seen[h]}"
        seen[h] = i
    seeded = [b for b in bodies if "seed" in b]
    stages = {stage_of(b["messages"]) for b in seeded}
    assert {"critique", "modify"} <= stages  # best-of candidates
    if mode == "default":
        assert "judge" in stages  # the block-end re-scores: independent samples now
    assert all(b["temperature"] > 0 for b in seeded)


def test_modify_prompt_puts_titles_first_and_named_descriptions_after():
    base = Outline(title="T", sections=[
        Section(section_id="s1", title="Locks", construction="c1", analysis="a1"),
        Section(section_id="s2", title="Queues", construction="c2", analysis="a2")], next_id=3)
    titles = outline_to_prompt_text(base, "titles")
    user = convolve.modify_edits(titles, "Merge [s2] into [s1].", named=describe_sections(base, {"s2"}))[1].content
    assert user.startswith(f"Outline:\n{titles}\n\nSections the suggestion names:\n[s2] 2 Queues\n"
                           "  construction: c2\n  analysis: a2\n\nSuggestion:\nMerge [s2] into [s1].")
    a, b = (digest.digest_paper(titles, pid, "x", "body") for pid in ("p-1", "p-2"))
    assert a[0].content == b[0].content and a[1].content.split("<document")[0] == b[1].content.split("<document")[0]


def test_scripted_answers_do_not_depend_on_where_the_format_line_sits():
    """The scripted models seed an answer as if the format line ended the user message, so moving fixed text
    into the system message leaves a benchmark run's course (and its call counts) comparable."""
    from llmxmr.prompts.common import json_only
    from llmxmr.testing.responder import seed_text

    fmt = json_only('{"suggestion": "<one change>"}')
    assert seed_text(f"Task: t\nDo it.\n{fmt}\nData rule.", "Outline") == seed_text("Task: t\nDo it.\nData rule.",
                                                                                  f"Outline\n\n{fmt}")
    assert seed_text("Task: t\nDo it.", "A") != seed_text("Task: t\nDo it.", "B")


def test_verify_shows_each_papers_passages_once_with_its_claims_after():
    from llmxmr.prompts import verify

    items = [("A holds [@p1].", "p1", "P one", ["alpha", "beta"]), ("B holds [@p2].", "p2", "P two", ["gamma"]),
             ("C holds [@p1].", "p1", "P one", ["beta", "delta"])]
    user = verify.verify_claims(items)[1].content
    assert user == ('<document id="p1" title="P one">\nPassage 1:\nalpha\n\nPassage 2:\nbeta\n\nPassage 3:\ndelta\n'
                    '</document>\nClaim 1: A holds [@p1].\nClaim 3: C holds [@p1].\n\n'
                    '<document id="p2" title="P two">\nPassage 1:\ngamma\n</document>\nClaim 2: B holds [@p2].')


def test_verify_calls_group_claims_by_paper(run_log):
    """The citation check batches its (claim, paper) pairs by paper: a call names each paper once and shows
    each of its passages once, however many of the call's claims cite it."""
    mode, bodies = run_log
    if mode != "default":
        pytest.skip("only the default mode checks citations")
    calls = _by_stage(bodies)["verify"]
    assert calls
    shared = 0
    for b in calls:
        user = _user(b)
        papers = DOC_RE.findall(user)
        assert len(papers) == len({pid for pid, _ in papers}), "a paper shown twice in one call"
        for block in user.split("</document>")[:-1]:
            passages = block.split("\nPassage ")[1:]
            texts = [p.split(":\n", 1)[1] for p in passages]
            assert len(texts) == len(set(texts)), "a passage shown twice for one paper"
        shared += len(re.findall(r"^Claim \d+: ", user, re.MULTILINE)) > len(papers)
    assert shared, "no call checked two claims of one paper"
