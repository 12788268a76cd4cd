"""What keeps a small model's article from being embarrassing (issue 15): the digest's JSON schema names
the outline's real section ids (an enum a grammar-constrained server enforces), prompts show filled
examples instead of <placeholder> sketches, and a thin article ends with exit 3 saying why."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from llmxmr import cli
from llmxmr.nodes.finalize import thin_article
from llmxmr.state.responses import DigestReply, digest_reply_for
from llmxmr.testing.responder import digest_asks
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]

pytestmark = pytest.mark.usefixtures("offline_env")


def test_digest_schema_lists_the_outline_ids_and_parses_leniently() -> None:
    schema = digest_reply_for(("s1", "s4")).model_json_schema()
    assert schema["$defs"]["SectionContent"]["properties"]["section_id"]["enum"] == ["s1", "s4"]
    assert schema["title"] == "DigestReply"
    reply = digest_reply_for(("s1",)).model_validate_json('{"sections": [{"section_id": "s9", "content": "x"}]}')
    assert isinstance(reply, DigestReply) and reply.sections[0].section_id == "s9"  # dropped and recorded later


def test_requests_carry_real_ids_and_no_placeholders(tmp_path: Path) -> None:
    with scripted_server() as server:
        assert cli.main(["run", str(CORPUS), "-o", str(tmp_path / "out"), "--model", "openai:scripted",
                         "--base-url", server.base_url, *TINY]) == 0
        bodies = [r["body"] for r in server.chat_requests]
    digests = [b for b in bodies if b["messages"][0]["content"].startswith("Task: digest")]
    assert digests
    for body in digests:
        enum = body["response_format"]["json_schema"]["schema"]["$defs"]["SectionContent"]["properties"]["section_id"]["enum"]
        shown, again = digest_asks(body["messages"][1]["content"])
        # exactly the ids of the outline in the prompt, or those a later reading asks for again
        assert enum and set(enum) == set(again if again is not None else shown)
    skeleton = next(b for b in bodies if b["messages"][0]["content"].startswith("Task: skeleton"))
    title = skeleton["response_format"]["json_schema"]["schema"]["$defs"]["LeafDraft"]["properties"]["title"]
    assert title["minLength"] == 1
    for body in bodies:
        for message in body["messages"]:
            text = re.sub(r"</?\s*document[^>]*>", "", message["content"])
            assert not re.search(r"<[a-z][a-z ]*>", text), text[-300:]
            if "of this shape: " in text:  # the filled example is itself valid JSON
                example = text.split("of this shape: ", 1)[1].split("\n", 1)[0]  # the format is one line
                example = example.split(" (an example", 1)[0].split(" (at most", 1)[0].strip()
                json.loads(example)


def test_thin_article_reasons() -> None:
    assert thin_article(5, SimpleNamespace(coverage=0.75, cited=[1, 2, 3], with_evidence=4)) == []
    assert thin_article(2, None) == ["the article has only 2 section(s) (fewer than 3): the outline stages did "
                                     "not produce a usable structure; a larger model usually does"]
    assert thin_article(4, SimpleNamespace(coverage=0.1, cited=[1], with_evidence=10)) == [
        "the article cites 1 of the 10 documents with evidence (under half); see `sources.excluded` in "
        "survey.json for each one's reason"]


def run_with_drafted_outline(outline: dict, out: Path, *extra: str) -> int:
    """The CLI on the mini corpus, the scripted model drafting and merging `outline` and editing nothing."""
    def fault(stage: str, request: dict) -> dict | None:
        if stage in ("skeleton", "merge_skeleton"):
            return {"content": json.dumps(outline)}
        if stage == "modify":
            return {"content": json.dumps({"edits": []})}
        return None

    with scripted_server(fault=fault) as server:
        return cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted",
                         "--base-url", server.base_url, *TINY, *extra])


def test_an_article_of_two_sections_exits_3_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two = {"title": "Inference cost", "sections": [
        {"title": "Batching", "construction": "How requests are batched.", "analysis": "Compare throughput.",
         "subsections": []},
        {"title": "Caching", "construction": "What is cached.", "analysis": "Compare hit rates.", "subsections": []}]}

    code = run_with_drafted_outline(two, tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 3, err
    assert "weak article: the article has only 2 section(s) (fewer than 3)" in err
    report = json.loads((tmp_path / "out" / "survey.json").read_text())
    assert any(f["kind"] == "thin_article" for f in report["failures"])


def test_examples_are_built_from_the_calls_own_material() -> None:
    """The 135M demo model copied a fixed example from another field verbatim (its chapter titles and its
    "finding" reached the article): the map, digest and outline examples now come from the survey's topic
    and the paper's id, never from document text (which stays inside its delimiters)."""
    from llmxmr.prompts.digest import digest_paper
    from llmxmr.prompts.map import map_chunk
    from llmxmr.prompts.skeleton import draft_outline, merge_outlines

    text = "Locks guard shared state between threads. A second sentence follows."
    system, user = (m.content for m in map_chunk("Python concurrency", "p1", "Locks", text))
    # A topic-built example is fixed for the run: it sits in the shared system message.
    assert '{"notes": ["One finding of this document about Python concurrency' in system
    assert "Locks guard" not in system and user.count("Locks guard") == 1  # only inside the document block
    digest = digest_paper("[s1] Locks", "p1", "Locks", "- Locks guard shared state.")[1].content
    assert "[@p1]." in digest and "[@paper-id]" not in digest and digest.count("Locks guard") == 1
    draft_system, draft = (m.content for m in draft_outline("Python concurrency",
                                                            [("p1", "threading: thread-based parallelism", "a")]))
    merged_system = merge_outlines("Python concurrency", ["[s1] Locks"])[0].content
    for shown in (draft_system, merged_system):
        assert '"title": "Python concurrency"' in shown and '"title": "Foundations of Python concurrency"' in shown
        assert "Garbage collection" not in shown
    assert draft.count("thread-based parallelism") == 1 and "thread-based" not in draft_system  # titles stay in the document blocks


def test_copied_paper_and_example_titles_never_become_headings(tmp_path: Path) -> None:
    """The 135M demo model made one paper's title three chapters and the example's "Foundations of <topic>"
    another; such chapters are dropped (their subsections kept), a repeated sibling merged, each recorded."""
    topic = "Reducing the cost of language model inference"

    def leaf(title: str, subsections: list | None = None) -> dict:
        return {"title": title, "construction": f"What each paper reports on {title.lower()}.",
                "analysis": f"Compare the papers on {title.lower()}.", "subsections": subsections or []}

    copied = {"title": topic, "sections": [
        leaf("Weight Quantization for Cheaper Inference", [leaf("Group-wise scaling"), leaf("Accuracy loss")]),
        leaf("1. Weight quantization for cheaper inference"),
        leaf(f"Foundations of {topic}"),
        leaf("Batching requests"), leaf("batching requests"), leaf("Caching prefixes"), leaf(topic)]}

    code = run_with_drafted_outline(copied, tmp_path / "out")
    assert code == 0
    article = (tmp_path / "out" / "survey.md").read_text()
    headings = re.findall(r"^##+ [\d.]+ (.*)$", article, re.MULTILINE)  # numbered: the outline's sections
    assert headings == ["Group-wise scaling", "Accuracy loss", "Batching requests", "Caching prefixes"]
    report = json.loads((tmp_path / "out" / "survey.json").read_text())
    assert sum(f["kind"] == "heading" for f in report["failures"]) >= 5


def test_a_one_chapter_draft_gives_way_to_one_section_per_group(tmp_path: Path) -> None:
    """The demo model drafted one chapter (the rest copied example or paper titles and were dropped): the run
    starts from one section per group instead of writing a one-section article."""
    one = {"title": "Inference cost", "sections": [
        {"title": "Batching", "construction": "How requests are batched.", "analysis": "Compare throughput.",
         "subsections": []}]}

    code = run_with_drafted_outline(one, tmp_path / "out", "--set", "group_size=1")
    report = json.loads((tmp_path / "out" / "survey.json").read_text())
    assert code in (0, 3)
    fallback = [f for f in report["failures"] if f["kind"] == "fallback"]
    assert len(fallback) == 1 and "has 1 top-level section(s), fewer than 3" in fallback[0]["message"], fallback
    headings = re.findall(r"^## [\d.]+ (.*)$", (tmp_path / "out" / "survey.md").read_text(), re.MULTILINE)
    assert len(headings) == 4 and "Batching" not in headings  # one per paper's group
