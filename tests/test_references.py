"""References a user can take elsewhere: citation keys, BibTeX, CSL-JSON, pandoc citations, and a run whose
outputs carry the corpus metadata (llmxmr/references.py, issue 10)."""

from __future__ import annotations

import json
import re

import bibtexparser
import pytest
from graph_helpers import papers, run

from llmxmr.citations import Reference
from llmxmr.export import SurveyReport, write_outputs
from llmxmr.metadata import prose_latex_decoding
from llmxmr.references import (
    bibtex_keys,
    latex_escape,
    pandoc_markdown,
    protect_case,
    split_name,
    to_bibtex,
    to_csl_json,
    with_metadata,
)
from llmxmr.state.records import Document
from llmxmr.testing.fake_model import ScriptedChatModel


def ref(pid: str, title: str = "Attention Is All You Need", n: int = 1, **meta) -> Reference:
    return Reference(n=n, paper_id=pid, title=title, **meta)


VASWANI = ref("attention-111111", authors=["Ashish Vaswani", "Noam Shazeer"], year=2017,
              venue="NeurIPS", doi="10.5555/3295222", arxiv_id="1706.03762", url="https://arxiv.org/abs/1706.03762")


# ---------------------------------------------------------------- keys


def test_generated_keys_family_year_first_word():
    refs = [
        VASWANI,
        ref("survey-222222", "A Survey of Large Language Models", authors=["Zhao, Wayne Xin"], year=2023),
        ref("muller-333333", "Über Rechnen", authors=["Jörg Müller"]),  # no year: family + word
        ref("beethoven-444444", "The Symphonies", authors=["Ludwig van Beethoven"], year=1808),
    ]
    assert bibtex_keys(refs) == {
        "attention-111111": "vaswani2017attention",
        "survey-222222": "zhao2023survey",
        "muller-333333": "mulleruber",  # ASCII-folded; no year
        "beethoven-444444": "beethoven1808symphonies",  # family without "van", "The" skipped
    }


def test_given_keys_win_and_clashes_get_letter_suffixes():
    refs = [
        ref("a-1", authors=["Ashish Vaswani"], year=2017),
        ref("b-2", authors=["Ashish Vaswani"], year=2017),
        ref("c-3", bibtex_key="vaswani2017attention"),  # the user's key: reserved before generation
        ref("d-4", authors=["A. Vaswani"], year=2017),
        ref("e-5", title="Untitled", bibtex_key="Mine"),
        ref("f-6", title="Untitled", bibtex_key="mine"),  # differs only in case: BibTeX would warn
        ref("g-7", title="No authors"),
        ref("h-8", authors=["张伟"], year=2020),  # no ASCII family name: paper id
        ref("i-9", bibtex_key="bad key"),  # not a usable key: treated as absent
    ]
    assert bibtex_keys(refs) == {
        "c-3": "vaswani2017attention", "e-5": "Mine", "f-6": "minea",
        "a-1": "vaswani2017attentiona", "b-2": "vaswani2017attentionb", "d-4": "vaswani2017attentionc",
        "g-7": "g-7", "h-8": "h-8", "i-9": "i-9",
    }


def test_many_clashes_stay_unique():
    refs = [ref(f"p-{i}", authors=["Ann Lee"], year=2020, title="Same") for i in range(30)]
    keys = list(bibtex_keys(refs).values())
    assert len(set(keys)) == 30 and keys[:2] == ["lee2020same", "lee2020samea"] and keys[27] == "lee2020sameaa"


def test_split_name():
    assert split_name("Ashish Vaswani") == ("Vaswani", "Ashish")
    assert split_name("Vaswani, Ashish") == ("Vaswani", "Ashish")
    assert split_name("Ludwig van Beethoven") == ("van Beethoven", "Ludwig")
    assert split_name("King, Jr., Martin Luther") == ("King, Jr.", "Martin Luther")
    assert split_name("OpenAI") == ("OpenAI", "")


def test_with_metadata_copies_the_documents_fields_and_sets_keys():
    doc = Document(paper_id="attention-111111", title="x", text="t", authors=["Ashish Vaswani"], year=2017,
                   venue="NeurIPS", doi="10.1/x", arxiv_id="1706.03762", bibtex_key=None)
    [enriched, bare] = with_metadata([ref("attention-111111"), ref("other-222222", "Other", n=2)],
                                     {"attention-111111": doc})
    assert enriched.authors == ["Ashish Vaswani"] and enriched.year == 2017 and enriched.venue == "NeurIPS"
    assert enriched.doi == "10.1/x" and enriched.arxiv_id == "1706.03762"
    assert enriched.bibtex_key == "vaswani2017attention" and enriched.title == "Attention Is All You Need"
    assert bare.bibtex_key == "other-222222" and bare.authors == []
    assert bibtex_keys([enriched, bare]) == {"attention-111111": "vaswani2017attention", "other-222222": "other-222222"}


# ---------------------------------------------------------------- BibTeX


def _parse(bib: str) -> dict[str, dict[str, str]]:
    library = bibtexparser.parse_string(bib, append_middleware=[prose_latex_decoding()])  # as corpus .bib files are read
    assert not library.failed_blocks
    return {e.key: {"@type": e.entry_type, **{f.key: f.value for f in e.fields}} for e in library.entries}


def test_to_bibtex_parses_back_to_the_same_keys_and_fields():
    odd = ref("odd-222222", "50% of {LLMs} & $costs_ are #1 ~ \\ things", n=2, authors=["Ann O'Neil"],
              url="https://x.org/a_b%20c?d=1&e")
    bare = ref("bare-333333", "Just a title", n=3)
    bib = to_bibtex([VASWANI, odd, bare])
    entries = _parse(bib)
    assert list(entries) == ["vaswani2017attention", "oneil50", "bare-333333"]
    assert entries["vaswani2017attention"] == {
        "@type": "article", "title": "Attention Is All You Need", "author": "Vaswani, Ashish and Shazeer, Noam",
        "year": "2017", "journal": "NeurIPS", "doi": "10.5555/3295222", "eprint": "1706.03762",
        "archiveprefix": "arXiv", "url": "https://arxiv.org/abs/1706.03762",
    }
    odd_entry = entries["oneil50"]
    assert odd_entry["@type"] == "misc" and odd_entry["author"] == "O'Neil, Ann"
    assert odd_entry["url"] == "https://x.org/a_b%20c?d=1&e"  # identifiers stay verbatim
    assert "\\%" in bib and "{\\{LLMs\\}}" in bib and "\\&" in bib  # braces balanced, LaTeX specials escaped
    assert odd_entry["title"] == odd.title  # decoded back to what it was
    assert entries["bare-333333"] == {"@type": "misc", "title": "Just a title"}


def test_arxiv_preprint_without_venue_is_misc_with_howpublished():
    preprint = ref("p-1", authors=["Ann Lee"], year=2023, arxiv_id="2301.01234")
    [entry] = _parse(to_bibtex([preprint])).values()
    assert entry["@type"] == "misc" and entry["howpublished"] == "arXiv preprint arXiv:2301.01234"
    assert entry["eprint"] == "2301.01234" and entry["archiveprefix"] == "arXiv"


def test_latex_escape():
    assert latex_escape("a  {b}\n& 100%") == r"a \{b\} \& 100\%"
    assert latex_escape("x^2 ~ $ # _ \\") == r"x\textasciicircum{}2 \textasciitilde{} \$ \# \_ \textbackslash{}"
    assert latex_escape("Müller") == "Müller"


def test_protect_case_keeps_acronyms_and_names_as_written():
    assert protect_case("BERT and GPT-3 by O'Neil in Paris") == "{BERT} and {GPT-3} by {O'Neil} in Paris"


def test_empty_bibliography():
    assert _parse(to_bibtex([])) == {}
    assert to_csl_json([]) == []


# ---------------------------------------------------------------- CSL-JSON


def test_csl_json_items():
    preprint = ref("p-1", "Scaling Laws", n=2, authors=["Jared Kaplan", "OpenAI"], year=2020, arxiv_id="2001.08361")
    web = ref("w-2", "A Blog Post", n=3, url="https://blog.example")
    items = to_csl_json([VASWANI, preprint, web])
    assert items[0] == {
        "id": "vaswani2017attention", "type": "article-journal", "title": "Attention Is All You Need",
        "author": [{"family": "Vaswani", "given": "Ashish"}, {"family": "Shazeer", "given": "Noam"}],
        "issued": {"date-parts": [[2017]]}, "container-title": "NeurIPS", "DOI": "10.5555/3295222",
        "URL": "https://arxiv.org/abs/1706.03762", "number": "arXiv:1706.03762",
    }
    assert items[1] == {
        "id": "kaplan2020scaling", "type": "article", "title": "Scaling Laws",
        "author": [{"family": "Kaplan", "given": "Jared"}, {"family": "OpenAI"}],
        "issued": {"date-parts": [[2020]]}, "number": "arXiv:2001.08361", "publisher": "arXiv",
    }
    assert items[2] == {"id": "w-2", "type": "document", "title": "A Blog Post", "URL": "https://blog.example"}
    json.dumps(items)  # plain JSON


# ---------------------------------------------------------------- pandoc


def test_pandoc_markdown_rewrites_markers_outside_code_only():
    keys = {"a-111111": "vaswani2017attention", "b-222222": "devlin2019bert"}
    md = ("Claim [@a-111111]. Both [@a-111111; @b-222222] and [@b-222222, @a-111111]. Gone [@ghost].\n"
          "Inline `x[@a-111111]` stays.\n\n```mermaid\nA[@b-222222] --> B\n```\n\n"
          "Mail me@x.org, ping @someone, see <https://x.org/@user> and [@a-111111](https://link).\n")
    out = pandoc_markdown(md, keys)
    assert out == (
        "Claim [@vaswani2017attention]. Both [@vaswani2017attention; @devlin2019bert] and "
        "[@devlin2019bert; @vaswani2017attention]. Gone.\n"
        "Inline `x[@a-111111]` stays.\n\n```mermaid\nA[@b-222222] --> B\n```\n\n"
        "Mail me@x.org, ping \\@someone, see <https://x.org/@user> and [\\@a-111111](https://link).\n"
    )


def test_pandoc_markdown_front_matter_names_the_bibliography():
    out = pandoc_markdown("# T\n\nx [@a-1].\n", {"a-1": "k"}, bibliography="references.bib")
    assert out.startswith("---\nbibliography: references.bib\nreference-section-title: References\n")
    assert out.endswith("---\n\n# T\n\nx [@k].\n")


# ---------------------------------------------------------------- end to end


TINY = {"mode": "default", "units": 2, "max_layers": 1, "refine_rounds": 0, "best_of": 1, "max_blocks": 1}


def _corpus(n: int) -> list[dict]:
    corpus = papers(n)
    for i, p in enumerate(corpus):
        p.update(authors=[f"Author{i} Family{chr(97 + i)}", "Second Person"], year=2010 + i, venue=f"Venue {i}",
                 doi=f"10.1000/paper.{i}")
        if i % 2:
            p.update(arxiv_id=f"2301.0000{i}")
        if i == 0:
            p["bibtex_key"] = "first:key"
    return corpus


def test_run_references_carry_corpus_metadata_and_outputs_are_pandoc_ready(tmp_path):
    corpus = _corpus(6)
    out = run(ScriptedChatModel(), corpus, title="Metadata survey", **TINY)
    references = [Reference(**r) for r in out["references"]]
    assert references, "the scripted writer cites papers"
    by_title = {p["title"]: p for p in corpus}
    for r in references:
        source = by_title[r.title]
        assert r.authors == source["authors"] and r.year == source["year"] and r.venue == source["venue"]
        assert r.doi == source["doi"] and r.arxiv_id == source.get("arxiv_id") and r.bibtex_key
    report = SurveyReport(**out["report"])
    assert report.references == references

    write_outputs(tmp_path, report)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["references.bib", "references.json", "survey.json", "survey.md", "survey.pandoc.md"]
    modes = {(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()}
    assert len(modes) == 1  # one file mode for every output

    bib = _parse((tmp_path / "references.bib").read_text(encoding="utf-8"))
    assert set(bib) == {r.bibtex_key for r in references}
    if any(r.paper_id == _first_id(out) for r in references):
        assert "first:key" in bib
    csl = json.loads((tmp_path / "references.json").read_text(encoding="utf-8"))
    assert [item["id"] for item in csl] == [r.bibtex_key for r in references]

    pandoc = (tmp_path / "survey.pandoc.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"@([^\s;\]]+)", "".join(re.findall(r"\[@[^\]]*\]", pandoc))))
    assert cited == set(bib)  # every key resolves, every reference is cited
    assert "## References" not in pandoc and "[@" + references[0].paper_id not in pandoc
    assert pandoc.split("---\n\n", 1)[1].startswith("# Metadata survey")


def _first_id(out: dict) -> str:
    return next(p["paper_id"] for p in out["report"]["papers"]["included"] if p["title"].startswith("Paper 0:"))


def test_old_reports_load_and_write_without_a_pandoc_file(tmp_path):
    report = SurveyReport(title="S", outline={"title": "S"}, content="# S\n")  # written before the field existed
    assert report.pandoc_markdown == ""
    write_outputs(tmp_path, report)
    assert not (tmp_path / "survey.pandoc.md").exists()
    assert (tmp_path / "references.bib").exists() and json.loads((tmp_path / "references.json").read_text()) == []


def test_docx_and_html_through_pandoc_citeproc(tmp_path):
    pytest.importorskip("pypandoc", reason="the export extra (pypandoc-binary) is not installed")
    from llmxmr.pandoc_export import pandoc_binary, render_documents

    if pandoc_binary() is None:
        pytest.skip("pypandoc finds no pandoc binary")
    refs = with_metadata([VASWANI.model_copy(update={"bibtex_key": None})], {})
    md = pandoc_markdown("# Survey\n\n## 1 Intro\n\nTransformers [@attention-111111].\n", bibtex_keys(refs),
                         bibliography="references.bib")
    report = SurveyReport(title="Survey", outline={"title": "Survey"}, content="# Survey\n", references=refs,
                          pandoc_markdown=md)
    write_outputs(tmp_path, report)
    docx, html = render_documents(tmp_path, report.title)
    assert docx.name == "survey.docx" and docx.read_bytes()[:2] == b"PK"
    page = " ".join(html.read_text(encoding="utf-8").split())
    assert "Vaswani" in page and "2017" in page and "Attention Is All You Need" in page
    assert "References" in page and "???" not in page and "attention-111111" not in page
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
