import gzip
import json
from pathlib import Path

import pytest

from llmxmr.corpus import (
    PDF_FIX,
    CorpusError,
    corpus_hash,
    documents_from_papers,
    html_to_text,
    load_surveys,
)
from llmxmr.ids import PAPER_ID_RE

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write_jsonl(path: Path, *records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def paper(title="T", txt="Some text here.", **kw):
    return {"title": title, "txt": txt, **kw}


# ---------------------------------------------------------------- document rules


def test_empty_documents_are_skipped_with_reason():
    docs, skipped = documents_from_papers([paper(txt="  \n\t "), paper(title="Good")], "input")
    assert [d.title for d in docs] == ["Good"]
    assert [(s.source, s.reason) for s in skipped] == [("input: papers[0]", "empty document (no text)")]


def test_exact_duplicates_collapse_and_are_reported():
    docs, skipped = documents_from_papers([paper(), paper(), paper(txt="Some text here.  ")], "input")
    assert len(docs) == 1
    assert [s.source for s in skipped] == ["input: papers[1]", "input: papers[2]"]
    assert skipped[0].reason == f"duplicate of {docs[0].paper_id} (same title and text)"


def test_same_title_different_text_keeps_both():
    docs, skipped = documents_from_papers([paper(txt="one"), paper(txt="two")], "input")
    assert len(docs) == 2 and not skipped
    assert docs[0].paper_id != docs[1].paper_id
    assert all(PAPER_ID_RE.match(d.paper_id) for d in docs)


def test_same_text_different_title_keeps_both():
    docs, _ = documents_from_papers([paper(title="A"), paper(title="B")], "input")
    assert len(docs) == 2


def test_id_collision_gets_suffix(monkeypatch):
    import llmxmr.corpus as corpus

    monkeypatch.setattr(corpus, "make_paper_id", lambda title, text: "same-abcdef")
    docs, _ = documents_from_papers([paper(txt="one"), paper(txt="two"), paper(txt="three")], "input")
    assert [d.paper_id for d in docs] == ["same-abcdef", "same-abcdef-2", "same-abcdef-3"]


def test_missing_abstract_is_derived_from_text():
    words = [f"w{i}" for i in range(100)]
    docs, _ = documents_from_papers([paper(txt=" ".join(words)), paper(title="B", txt="short text", abstract="")], "x")
    assert docs[0].abstract == " ".join(words[:60]) + " …"
    assert docs[1].abstract == "short text"
    docs, _ = documents_from_papers([paper(abstract="Given.")], "x")
    assert docs[0].abstract == "Given."


def test_missing_title_is_derived_from_first_line():
    docs, skipped = documents_from_papers([{"txt": "\n# Deep Nets Work\n\nBody."}, {"title": None, "txt": "Line"}], "x")
    assert [d.title for d in docs] == ["Deep Nets Work", "Line"]
    assert not skipped


def test_url_and_whitespace_normalised():
    docs, _ = documents_from_papers([paper(title="  A   title\n", url=" https://x.org "), paper(title="B", url="")], "x")
    assert docs[0].title == "A title" and docs[0].url == "https://x.org"
    assert docs[1].url is None


def test_bad_paper_entries_are_reported_skips():
    papers = [7, paper(txt=5), paper(title=["x"]), {"title": "no text"}, paper(abstract={}), paper(title="ok")]
    docs, skipped = documents_from_papers(papers, "f.jsonl:3")
    assert [d.title for d in docs] == ["ok"]
    assert [(s.source, s.reason) for s in skipped] == [
        ("f.jsonl:3: papers[0]", "expected a JSON object, got a number"),
        ("f.jsonl:3: papers[1]", 'field "txt" must be a string, not a number'),
        ("f.jsonl:3: papers[2]", 'field "title" must be a string, not a list'),
        ("f.jsonl:3: papers[3]", 'missing field "txt" (the document text)'),
        ("f.jsonl:3: papers[4]", 'field "abstract" must be a string, not an object'),
    ]


def test_inline_papers_must_be_a_list():
    with pytest.raises(CorpusError, match='^input: field "papers" must be a list, not an object$'):
        documents_from_papers({"a": 1}, "input")  # type: ignore[arg-type]


def test_corpus_hash():
    docs, _ = documents_from_papers([paper(txt="one"), paper(txt="two")], "x")
    h = corpus_hash(docs)
    assert len(h) == 16 and h == corpus_hash(list(docs))
    assert h != corpus_hash(docs[:1]) and h != corpus_hash(docs[::-1])


# ---------------------------------------------------------------- JSONL


def test_jsonl_surveys_and_blank_lines(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(
        "\n" + json.dumps({"title": "S1", "papers": [paper()]}) + "\n  \n" + json.dumps({"title": "S2", "papers": [paper(txt="x"), paper(txt="")]}) + "\n",
        encoding="utf-8",
    )
    surveys = load_surveys(f)
    assert [s.title for s in surveys] == ["S1", "S2"]
    assert len(surveys[1].documents) == 1
    assert surveys[1].skipped[0].source == f"{f}:4: papers[1]"


def test_jsonl_bom_and_crlf(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps({"title": "S", "papers": [paper()]}).encode() + b"\r\n")
    assert load_surveys(f)[0].title == "S"


def test_jsonl_title_argument_fills_a_missing_title(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", {"papers": [paper()]})
    assert load_surveys(f, title="Given")[0].title == "Given"
    with pytest.raises(CorpusError) as e:
        load_surveys(f)
    assert str(e.value) == f'{f}:1: missing field "title" (the survey title)'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"title": "S", "papers": [}\n', "{f}:1: not valid JSON (Expecting value at column 27)"),
        (b'\n{"title": "S", "pa\xffpers": []}\n', "{f}:2: not valid UTF-8 (byte 0xff at column 19)"),
        (b'[1, 2]\n', '{f}:1: expected a JSON object {{"title", "papers"}}, got a list'),
        (b'{"title": "S"}\n', '{f}:1: missing field "papers"'),
        (b'{"title": "S", "papers": {"a": 1}}\n', '{f}:1: field "papers" must be a list, not an object'),
        (b'{"title": 3, "papers": []}\n', '{f}:1: field "title" must be a string, not a number'),
        (b'\n\n  \n', "{f}: no surveys (the file has no non-blank lines)"),
        (b'{"title": "S", "papers": []}\n', "no usable documents in {f}:1"),
        (
            b'{"title": "S", "papers": [{"title": "a", "txt": ""}]}\n',
            "no usable documents in {f}:1 (skipped: {f}:1: papers[0]: empty document (no text))",
        ),
        (b"\x00\x01binary\x00", "{f}: not a JSONL text file (it looks like binary data)"),
    ],
)
def test_jsonl_errors(tmp_path, content, message):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(content)
    with pytest.raises(CorpusError) as e:
        load_surveys(f)
    assert str(e.value) == message.format(f=f)


def test_gzip_jsonl_is_a_clear_error(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(gzip.compress(json.dumps({"title": "S", "papers": [paper()]}).encode()))
    with pytest.raises(CorpusError) as e:
        load_surveys(f)
    assert str(e.value) == f"{f}: not a JSONL text file (it looks like gzip-compressed data)"


def test_missing_path_and_unsupported_file(tmp_path):
    with pytest.raises(CorpusError) as e:
        load_surveys(tmp_path / "nope.jsonl")
    assert str(e.value) == f"corpus not found: {tmp_path / 'nope.jsonl'}"
    f = tmp_path / "c.csv"
    f.write_text("a,b\n")
    with pytest.raises(CorpusError, match=r"^unsupported corpus file .*c\.csv: expected a \.jsonl file"):
        load_surveys(f)


def test_corpus_error_is_a_value_error():
    assert issubclass(CorpusError, ValueError)


def test_example_corpora_load():
    mini = load_surveys(EXAMPLES / "mini.jsonl")
    assert len(mini) == 1 and len(mini[0].documents) == 4 and not mini[0].skipped
    stdlib = load_surveys(EXAMPLES / "stdlib-concurrency.jsonl")[0]
    assert len(stdlib.documents) == 12
    assert all(len(d.text.split()) <= 221 for d in stdlib.documents)
    assert stdlib.documents[0].url == "https://docs.python.org/3/library/threading.html"


# ---------------------------------------------------------------- directories


def test_directory_of_documents(tmp_path):
    d = tmp_path / "my-corpus"
    (d / "sub").mkdir(parents=True)
    (d / "a.md").write_text("# Markdown Title\n\nBody of a.", encoding="utf-8")
    (d / "b_notes.txt").write_text("Plain text body.", encoding="utf-8")
    (d / "sub" / "c.html").write_text(
        "<html><head><title>Page T</title><style>p{color:red}</style><script>var x=1;</script></head>"
        "<body><h1>Head</h1><p>First &amp; para.</p><p>Second</p></body></html>",
        encoding="utf-8",
    )
    (d / "empty.md").write_text("   \n")
    (d / "dup.md").write_text("# Markdown Title\n\nBody of a.", encoding="utf-8")
    (d / "data.csv").write_text("x")
    (d / ".hidden.md").write_text("ignored")
    [survey] = load_surveys(d)
    assert survey.title == "my-corpus"
    titles = {doc.title: doc for doc in survey.documents}
    assert set(titles) == {"Markdown Title", "b notes", "Page T"}
    html = titles["Page T"].text
    assert "First & para." in html and "Second" in html and "color" not in html and "var x" not in html
    reasons = {s.source: s.reason for s in survey.skipped}
    assert reasons == {
        "data.csv": "unsupported file type .csv (supported: .md, .markdown, .txt, .html, .htm, .pdf)",
        "dup.md": f"duplicate of {titles['Markdown Title'].paper_id} (same title and text)",
        "empty.md": "empty document (no text)",
    }
    assert load_surveys(d, title="Given")[0].title == "Given"


def test_directory_bad_files(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "fake.pdf").write_text("not really a pdf")
    (d / "zipped.md").write_bytes(gzip.compress(b"hello"))
    (d / "latin.txt").write_bytes("caf\xe9 ok".encode("latin-1"))
    [survey] = load_surveys(d)
    assert [doc.text for doc in survey.documents] == ["caf\ufffd ok"]
    assert survey.warnings == ["latin.txt: not valid UTF-8; undecodable bytes were replaced by U+FFFD"]
    reasons = {s.source: s.reason for s in survey.skipped}
    assert reasons == {
        "fake.pdf": "not a PDF file (no %PDF header; it looks like text)",
        "zipped.md": "not a text file (it looks like gzip-compressed data)",
    }


def test_directory_without_usable_documents(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    with pytest.raises(CorpusError) as e:
        load_surveys(d)
    assert str(e.value) == f"no usable documents in {d} (the directory has no files)"
    (d / "a.md").write_text("")
    with pytest.raises(CorpusError) as e:
        load_surveys(d)
    assert str(e.value) == f"no usable documents in {d} (skipped: a.md: empty document (no text))"


def test_single_document_file(tmp_path):
    f = tmp_path / "one_doc.md"
    f.write_text("Text only.")
    [survey] = load_surveys(f)
    assert survey.title == "one doc" and survey.documents[0].title == "one doc"


def test_pdf_without_pypdf_is_a_skip_naming_the_fix(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pypdf(name, *args, **kwargs):
        if name == "pypdf":
            raise ImportError("no pypdf")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pypdf)
    d = tmp_path / "c"
    d.mkdir()
    (d / "p.pdf").write_bytes(b"%PDF-1.4\n")
    (d / "a.txt").write_text("text")
    [survey] = load_surveys(d)
    assert survey.skipped[0].reason == f"PDF support is not installed ({PDF_FIX})"
    assert "pip install 'llmxmr[pdf]'" in PDF_FIX


def _make_pdf(path: Path, text: str) -> None:
    """A minimal valid one-page PDF with `text` (built by hand: pypdf cannot add text)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def test_pdf_documents(tmp_path):
    pytest.importorskip("pypdf")
    d = tmp_path / "c"
    d.mkdir()
    _make_pdf(d / "good_paper.pdf", "Hello PDF world")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage without objects")
    [survey] = load_surveys(d)
    assert [(doc.title, doc.text) for doc in survey.documents] == [("good paper", "Hello PDF world")]
    [skip] = survey.skipped
    assert skip.source == "broken.pdf"
    assert skip.reason.startswith("unreadable PDF (") or skip.reason.startswith("PDF has no extractable text")


def test_html_to_text():
    title, text = html_to_text("<h1>Only H1</h1><ul><li>a</li><li>b</li></ul><noscript>x</noscript>")
    assert title == "Only H1"
    assert text == "Only H1\n\na\n\nb"


# ---------------------------------------------------------------- bibliographic metadata


def test_jsonl_metadata_fields(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", {"title": "S", "papers": [
        paper(title="A", authors=["Ada Lovelace", " Charles  Babbage "], year=1843, venue="Sketch",
              doi="https://doi.org/10.1000/xyz.1", arxiv_id="arXiv:2301.01234", bibtex_key="lovelace1843"),
        paper(title="B", authors="Lovelace, Ada and Babbage, Charles", year="1850"),
        paper(title="C", authors="Ada Lovelace; Charles Babbage"),
        paper(title="D"),
    ]})
    [survey] = load_surveys(f)
    a, b, c, d = survey.documents
    assert a.authors == ["Ada Lovelace", "Charles Babbage"] and a.year == 1843 and a.venue == "Sketch"
    assert a.doi == "10.1000/xyz.1" and a.arxiv_id == "2301.01234" and a.bibtex_key == "lovelace1843"
    assert b.authors == ["Lovelace, Ada", "Babbage, Charles"] and b.year == 1850
    assert c.authors == ["Ada Lovelace", "Charles Babbage"]
    assert (d.authors, d.year, d.venue, d.doi, d.arxiv_id, d.bibtex_key) == ([], None, None, None, None, None)
    assert survey.warnings == []


def test_wrong_metadata_is_a_warning_and_keeps_the_document(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", {"title": "S", "papers": [
        paper(title="A", authors=5, year="soon", venue=[], doi="not-a-doi", arxiv_id=3, bibtex_key="has space",
              url=7),
        paper(title="B", authors=["ok", 1], year=True),
    ]})
    [survey] = load_surveys(f)
    assert [d.title for d in survey.documents] == ["A", "B"] and not survey.skipped
    a, b = survey.documents
    assert (a.authors, a.year, a.venue, a.doi, a.arxiv_id, a.bibtex_key, a.url) == ([], None, None, None, None, None, None)
    assert (b.authors, b.year) == ([], None)
    where = f"{f}:1: papers"
    assert survey.warnings == [
        f'{where}[0]: field "url" must be a string, not a number; ignored',
        f'{where}[0]: field "authors" must be a list of strings or a string, not a number; ignored',
        f'{where}[0]: field "year" must be a year (a number), not a string; ignored',
        f'{where}[0]: field "venue" must be a string, not a list; ignored',
        f"{where}[0]: field \"doi\" is not a DOI (10.NNNN/...): 'not-a-doi'; ignored",
        f'{where}[0]: field "arxiv_id" must be a string, not a number; ignored',
        (f"{where}[0]: field \"bibtex_key\" is not a usable citation key (letters, digits and _:.+/- inside): "
         "'has space'; ignored"),
        f'{where}[1]: field "authors" must be a list of strings or a string, not a list with a non-string item; ignored',
        f'{where}[1]: field "year" must be a year (a number), not a boolean; ignored',
    ]


def test_inline_papers_collect_metadata_warnings():
    warnings: list[str] = []
    docs, skipped = documents_from_papers([paper(year=[2020])], "input", warnings)
    assert len(docs) == 1 and not skipped
    assert warnings == ['input: papers[0]: field "year" must be a year (a number), not a list; ignored']
    assert documents_from_papers([paper(year=[2020])], "input")[0][0].year is None  # no sink: still kept


def test_doi_and_arxiv_id_are_detected_on_the_first_page():
    docs, _ = documents_from_papers([
        paper(title="A", txt="Title\nhttps://doi.org/10.1145/3292500.3330701.\nAvailable as arXiv:2301.01234v2 [cs.CL]"),
        paper(title="B", txt="See arxiv.org/abs/1706.03762v5 and (doi:10.1016/S0140-6736(20)30183-5)."),
        paper(title="C", txt="Old style: cs/0112017v1, and math.GT/0309136 later."),
        paper(title="D", txt="No ids but 2301.01234 and 10.5/x.\n\n## References\n\n[1] doi 10.1000/cited arXiv:1111.11111"),
        paper(title="E", txt="Body doi 10.1000/in-text.", doi="10.1000/given", url="https://arxiv.org/abs/2101.00001"),
    ], "x")
    got = {d.title: (d.doi, d.arxiv_id) for d in docs}
    assert got == {
        "A": ("10.1145/3292500.3330701", "2301.01234"),
        "B": ("10.1016/S0140-6736(20)30183-5", "1706.03762"),
        "C": (None, "cs/0112017"),
        "D": (None, None),
        "E": ("10.1000/given", "2101.00001"),
    }


BIB = r"""
@article{attention,
  title = {Attention Is All You Need},
  author = {Vaswani, Ashish and Shazeer, Noam},
  journal = {Advances in Neural Information Processing Systems},
  year = {2017},
  eprint = {1706.03762},
  archiveprefix = {arXiv},
  url = {https://papers.nips.cc/paper/7181?a=%20b_c},
}
@inproceedings{bert2019,
  title = {{BERT}: Pre-training of Deep Bidirectional Transformers},
  author = {Devlin, Jacob and M{\"u}ller, Kristina},
  booktitle = {NAACL},
  year = {2019},
  doi = {10.18653/v1/N19-1423},
}
@misc{orphan, title = {Nothing matches me}, year = {circa 2000}}
"""


def test_folder_bib_matches_by_stem_and_by_title(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "attention.txt").write_text("We propose the Transformer.", encoding="utf-8")
    (d / "paper2.md").write_text("# BERT: Pre-Training of Deep Bidirectional Transformers\n\nBody.", encoding="utf-8")
    (d / "other.md").write_text("# Unrelated\n\nText.", encoding="utf-8")
    (d / "refs.bib").write_text(BIB, encoding="utf-8")
    [survey] = load_surveys(d)
    docs = {doc.title: doc for doc in survey.documents}
    assert set(docs) == {"Attention Is All You Need", "BERT: Pre-Training of Deep Bidirectional Transformers",
                         "Unrelated"}  # a title made from the file name gives way to the bib's
    att = docs["Attention Is All You Need"]
    assert att.authors == ["Vaswani, Ashish", "Shazeer, Noam"] and att.year == 2017
    assert att.venue == "Advances in Neural Information Processing Systems"
    assert att.arxiv_id == "1706.03762" and att.bibtex_key == "attention"
    assert att.url == "https://papers.nips.cc/paper/7181?a=%20b_c"  # verbatim, not LaTeX
    bert = docs["BERT: Pre-Training of Deep Bidirectional Transformers"]
    assert bert.authors == ["Devlin, Jacob", "Müller, Kristina"] and bert.venue == "NAACL"
    assert bert.doi == "10.18653/v1/N19-1423" and bert.bibtex_key == "bert2019"
    assert docs["Unrelated"].bibtex_key is None
    assert not survey.skipped  # the .bib is metadata, neither a document nor a skip
    assert survey.warnings == ['refs.bib: entry orphan: field "year" must be a year (a number), not a string; ignored']


def test_malformed_bib_is_a_warning(tmp_path):
    d = tmp_path / "c"
    (d / "sub").mkdir(parents=True)
    (d / "a.md").write_text("# A\n\nText.", encoding="utf-8")
    (d / "bad.bib").write_text("@article{a,\n  title = {A\n  year = 2020\n\n@misc{b, title = {B}}\n", encoding="utf-8")
    (d / "binary.bib").write_bytes(b"\xff\xfe\x00garbage")
    (d / "sub" / "deep.bib").write_text(BIB, encoding="utf-8")
    [survey] = load_surveys(d)
    assert [doc.title for doc in survey.documents] == ["A"] and not survey.skipped
    warnings = " | ".join(survey.warnings)
    assert "binary.bib: not a UTF-8 text file; its metadata is ignored" in warnings
    assert "sub/deep.bib: .bib files are read only at the corpus root; ignored" in warnings
    assert any(w.startswith("bad.bib: ") for w in survey.warnings), survey.warnings
