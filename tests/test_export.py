import json
import subprocess
import sys
from pathlib import Path

from llmxmr.citations import Reference, number_citations
from llmxmr.export import (
    SURVEY_SCHEMA_VERSION,
    EntropyRecord,
    IncludedPaper,
    PapersReport,
    SurveyReport,
    check_article,
    render_markdown,
    write_outputs,
)
from llmxmr.state.records import Failure, Outline, Section, SkippedDocument, StageUsage

ROOT = Path(__file__).resolve().parent.parent

OUTLINE = Outline(
    title="T",
    sections=[
        Section(
            section_id="s1",
            title="Intro",
            children=[
                Section(section_id="s2", title="Background"),
                Section(section_id="s3", title="Scope", children=[Section(section_id="s4", title="Deep")]),
            ],
        ),
        Section(section_id="s5", title="Outlook"),
    ],
)
REFS = [Reference(n=1, paper_id="a-111111", title="Paper A", url="https://a"), Reference(n=2, paper_id="b-222222", title="Paper B?")]


def test_render_markdown_headings_and_references():
    texts = {"s1": "Intro text [1].", "s2": "Background [1, 2].", "s4": "Deep text.", "s5": "Outlook [2]."}
    md = render_markdown("My  Survey", OUTLINE, texts, REFS)
    assert md == (
        "# My Survey\n\n## 1 Intro\n\nIntro text [1].\n\n### 1.1 Background\n\nBackground [1, 2].\n\n"
        "### 1.2 Scope\n\n#### 1.2.1 Deep\n\nDeep text.\n\n## 2 Outlook\n\nOutlook [2].\n\n"
        "## References\n\n[1] Paper A. https://a\n\n[2] Paper B?\n"
    )
    assert check_article(md, REFS) == []
    assert "# 0" not in md


def test_body_headings_are_demoted_or_flattened():
    texts = {
        "s1": "## 1 Intro\n\nParent text.\n\n## A sub heading\nmore",  # repeated title dropped; parent: bold
        "s2": "# Background\n\nLeaf.\n\n# Part\n\n## Detail\n```\n# code comment\n```",
        "s5": "### Outlook\nx",
    }
    md = render_markdown("S", OUTLINE, texts, [])
    assert "## 1 Intro\n\nParent text.\n\n**A sub heading**\nmore" in md
    assert "### 1.1 Background\n\nLeaf.\n\n#### Part\n\n##### Detail\n```\n# code comment\n```" in md
    assert "## 2 Outlook\n\nx" in md
    assert "## References" not in md
    assert check_article(md, []) == []


def test_check_article_problems():
    good = render_markdown("S", OUTLINE, {"s2": "x [1] y [2]"}, REFS)
    assert check_article(good, REFS) == []
    dangling = good.replace("y [2]", "y [2] z [3]")
    assert check_article(dangling, REFS) == ["[3] does not resolve to a listed reference"]
    uncited = good.replace("y [2]", "y")
    assert check_article(uncited, REFS) == ["reference [2] is never cited"]
    swapped = good.replace("x [1] y [2]", "x [2] y [1]")
    assert check_article(swapped, REFS) == ["citation numbers are not in order of first appearance: [2, 1]"]
    zero = good.replace("# S\n", "# S\n\n# 0. S\n")
    assert check_article(zero, REFS) == ["stray heading '# 0. S'", "expected exactly one '# ' title heading, found 2"]
    marker = good.replace("y [2]", "y [2] [@ghost]")
    assert check_article(marker, REFS) == ["unrendered citation marker [@ghost]"]
    gap = "# S\n\n## 1 A\n\n#### deep\n"
    assert check_article(gap, []) == ["heading level jumps from 2 to 4 at '#### deep'"]
    nolist = good.split("## References")[0]
    assert check_article(nolist, REFS) == ["the article has no '## References' section"]
    bad_refs = [REFS[0], Reference(n=3, paper_id="c", title="C")]
    assert "references are not numbered 1..2: [1, 3]" in check_article(good, bad_refs)


def test_check_article_ignores_code_and_links():
    md = render_markdown("S", OUTLINE, {"s2": "x [1] `[7]`\n```\nA[9] --> B\n```\n[link](http://x) [8](http://y)"}, REFS[:1])
    assert check_article(md, REFS[:1]) == []


def test_pipeline_of_markers_to_article():
    texts = {"s2": "A claim [@b-222222; @a-111111].", "s5": "Later [@a-111111]."}
    papers = {"a-111111": ("Paper A", "https://a"), "b-222222": ("Paper B", None)}
    ids = list(texts)
    rendered, refs = number_citations([texts[i] for i in ids], papers)
    md = render_markdown("S", OUTLINE, dict(zip(ids, rendered)), refs)
    assert "A claim [1, 2]." in md and "Later [2]." in md
    assert "[1] Paper B.\n\n[2] Paper A. https://a" in md
    assert check_article(md, refs) == []


def _report() -> SurveyReport:
    md = render_markdown("S", OUTLINE, {"s2": "x [1] y [2]"}, REFS)
    return SurveyReport(
        title="S",
        outline=OUTLINE,
        content=md,
        references=REFS,
        papers=PapersReport(
            included=[IncludedPaper(paper_id="a-111111", title="Paper A", url="https://a")],
            skipped=[SkippedDocument(source="x.jsonl:1: papers[3]", reason="empty document (no text)")],
        ),
        entropy_history=[
            EntropyRecord(kind="layer", block=0, layer=1, best=7.5, mean=6.1, parts={"J": 7.5}),
            EntropyRecord(kind="final", block=0, best=7.5),
        ],
        stop_reason="converged: entropy gain < epsilon",
        usage={"digest": StageUsage(calls=3, prompt_tokens=100)},
        failures=[Failure(stage="write", unit="s4", kind="output_fault", message="bad")],
        settings={"seed": 0, "versions": {"llmxmr": "0.1.0"}, "thread_id": "t1"},
    )


def test_write_outputs_roundtrip(tmp_path):
    report = _report()
    md_path, json_path = write_outputs(tmp_path / "out" / "run", report)
    assert md_path.name == "survey.md" and json_path.name == "survey.json"
    assert md_path.read_text(encoding="utf-8") == report.content
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SURVEY_SCHEMA_VERSION == "1.0"
    assert SurveyReport.model_validate(data) == report
    # no temp files left; survey.pandoc.md only when the report has it (this one predates the field)
    assert sorted(p.name for p in md_path.parent.iterdir()) == ["references.bib", "references.json", "survey.json", "survey.md"]
    report.pandoc_markdown = "# S\n\nx [@a-111111]\n"
    write_outputs(md_path.parent, report)
    assert (md_path.parent / "survey.pandoc.md").read_text(encoding="utf-8") == report.pandoc_markdown
    modes = {p.stat().st_mode & 0o777 for p in md_path.parent.iterdir()}
    assert len(modes) == 1 and len(list(md_path.parent.iterdir())) == 5


def test_committed_schema_is_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "write_schema.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((ROOT / "docs" / "survey.schema.json").read_text(encoding="utf-8"))
    assert {"schema_version", "title", "outline", "content", "references", "papers", "entropy_history",
            "stop_reason", "usage", "failures", "settings", "pandoc_markdown"} <= set(schema["properties"])
    assert {"authors", "year", "venue", "doi", "arxiv_id", "bibtex_key"} <= set(schema["$defs"]["Reference"]["properties"])
