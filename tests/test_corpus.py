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
