"""Every structured stage that names sections, claims or papers sends a schema built for the call (issue 15):
the ids it may name as an `enum` of the real ones, numbers bounded by what the prompt shows, so that a
grammar-constrained server (llama.cpp) cannot name what does not exist. Checked on the request bodies the
loopback scripted server receives, against the ids and numbers in the same request's prompt."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmxmr import cli
from llmxmr.state.responses import (
    EditsReply,
    edits_reply_for,
    repair_reply_for,
    topics_for,
    verdicts_reply_for,
)
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
RUN = ["--set", "max_layers=1", "--set", "units=2", "--set", "max_blocks=1", "--set", "refine_rounds=0",
       "--set", "best_of=1", "--set", "charts=true", "-q"]

pytestmark = pytest.mark.usefixtures("offline_env")


def _unsupported(stage: str, request: dict) -> dict | None:
    # Every claim of the first check round unsupported: the repair stage runs on flagged claims.
    if stage == "verify":
        claims = len(re.findall(r"^Claim \d+:", request["messages"][1]["content"], re.MULTILINE))
        return {"content": json.dumps({"verdicts": [
            {"claim": n, "passage": 0, "reason": "not stated", "verdict": 0} for n in range(1, claims + 1)]})}
    return None


@pytest.fixture(scope="module")
def bodies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    out = tmp_path_factory.mktemp("schemas") / "out"
    with pytest.MonkeyPatch.context() as mp, scripted_server(fault=_unsupported) as server:
        mp.setenv("OPENAI_API_KEY", "x")  # one run for every test of the module (offline_env is per test)
        for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
            mp.delenv(name, raising=False)
        code = cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted",
                         "--base-url", server.base_url, *RUN])
        requests = [r["body"] for r in server.chat_requests]
    assert code in (0, 3)
    by_stage: dict[str, list[dict]] = {}
    for body in requests:
        by_stage.setdefault(body["messages"][0]["content"].split("\n", 1)[0].removeprefix("Task: "), []).append(body)
    return by_stage


def _schema(body: dict) -> dict:
    return body["response_format"]["json_schema"]["schema"]


def _ids_in_prompt(body: dict) -> set[str]:
    return set(re.findall(r"\[(s\d+)\]", body["messages"][1]["content"]))


def _enum(branch: dict) -> list[str]:
    # A nullable id carries its enum inside the string branch of anyOf (llama.cpp reads anyOf before enum).
    if "anyOf" in branch:
        return next(b["enum"] for b in branch["anyOf"] if b.get("type") == "string")
    return branch["enum"]


def test_modify_names_only_the_outlines_ids(bodies: dict[str, list[dict]]) -> None:
    assert bodies.get("modify")
    for body in bodies["modify"]:
        add, change = (shape["properties"] for shape in _schema(body)["properties"]["edits"]["items"]["anyOf"])
        shown = _ids_in_prompt(body)
        assert shown and set(_enum(change["section_id"])) == shown
        assert set(_enum(change["parent_id"])) == shown and set(_enum(add["parent_id"])) == shown
        assert add["title"]["minLength"] == 1 and add["title"]["maxLength"] > 0


def test_an_edit_names_its_section_and_an_add_its_title_on_the_wire() -> None:
    add, change = edits_reply_for(("s1", "s2")).model_json_schema()["properties"]["edits"]["items"]["anyOf"]
    assert add["properties"]["op"]["enum"] == ["add"] and add["properties"]["section_id"] == {"type": "null"}
    assert set(add["required"]) == {"op", "title"} and add["properties"]["title"]["type"] == "string"
    assert set(change["properties"]["op"]["enum"]) == {"remove", "move", "retitle", "describe"}
    assert change["properties"]["section_id"] == {"type": "string", "enum": ["s1", "s2"]}  # not nullable
    assert set(change["required"]) == {"op", "section_id"}


def test_verify_numbers_are_the_claims_and_passages_shown(bodies: dict[str, list[dict]]) -> None:
    assert bodies.get("verify")
    for body in bodies["verify"]:
        text = body["messages"][1]["content"]
        claims = len(re.findall(r"^Claim \d+:", text, re.MULTILINE))
        verdict = _schema(body)["$defs"]["Verdict"]["properties"]
        assert (verdict["claim"]["minimum"], verdict["claim"]["maximum"]) == (1, claims)
        assert verdict["passage"]["maximum"] == max(int(n) for n in re.findall(r"^Passage (\d+):", text, re.MULTILINE))
        assert _schema(body)["properties"]["verdicts"]["maxItems"] == claims


def test_repair_names_only_the_sections_and_claims_it_was_given(bodies: dict[str, list[dict]]) -> None:
    assert bodies.get("repair"), "the scripted verdicts flagged every claim: a repair must run"
    for body in bodies["repair"]:
        text = body["messages"][1]["content"]
        given = set(re.findall(r"^Section \[(s\d+)\]", text, re.MULTILINE))
        defs = _schema(body)["$defs"]
        assert given and set(_enum(defs["Addition"]["properties"]["section_id"])) == given
        flagged = re.findall(r"^(\d+)\. ", text.split("Claims to fix:", 1)[1], re.MULTILINE) if "Claims to fix:" in text else []
        assert defs["ClaimFix"]["properties"]["claim"]["maximum"] == max(1, len(flagged))
        assert _schema(body)["properties"]["fixes"]["maxItems"] == len(flagged)


def test_charts_and_group_name_only_what_exists(bodies: dict[str, list[dict]]) -> None:
    (charts,) = bodies["charts"]
    assert set(_enum(_schema(charts)["$defs"]["Chart"]["properties"]["section_id"])) == _ids_in_prompt(charts)
    for body in bodies["group"]:
        shown = len(re.findall(r"^\d+\. ", body["messages"][1]["content"], re.MULTILINE))
        topic = _schema(body)["$defs"]["Topic"]["properties"]
        assert topic["papers"]["items"]["maximum"] == shown > 0 and topic["name"]["minLength"] == 1


def test_call_schemas_parse_as_leniently_as_the_stage_schemas() -> None:
    # An id outside the enum that still arrives (a server without grammars) is parsed, then dropped by the
    # node with a recorded reason, as before; an empty outline gets the plain schema (no empty enum).
    edits = edits_reply_for(("s1",)).model_validate({"edits": [{"op": "retitle", "section_id": "s9", "title": "x"}]})
    assert edits.edits[0].section_id == "s9"
    assert edits_reply_for(()) is EditsReply
    verdicts = verdicts_reply_for(2, 3).model_validate({"verdicts": [{"claim": 7, "verdict": 1}] * 5})
    assert len(verdicts.verdicts) == 5
    assert repair_reply_for(("s1",), 0).model_json_schema()["properties"]["fixes"]["maxItems"] == 0
    assert topics_for(3).model_validate({"topics": [{"name": "a", "papers": [1, 9]}]}).topics[0].papers == [1, 9]
